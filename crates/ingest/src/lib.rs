//! Sensor reports as they arrive from outside — one JSON object per line, the schema of
//! docs/sim-output.md (`"type": "radar"` or `"space_ir"`) — parsed and checked into
//! `fusion::Measurement`. This crate is the format boundary: only it derives serde for reports.
//!
//! Every rejection says which field is wrong and why; a report that parses is physically
//! possible (the fusion constructors check ranges), so nothing malformed reaches a track.

use fusion::{Measurement, Observation, RadarObs, SpaceIrObs};
use geodesy::{Geodetic, Vector3};
use serde::Deserialize;
use vocab::{Nation, UtcNanos};

/// Longest report line accepted: a radar report is ~400 bytes; 64 KiB leaves room for any
/// future field without letting one line exhaust memory.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Longest sensor id.
pub const MAX_SENSOR_ID_BYTES: usize = 64;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IngestError {
    #[error("failed to parse report: line longer than {MAX_LINE_BYTES} bytes")]
    TooLong,
    #[error("failed to parse report: {0}")]
    Json(String),
    #[error("failed to accept report: field `{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Site {
    lat_deg: f64,
    lon_deg: f64,
    alt_m: f64,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Report {
    Radar {
        time: String,
        sensor: String,
        nation: String,
        site: Site,
        range_m: f64,
        az_rad: f64,
        el_rad: f64,
        range_rate_mps: Option<f64>,
        sigma_range_m: f64,
        sigma_az_rad: f64,
        sigma_el_rad: f64,
        sigma_range_rate_mps: Option<f64>,
        /// Evaluation only (the simulator's truth label); accepted and ignored.
        #[serde(default)]
        #[allow(dead_code)]
        truth: Option<String>,
    },
    SpaceIr {
        time: String,
        sensor: String,
        nation: String,
        sat_pos_ecef_m: [f64; 3],
        los_alpha_rad: f64,
        los_beta_rad: f64,
        sigma_los_rad: f64,
        #[serde(default)]
        #[allow(dead_code)]
        truth: Option<String>,
    },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> IngestError {
    IngestError::Invalid { field, reason: reason.into() }
}

fn common(time: &str, sensor: &str, nation: &str) -> Result<(UtcNanos, Nation), IngestError> {
    let time = UtcNanos::parse_rfc3339(time).map_err(|e| invalid("time", e.to_string()))?;
    if sensor.is_empty() || sensor.len() > MAX_SENSOR_ID_BYTES {
        return Err(invalid("sensor", format!("must be 1 to {MAX_SENSOR_ID_BYTES} bytes")));
    }
    let nation = Nation::parse(nation).map_err(|e| invalid("nation", e.to_string()))?;
    Ok((time, nation))
}

/// Parses one report line.
pub fn parse_line(line: &str) -> Result<Measurement, IngestError> {
    if line.len() > MAX_LINE_BYTES {
        return Err(IngestError::TooLong);
    }
    let report: Report = serde_json::from_str(line).map_err(|e| IngestError::Json(e.to_string()))?;
    match report {
        Report::Radar {
            time,
            sensor,
            nation,
            site,
            range_m,
            az_rad,
            el_rad,
            range_rate_mps,
            sigma_range_m,
            sigma_az_rad,
            sigma_el_rad,
            sigma_range_rate_mps,
            ..
        } => {
            let (time, nation) = common(&time, &sensor, &nation)?;
            let obs = radar_obs(&wire::RadarMeasurement {
                lat_deg: site.lat_deg,
                lon_deg: site.lon_deg,
                alt_m: site.alt_m,
                range_m,
                az_rad,
                el_rad,
                range_rate_mps,
                sigma_range_m,
                sigma_az_rad,
                sigma_el_rad,
                sigma_range_rate_mps,
            })?;
            Ok(Measurement { time, sensor, nation, obs: Observation::Radar(obs) })
        }
        Report::SpaceIr {
            time, sensor, nation, sat_pos_ecef_m, los_alpha_rad, los_beta_rad, sigma_los_rad, ..
        } => {
            let (time, nation) = common(&time, &sensor, &nation)?;
            let obs = space_ir_obs(&wire::SpaceIrMeasurement {
                sat_x_m: sat_pos_ecef_m[0],
                sat_y_m: sat_pos_ecef_m[1],
                sat_z_m: sat_pos_ecef_m[2],
                los_alpha_rad,
                los_beta_rad,
                sigma_los_rad,
            })?;
            Ok(Measurement { time, sensor, nation, obs: Observation::SpaceIr(obs) })
        }
    }
}

/// A radar observation from its wire form, every field checked (both report forms use it).
fn radar_obs(r: &wire::RadarMeasurement) -> Result<RadarObs, IngestError> {
    if !(r.lat_deg.abs() <= 90.0 && r.lon_deg.abs() <= 180.0) {
        return Err(invalid("site", format!("({}, {}) is not a latitude and longitude", r.lat_deg, r.lon_deg)));
    }
    if r.range_rate_mps.is_some() != r.sigma_range_rate_mps.is_some() {
        return Err(invalid("sigma_range_rate_mps", "range rate and its sigma come together or not at all"));
    }
    RadarObs::new(
        Geodetic::from_degrees(r.lat_deg, r.lon_deg, r.alt_m),
        r.range_m,
        r.az_rad,
        r.el_rad,
        r.range_rate_mps,
        (r.sigma_range_m, r.sigma_az_rad, r.sigma_el_rad),
        r.sigma_range_rate_mps,
    )
    .map_err(|e| invalid("radar", e.to_string()))
}

fn space_ir_obs(s: &wire::SpaceIrMeasurement) -> Result<SpaceIrObs, IngestError> {
    SpaceIrObs::new(Vector3::new(s.sat_x_m, s.sat_y_m, s.sat_z_m), s.los_alpha_rad, s.los_beta_rad, s.sigma_los_rad)
        .map_err(|e| invalid("space_ir", e.to_string()))
}

/// The wire form of a validated measurement (for the log and for partners).
pub fn to_wire(m: &Measurement) -> wire::Measurement {
    use wire::measurement::Obs;
    let obs = match &m.obs {
        Observation::Radar(r) => Obs::Radar(wire::RadarMeasurement {
            lat_deg: r.site.lat_deg(),
            lon_deg: r.site.lon_deg(),
            alt_m: r.site.alt_m,
            range_m: r.range_m,
            az_rad: r.az_rad,
            el_rad: r.el_rad,
            range_rate_mps: r.range_rate_mps,
            sigma_range_m: r.sigma_range_m,
            sigma_az_rad: r.sigma_az_rad,
            sigma_el_rad: r.sigma_el_rad,
            sigma_range_rate_mps: r.sigma_range_rate_mps,
        }),
        Observation::SpaceIr(s) => Obs::SpaceIr(wire::SpaceIrMeasurement {
            sat_x_m: s.sat_pos_ecef_m.x,
            sat_y_m: s.sat_pos_ecef_m.y,
            sat_z_m: s.sat_pos_ecef_m.z,
            los_alpha_rad: s.alpha_rad,
            los_beta_rad: s.beta_rad,
            sigma_los_rad: s.sigma_rad,
        }),
        Observation::Partner(p) => Obs::Track(wire::LocalTrack {
            track_label: p.partner_track.clone(),
            pos_ecef_m: p.pos_vel.fixed_rows::<3>(0).iter().copied().collect(),
            vel_ecef_mps: p.pos_vel.fixed_rows::<3>(3).iter().copied().collect(),
            covariance: p.cov.transpose().iter().copied().collect(),
        }),
    };
    wire::Measurement {
        time_unix_ns: m.time.as_nanos(),
        sensor: m.sensor.clone(),
        nation: m.nation.as_str().to_string(),
        obs: Some(obs),
    }
}

/// Longest track label.
pub const MAX_TRACK_LABEL_BYTES: usize = 64;

/// A measurement from its wire form, checked exactly as a report line is.
pub fn from_wire(w: &wire::Measurement) -> Result<Measurement, IngestError> {
    use wire::measurement::Obs;
    if w.sensor.is_empty() || w.sensor.len() > MAX_SENSOR_ID_BYTES {
        return Err(invalid("sensor", format!("must be 1 to {MAX_SENSOR_ID_BYTES} bytes")));
    }
    let nation = Nation::parse(&w.nation).map_err(|e| invalid("nation", e.to_string()))?;
    let time = UtcNanos::from_nanos(w.time_unix_ns);
    let obs = match &w.obs {
        None => return Err(invalid("obs", "none of radar, space_ir or track is set")),
        Some(Obs::Radar(r)) => Observation::Radar(radar_obs(r)?),
        Some(Obs::SpaceIr(s)) => Observation::SpaceIr(space_ir_obs(s)?),
        Some(Obs::Track(t)) => {
            if t.track_label.is_empty() || t.track_label.len() > MAX_TRACK_LABEL_BYTES {
                return Err(invalid("track_label", format!("must be 1 to {MAX_TRACK_LABEL_BYTES} bytes")));
            }
            if t.pos_ecef_m.len() != 3 || t.vel_ecef_mps.len() != 3 || t.covariance.len() != 36 {
                return Err(invalid("track", "needs 3 position, 3 velocity and 36 covariance values"));
            }
            let pv = nalgebra::SVector::<f64, 6>::from_iterator(t.pos_ecef_m.iter().chain(&t.vel_ecef_mps).copied());
            let cov = nalgebra::SMatrix::<f64, 6, 6>::from_row_slice(&t.covariance);
            Observation::Partner(
                fusion::PartnerTrack::new(t.track_label.clone(), pv, cov)
                    .map_err(|e| invalid("track", e.to_string()))?,
            )
        }
    };
    Ok(Measurement { time, sensor: w.sensor.clone(), nation, obs })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RADAR: &str = r#"{"type":"radar","time":"2026-05-14T05:28:10.000000000Z","sensor":"KOR-GP-1","nation":"KOR","site":{"lat_deg":36.95,"lon_deg":127.45,"alt_m":250.0},"range_m":262143.2,"az_rad":6.1,"el_rad":0.12,"sigma_range_m":25.0,"sigma_az_rad":0.001,"sigma_el_rad":0.001,"truth":"L1"}"#;
    const IR: &str = r#"{"type":"space_ir","time":"2026-05-14T05:28:00.000000000Z","sensor":"USA-SBIRS-GEO-1","nation":"USA","sat_pos_ecef_m":[-14420532.6,39621012.5,0.0],"los_alpha_rad":0.01,"los_beta_rad":-0.1,"sigma_los_rad":3e-5,"truth":null}"#;

    #[test]
    fn good_reports_parse() {
        let m = parse_line(RADAR).unwrap();
        assert_eq!((m.sensor.as_str(), m.nation.as_str()), ("KOR-GP-1", "KOR"));
        assert!(matches!(parse_line(IR).unwrap().obs, Observation::SpaceIr(_)));
    }

    #[test]
    fn bad_reports_name_the_field() {
        let cases = [
            (RADAR.replace("\"el_rad\":0.12", "\"el_rad\":3.0"), "el_rad"),
            (RADAR.replace("2026-05-14T05:28:10.000000000Z", "yesterday"), "`time`"),
            (RADAR.replace("\"nation\":\"KOR\"", "\"nation\":\"Korea\""), "`nation`"),
            (RADAR.replace("\"range_m\":262143.2", "\"range_m\":-1"), "range_m"),
            (RADAR.replace("\"sigma_range_m\":25.0", "\"sigma_range_m\":0"), "sigma_range_m"),
            (RADAR.replace("\"lat_deg\":36.95", "\"lat_deg\":136.95"), "`site`"),
            (RADAR.replace("\"az_rad\":6.1,", "\"az_rad\":6.1,\"range_rate_mps\":5.0,"), "sigma_range_rate_mps"),
            (RADAR.replace("\"type\":\"radar\"", "\"type\":\"sonar\""), "unknown variant"),
            (RADAR.replace("\"sensor\":\"KOR-GP-1\",", "\"sensor\":\"KOR-GP-1\",\"colour\":\"red\","), "unknown field"),
            (IR.replace("\"sigma_los_rad\":3e-5", "\"sigma_los_rad\":-1"), "sigma_los_rad"),
            (IR.replace("[-14420532.6,39621012.5,0.0]", "[1.0,2.0,3.0]"), "sat_pos_ecef_m"),
            ("{".to_string(), "EOF"),
            ("".to_string(), "EOF"),
            ("x".repeat(MAX_LINE_BYTES + 1), "longer than"),
        ];
        for (line, expect) in cases {
            let err = parse_line(&line).expect_err(&line).to_string();
            assert!(err.contains(expect), "{err:?} lacks {expect:?}");
        }
    }

    #[test]
    fn wire_form_round_trips_and_is_checked() {
        for line in [RADAR, IR] {
            let m = parse_line(line).unwrap();
            assert_eq!(from_wire(&to_wire(&m)).unwrap(), m);
        }
        let mut w = to_wire(&parse_line(RADAR).unwrap());
        if let Some(wire::measurement::Obs::Radar(r)) = &mut w.obs {
            r.el_rad = 3.0;
        }
        assert!(from_wire(&w).unwrap_err().to_string().contains("el_rad"));
        w.obs = None;
        assert!(from_wire(&w).unwrap_err().to_string().contains("none of radar"));
        let track = |cov: Vec<f64>| wire::Measurement {
            time_unix_ns: 1,
            sensor: "USA-C2".into(),
            nation: "USA".into(),
            obs: Some(wire::measurement::Obs::Track(wire::LocalTrack {
                track_label: "T1".into(),
                pos_ecef_m: vec![-3.0e6, 3.5e6, 4.2e6],
                vel_ecef_mps: vec![1000.0, 0.0, 500.0],
                covariance: cov,
            })),
        };
        let identity: Vec<f64> = (0..36).map(|i| if i % 7 == 0 { 100.0 } else { 0.0 }).collect();
        let m = from_wire(&track(identity.clone())).unwrap();
        assert_eq!(from_wire(&to_wire(&m)).unwrap(), m);
        let mut negative = identity.clone();
        negative[7] = -1.0;
        assert!(from_wire(&track(negative)).unwrap_err().to_string().contains("positive definite"));
        let mut asym = identity;
        asym[1] = 5.0;
        assert!(from_wire(&track(asym)).unwrap_err().to_string().contains("symmetric"));
        assert!(from_wire(&track(vec![1.0; 3])).unwrap_err().to_string().contains("36 covariance"));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(s in "\\PC{0,400}") {
            let _ = parse_line(&s);
        }

        #[test]
        fn arbitrary_protobuf_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            if let Ok(batch) = <wire::MeasurementBatch as prost::Message>::decode(bytes.as_slice()) {
                for m in &batch.measurements {
                    let _ = from_wire(m);
                }
            }
        }

        #[test]
        fn mutated_protobuf_never_panics(i in 0usize..400, b in proptest::prelude::any::<u8>()) {
            let batch = wire::MeasurementBatch { measurements: vec![to_wire(&parse_line(RADAR).unwrap()), to_wire(&parse_line(IR).unwrap())] };
            let mut bytes = prost::Message::encode_to_vec(&batch);
            let k = i % bytes.len();
            bytes[k] = b;
            if let Ok(batch) = <wire::MeasurementBatch as prost::Message>::decode(bytes.as_slice()) {
                for m in &batch.measurements {
                    let _ = from_wire(m);
                }
            }
        }

        #[test]
        fn mutated_reports_never_panic(i in 0usize..300, c in proptest::char::any()) {
            let mut chars: Vec<char> = RADAR.chars().collect();
            let k = i % chars.len();
            chars[k] = c;
            let _ = parse_line(&chars.into_iter().collect::<String>());
        }
    }
}
