//! The U.S. Standard Atmosphere 1976: exact layer equations up to 86 km, and its tabulated
//! densities from 86 to 1,000 km interpolated log-linearly (the 1976 model's upper part is a
//! diffusion model with no closed form; its published table is the reference).

/// Sea-level standard gravity, also used to convert specific impulse to exhaust velocity.
pub const G0_M_S2: f64 = 9.806_65;
/// Radius used for geopotential height in the 1976 model.
const R0_GEOPOTENTIAL_M: f64 = 6_356_766.0;
/// Molar mass of dry air below 86 km, kg/mol.
const MOLAR_MASS_KG_MOL: f64 = 0.028_964_4;
/// Universal gas constant as the 1976 model defines it, J/(mol·K).
const GAS_CONSTANT: f64 = 8.314_32;
/// Above this the density is taken as zero: at 1,000 km it is 3.6e-15 kg/m³, which decelerates
/// a re-entry vehicle by under 1e-8 m/s².
pub const TOP_OF_ATMOSPHERE_M: f64 = 1_000_000.0;

/// Layers below 86 km: base geopotential height (m), base temperature (K), lapse rate (K/m)
/// and base pressure (Pa), from the 1976 standard's Table 4.
const LAYERS: [(f64, f64, f64, f64); 7] = [
    (0.0, 288.15, -0.0065, 101_325.0),
    (11_000.0, 216.65, 0.0, 22_632.06),
    (20_000.0, 216.65, 0.001, 5_474.889),
    (32_000.0, 228.65, 0.0028, 868.018_7),
    (47_000.0, 270.65, 0.0, 110.906_3),
    (51_000.0, 270.65, -0.0028, 66.938_87),
    (71_000.0, 214.65, -0.002, 3.956_42),
];
/// Top of the layer equations: 86 km geometric = 84,852 m geopotential.
const LAYERS_TOP_GEOMETRIC_M: f64 = 86_000.0;

/// Tabulated density above 86 km (geometric altitude m, kg/m³), 1976 standard Table 1.
const UPPER: [(f64, f64); 16] = [
    (86_000.0, 6.958e-6),
    (90_000.0, 3.416e-6),
    (100_000.0, 5.604e-7),
    (110_000.0, 9.708e-8),
    (120_000.0, 2.222e-8),
    (130_000.0, 8.152e-9),
    (150_000.0, 2.076e-9),
    (200_000.0, 2.541e-10),
    (300_000.0, 1.916e-11),
    (400_000.0, 2.803e-12),
    (500_000.0, 5.215e-13),
    (600_000.0, 1.137e-13),
    (700_000.0, 3.070e-14),
    (800_000.0, 1.136e-14),
    (900_000.0, 5.759e-15),
    (1_000_000.0, 3.561e-15),
];

/// Air density at a geometric altitude above mean sea level (taken as the ellipsoid).
/// Below sea level the troposphere equations are extended downward, as the standard allows to −5 km.
pub fn density_kg_m3(alt_m: f64) -> f64 {
    if alt_m >= TOP_OF_ATMOSPHERE_M {
        return 0.0;
    }
    if alt_m < LAYERS_TOP_GEOMETRIC_M {
        let (pressure, temperature) = pressure_temperature(alt_m.max(-5_000.0));
        return pressure * MOLAR_MASS_KG_MOL / (GAS_CONSTANT * temperature);
    }
    let i = UPPER.partition_point(|(h, _)| *h <= alt_m).clamp(1, UPPER.len() - 1);
    let (h0, rho0) = UPPER[i - 1];
    let (h1, rho1) = UPPER[i];
    let frac = (alt_m - h0) / (h1 - h0);
    (rho0.ln() + frac * (rho1.ln() - rho0.ln())).exp()
}

/// Vertical wavelengths of [`AirDeparture`]'s layers (m): the scales of the gravity waves and
/// tides that ripple the stratosphere's density by a few per cent.
pub const LAYER_WAVELENGTHS_M: [f64; 3] = [5_000.0, 10_000.0, 20_000.0];
/// Lowest density factor a departure may give: the air never vanishes below its ceiling.
const MIN_DENSITY_FACTOR: f64 = 0.2;

/// One day's air: the standard density times `(1 + offset)(1 + Σ aₖ sin(2π h / λₖ + φₖ))`, the
/// λₖ from [`LAYER_WAVELENGTHS_M`]. Real air departs from the 1976 standard by about 10% at
/// re-entry heights from day to day and season to season (the standard's own tables of
/// seasonal and latitudinal departures), with layers a few per cent deep on top; a missile's
/// drag meets both, and an estimator that knew only the standard would be too sure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AirDeparture {
    pub offset: f64,
    /// Per layer: amplitude (fraction) and phase (rad).
    pub layers: [(f64, f64); 3],
}

impl AirDeparture {
    /// The factor on the standard density at `alt_m`, at least [`MIN_DENSITY_FACTOR`].
    pub fn factor(&self, alt_m: f64) -> f64 {
        let ripple: f64 = self
            .layers
            .iter()
            .zip(LAYER_WAVELENGTHS_M)
            .map(|((a, phase), lambda)| a * (std::f64::consts::TAU * alt_m / lambda + phase).sin())
            .sum();
        ((1.0 + self.offset) * (1.0 + ripple)).max(MIN_DENSITY_FACTOR)
    }
}

/// Pressure (Pa) and temperature (K) below 86 km.
fn pressure_temperature(alt_m: f64) -> (f64, f64) {
    let h = R0_GEOPOTENTIAL_M * alt_m / (R0_GEOPOTENTIAL_M + alt_m);
    let i = LAYERS.partition_point(|l| l.0 <= h).max(1) - 1;
    let (hb, tb, lapse, pb) = LAYERS[i];
    let beta = G0_M_S2 * MOLAR_MASS_KG_MOL / GAS_CONSTANT;
    if lapse == 0.0 {
        (pb * (-beta * (h - hb) / tb).exp(), tb)
    } else {
        let t = tb + lapse * (h - hb);
        (pb * (tb / t).powf(beta / lapse), t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Densities printed in the 1976 standard's Table 1 (geometric altitude).
    #[test]
    fn matches_the_published_table() {
        let table = [
            (0.0, 1.2250),
            (5_000.0, 0.736_12),
            (10_000.0, 0.413_51),
            (20_000.0, 8.8910e-2),
            (30_000.0, 1.8410e-2),
            (40_000.0, 3.9957e-3),
            (50_000.0, 1.0269e-3),
            (60_000.0, 3.0968e-4),
            (70_000.0, 8.2829e-5),
            (80_000.0, 1.8458e-5),
        ];
        for (alt, expected) in table {
            let got = density_kg_m3(alt);
            assert!(((got - expected) / expected).abs() < 2e-3, "{alt} m: {got} vs {expected}");
        }
        // The layer equations meet the upper table at 86 km.
        let below = density_kg_m3(85_999.999);
        assert!(((below - 6.958e-6) / 6.958e-6).abs() < 1e-2, "{below}");
        assert_eq!(density_kg_m3(1_200_000.0), 0.0);
        assert!(density_kg_m3(-400.0) > 1.225);
    }

    #[test]
    fn a_days_air_scales_the_standard_by_its_offset_and_layers() {
        let calm = AirDeparture { offset: 0.1, layers: [(0.0, 0.0); 3] };
        assert!((calm.factor(30_000.0) - 1.1).abs() < 1e-12);
        // A single layer of 3% at its crest (a quarter wavelength up from a zero phase).
        let rippled = AirDeparture { offset: 0.0, layers: [(0.03, 0.0), (0.0, 0.0), (0.0, 0.0)] };
        assert!((rippled.factor(LAYER_WAVELENGTHS_M[0] / 4.0) - 1.03).abs() < 1e-12);
        assert!((rippled.factor(0.0) - 1.0).abs() < 1e-12);
        // Nonsense depths are held to a thin but present air.
        let extreme = AirDeparture { offset: -0.99, layers: [(0.0, 0.0); 3] };
        assert_eq!(extreme.factor(10_000.0), MIN_DENSITY_FACTOR);
    }

    #[test]
    fn density_decreases_with_height() {
        let mut last = f64::INFINITY;
        for alt in (-500..1_000_000).step_by(250) {
            let rho = density_kg_m3(f64::from(alt));
            assert!(rho < last, "density rose at {alt} m");
            last = rho;
        }
    }
}
