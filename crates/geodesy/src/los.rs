//! Line-of-sight angles as a space-based sensor reports them, in the satellite's nadir frame.

use nalgebra::{Matrix3, Vector3};

/// The satellite's sensor frame: z toward the Earth's centre (nadir), x perpendicular to z and
/// to the Earth's polar axis (eastward for a satellite over the equator; the ECEF x axis is
/// used instead when the satellite is within about 25° of over a pole, |z·ẑ| > 0.9), y = z × x.
/// Rows: x, y, z. Defined from the satellite position alone, so a receiver rebuilds it exactly.
pub fn nadir_frame(sat_pos_ecef_m: &Vector3<f64>) -> Matrix3<f64> {
    let z = -sat_pos_ecef_m.normalize();
    let reference = if z.z.abs() > 0.9 { Vector3::x() } else { Vector3::z() };
    let x = reference.cross(&z).normalize();
    let y = z.cross(&x);
    Matrix3::from_rows(&[x.transpose(), y.transpose(), z.transpose()])
}

/// Line-of-sight angles of a direction in a nadir frame: α = atan2(x, z), β = atan2(y, z).
pub fn los_angles(frame: &Matrix3<f64>, los: &Vector3<f64>) -> (f64, f64) {
    let b = frame * los;
    (b.x.atan2(b.z), b.y.atan2(b.z))
}

/// The unit direction with line-of-sight angles (α, β) in a nadir frame (inverse of [`los_angles`]).
pub fn los_direction(frame: &Matrix3<f64>, alpha_rad: f64, beta_rad: f64) -> Vector3<f64> {
    (frame.transpose() * Vector3::new(alpha_rad.tan(), beta_rad.tan(), 1.0)).normalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angles_invert_and_the_pole_case_is_regular() {
        for sat in [Vector3::new(4.2e7, 0.0, 0.0), Vector3::new(1e6, 2e6, 4.5e7)] {
            let frame = nadir_frame(&sat);
            assert!((frame * frame.transpose() - Matrix3::identity()).norm() < 1e-12);
            let target = Vector3::new(-3.0e6, 4.0e6, 4.0e6);
            let u = (target - sat).normalize();
            let (a, b) = los_angles(&frame, &u);
            assert!((los_direction(&frame, a, b) - u).norm() < 1e-12);
        }
    }
}
