//! Field transforms on the way to a partner: a measurement batch released to a partner with a
//! `transform` is a new record of this node (`derived_from` = the original's seq), marked for
//! that partner alone, with sensor identities replaced by stable pseudonyms and sensor
//! positions coarsened to a grid — and the measurement errors widened by what the coarsening
//! can add, so the partner's fusion stays honest. The original goes to that partner as a stub.

use sha2::Digest;
use wire::{measurement::Obs, MeasurementBatch};

/// What to do to measurements released to one partner.
#[derive(Debug, Clone, PartialEq)]
pub struct Transform {
    /// Replace each sensor id by `<NATION>-S<8 hex>`, stable per sensor, not reversible
    /// without this node's signing key.
    pub pseudonymize_sensors: bool,
    /// Round radar sites and satellite positions to a grid of this many km (0: exact).
    pub site_precision_km: f64,
}

const EARTH_RADIUS_M: f64 = 6_378_137.0;
const M_PER_DEG: f64 = 111_195.0;

fn widen(sigma: f64, extra: f64) -> f64 {
    (sigma * sigma + extra * extra).sqrt()
}

/// The pseudonym of `sensor` of `nation` under `salt`.
pub fn pseudonym(nation: &str, sensor: &str, salt: &[u8; 32]) -> String {
    let mut h = sha2::Sha256::new();
    h.update(salt);
    h.update(sensor.as_bytes());
    let d = h.finalize();
    format!("{nation}-S{}", hex::encode(&d[..4]))
}

/// The batch as released under `t`.
pub fn apply(batch: &MeasurementBatch, t: &Transform, salt: &[u8; 32]) -> MeasurementBatch {
    let cell_m = t.site_precision_km.max(0.0) * 1000.0;
    let mut out = batch.clone();
    for m in &mut out.measurements {
        if t.pseudonymize_sensors {
            m.sensor = pseudonym(&m.nation, &m.sensor, salt);
        }
        if cell_m <= 0.0 {
            continue;
        }
        match &mut m.obs {
            Some(Obs::Radar(r)) => {
                let cell_lat = cell_m / M_PER_DEG;
                r.lat_deg = (r.lat_deg / cell_lat).round() * cell_lat;
                let cell_lon = cell_lat / r.lat_deg.to_radians().cos().abs().max(0.01);
                r.lon_deg = ((r.lon_deg / cell_lon).round() * cell_lon + 540.0).rem_euclid(360.0) - 180.0;
                r.alt_m = (r.alt_m / 100.0).round() * 100.0;
                // The site moved by at most half a cell each way (and 50 m up or down).
                let moved = (2.0 * (cell_m / 2.0).powi(2) + 50.0f64.powi(2)).sqrt();
                r.sigma_range_m = widen(r.sigma_range_m, moved);
                let angle = moved / r.range_m.max(1.0);
                r.sigma_az_rad = widen(r.sigma_az_rad, angle);
                r.sigma_el_rad = widen(r.sigma_el_rad, angle);
            }
            Some(Obs::SpaceIr(s)) => {
                s.sat_x_m = (s.sat_x_m / cell_m).round() * cell_m;
                s.sat_y_m = (s.sat_y_m / cell_m).round() * cell_m;
                s.sat_z_m = (s.sat_z_m / cell_m).round() * cell_m;
                let moved = 3.0f64.sqrt() * cell_m / 2.0;
                let altitude = ((s.sat_x_m.powi(2) + s.sat_y_m.powi(2) + s.sat_z_m.powi(2)).sqrt() - EARTH_RADIUS_M)
                    .max(100_000.0);
                s.sigma_los_rad = widen(s.sigma_los_rad, moved / altitude);
            }
            Some(Obs::Track(_)) | None => {}
        }
    }
    out
}

/// The salt of this node's pseudonyms, from its signing key (secret, stable across restarts).
pub fn salt(signing_key: &ed25519_dalek::SigningKey) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    h.update(b"trilink sensor pseudonyms");
    h.update(signing_key.to_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn radar(sensor: &str, lat: f64, lon: f64) -> wire::Measurement {
        wire::Measurement {
            time_unix_ns: 1,
            sensor: sensor.into(),
            nation: "USA".into(),
            obs: Some(Obs::Radar(wire::RadarMeasurement {
                lat_deg: lat,
                lon_deg: lon,
                alt_m: 433.0,
                range_m: 800_000.0,
                az_rad: 4.9,
                el_rad: 0.2,
                range_rate_mps: None,
                sigma_range_m: 40.0,
                sigma_az_rad: 0.0015,
                sigma_el_rad: 0.0015,
                sigma_range_rate_mps: None,
            })),
        }
    }

    #[test]
    fn sensors_get_stable_distinct_pseudonyms_and_sites_a_grid_with_wider_errors() {
        let salt = [7u8; 32];
        let t = Transform { pseudonymize_sensors: true, site_precision_km: 10.0 };
        let batch = MeasurementBatch {
            measurements: vec![radar("USA-TPY2-SHARIKI", 40.88, 140.34), radar("USA-TPY2-KYOGA", 35.77, 135.2)],
        };
        let out = apply(&batch, &t, &salt);
        let again = apply(&batch, &t, &salt);
        assert_eq!(out, again, "stable");
        let bytes = prost::Message::encode_to_vec(&out);
        assert!(!bytes.windows(7).any(|w| w == b"SHARIKI" || w == b"KYOGA-"), "no sensor id left");
        assert_ne!(out.measurements[0].sensor, out.measurements[1].sensor, "distinct sensors stay distinct");
        assert!(out.measurements[0].sensor.starts_with("USA-S"));
        let Some(Obs::Radar(r)) = &out.measurements[0].obs else { panic!() };
        let cell = 10_000.0 / M_PER_DEG;
        assert!(((r.lat_deg / cell) - (r.lat_deg / cell).round()).abs() < 1e-9);
        assert!((r.lat_deg - 40.88).abs() <= cell / 2.0 + 1e-9);
        assert!(r.sigma_range_m > 7_000.0 && r.sigma_az_rad > 0.0015);
        // Another node's salt gives other pseudonyms.
        assert_ne!(apply(&batch, &t, &[8u8; 32]).measurements[0].sensor, out.measurements[0].sensor);
        // No transform, no change.
        let none = Transform { pseudonymize_sensors: false, site_precision_km: 0.0 };
        assert_eq!(apply(&batch, &none, &salt), batch);
    }
}
