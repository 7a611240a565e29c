//! The simulator's output files, documented for integrators in `docs/sim-output.md`:
//! `truth.ndjson`, `measurements.ndjson` (one JSON object a line, time order, times RFC 3339
//! UTC with nine fraction digits) and `summary.json`.

use crate::run::{Flown, Measurement, TruthSample};
use crate::scenario::{Aim, Scenario};
use crate::sensors::Observation;
use geodesy::ecef_to_geodetic;
use serde::Serialize;
use std::io::{self, Write};
use vocab::UtcNanos;

/// Output format version, written into `summary.json`; bumped on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Serialize)]
struct Site {
    lat_deg: f64,
    lon_deg: f64,
    alt_m: f64,
}

impl From<&geodesy::Geodetic> for Site {
    fn from(g: &geodesy::Geodetic) -> Site {
        Site { lat_deg: g.lat_deg(), lon_deg: g.lon_deg(), alt_m: g.alt_m }
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum MeasurementRecord<'a> {
    Radar {
        time: String,
        sensor: &'a str,
        nation: &'a str,
        site: Site,
        range_m: f64,
        az_rad: f64,
        el_rad: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        range_rate_mps: Option<f64>,
        sigma_range_m: f64,
        sigma_az_rad: f64,
        sigma_el_rad: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        sigma_range_rate_mps: Option<f64>,
        truth: Option<&'a str>,
    },
    SpaceIr {
        time: String,
        sensor: &'a str,
        nation: &'a str,
        sat_pos_ecef_m: [f64; 3],
        los_alpha_rad: f64,
        los_beta_rad: f64,
        sigma_los_rad: f64,
        truth: Option<&'a str>,
    },
}

#[derive(Serialize)]
struct TruthRecord<'a> {
    time: String,
    launch: &'a str,
    pos_ecef_m: [f64; 3],
    vel_ecef_mps: [f64; 3],
    lat_deg: f64,
    lon_deg: f64,
    alt_m: f64,
    phase: &'static str,
}

fn arr(v: &geodesy::Vector3<f64>) -> [f64; 3] {
    [v.x, v.y, v.z]
}

fn write_line<W: Write, T: Serialize>(out: &mut W, record: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *out, record).map_err(io::Error::other)?;
    out.write_all(b"\n")
}

/// Writes `measurements.ndjson`.
pub fn write_measurements<W: Write>(
    out: &mut W,
    scenario: &Scenario,
    flown: &[Flown],
    measurements: &[Measurement],
) -> io::Result<()> {
    let radars = scenario.radars.len();
    for m in measurements {
        let time = m.time.to_string();
        let truth = m.truth.map(|i| flown[i].plan.id.as_str());
        match &m.observation {
            Observation::Radar { aer, range_rate_mps } => {
                let r = &scenario.radars[m.sensor];
                write_line(
                    out,
                    &MeasurementRecord::Radar {
                        time,
                        sensor: &r.id,
                        nation: r.nation.as_str(),
                        site: Site::from(&r.site),
                        range_m: aer.range_m,
                        az_rad: aer.az_rad,
                        el_rad: aer.el_rad,
                        range_rate_mps: *range_rate_mps,
                        sigma_range_m: r.sigma_range_m,
                        sigma_az_rad: r.sigma_az_rad,
                        sigma_el_rad: r.sigma_el_rad,
                        sigma_range_rate_mps: range_rate_mps.and(r.sigma_range_rate_mps),
                        truth,
                    },
                )?;
            }
            Observation::SpaceIr { alpha_rad, beta_rad, sat_pos_ecef_m } => {
                let s = &scenario.space_ir[m.sensor - radars];
                write_line(
                    out,
                    &MeasurementRecord::SpaceIr {
                        time,
                        sensor: &s.id,
                        nation: s.nation.as_str(),
                        sat_pos_ecef_m: arr(sat_pos_ecef_m),
                        los_alpha_rad: *alpha_rad,
                        los_beta_rad: *beta_rad,
                        sigma_los_rad: s.sigma_los_rad,
                        truth,
                    },
                )?;
            }
        }
    }
    Ok(())
}

/// Writes `truth.ndjson`.
pub fn write_truth<W: Write>(out: &mut W, flown: &[Flown], truth: &[TruthSample]) -> io::Result<()> {
    for s in truth {
        let g = ecef_to_geodetic(&s.state.pos);
        write_line(
            out,
            &TruthRecord {
                time: s.time.to_string(),
                launch: &flown[s.launch].plan.id,
                pos_ecef_m: arr(&s.state.pos),
                vel_ecef_mps: arr(&s.state.vel),
                lat_deg: g.lat_deg(),
                lon_deg: g.lon_deg(),
                alt_m: g.alt_m,
                phase: s.state.phase.as_str(),
            },
        )?;
    }
    Ok(())
}

#[derive(Serialize)]
struct Summary<'a> {
    format_version: u32,
    scenario: &'a str,
    seed: u64,
    start: String,
    end: String,
    /// The day's air this run flew, when the scenario has an `[atmosphere]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    air: Option<AirSummary>,
    launches: Vec<LaunchSummary<'a>>,
    sensors: Vec<SensorSummary<'a>>,
    counts: Counts,
}

#[derive(Serialize)]
struct AirSummary {
    density_offset: f64,
    /// Per layer: vertical wavelength (m), amplitude (fraction) and phase (rad).
    layers: Vec<(f64, f64, f64)>,
}

#[derive(Serialize)]
struct LaunchSummary<'a> {
    id: &'a str,
    class: &'a str,
    site: Site,
    time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    aim: Option<Site>,
    azimuth_deg: f64,
    kick_deg: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cutoff_s: Option<f64>,
    burnout_time: String,
    apogee_time: String,
    apogee_alt_m: f64,
    impact_time: String,
    impact: Site,
    range_m: f64,
    flight_time_s: f64,
}

#[derive(Serialize)]
struct SensorSummary<'a> {
    id: &'a str,
    nation: &'a str,
    kind: &'static str,
}

#[derive(Serialize)]
struct Counts {
    truth_samples: usize,
    measurements: usize,
    false_alarms: usize,
}

/// Writes `summary.json`: what flew, where it landed, and who was looking.
pub fn write_summary<W: Write>(
    out: &mut W,
    scenario: &Scenario,
    flown: &[Flown],
    end: UtcNanos,
    truth_samples: usize,
    measurements: &[Measurement],
) -> io::Result<()> {
    let at = |f: &Flown, s: f64| f.plan.time.add_secs_f64(s).to_string();
    let summary = Summary {
        format_version: FORMAT_VERSION,
        scenario: &scenario.name,
        seed: scenario.seed,
        start: scenario.start.to_string(),
        end: end.to_string(),
        air: scenario.atmosphere.draw(scenario.seed).map(|a| AirSummary {
            density_offset: a.offset,
            layers: a
                .layers
                .iter()
                .zip(flight::atmosphere::LAYER_WAVELENGTHS_M)
                .map(|((amplitude, phase), wavelength)| (wavelength, *amplitude, *phase))
                .collect(),
        }),
        launches: flown
            .iter()
            .map(|f| LaunchSummary {
                id: &f.plan.id,
                class: &f.plan.class,
                site: Site::from(&f.plan.site),
                time: f.plan.time.to_string(),
                aim: match &f.plan.aim {
                    Aim::Point { target } => Some(Site::from(target)),
                    Aim::Azimuth { .. } => None,
                },
                azimuth_deg: f.program.azimuth_rad.to_degrees(),
                kick_deg: f.program.kick_rad.to_degrees(),
                cutoff_s: f.program.cutoff_s,
                burnout_time: at(f, f.trajectory.burnout_s),
                apogee_time: at(f, f.trajectory.apogee_s),
                apogee_alt_m: f.trajectory.apogee_alt_m,
                impact_time: f.impact_time().to_string(),
                impact: Site::from(&f.trajectory.impact),
                range_m: f.trajectory.range_m(),
                flight_time_s: f.trajectory.impact_s,
            })
            .collect(),
        sensors: scenario
            .radars
            .iter()
            .map(|r| SensorSummary { id: &r.id, nation: r.nation.as_str(), kind: "radar" })
            .chain(scenario.space_ir.iter().map(|s| SensorSummary {
                id: &s.id,
                nation: s.nation.as_str(),
                kind: "space_ir",
            }))
            .collect(),
        counts: Counts {
            truth_samples,
            measurements: measurements.len(),
            false_alarms: measurements.iter().filter(|m| m.truth.is_none()).count(),
        },
    };
    serde_json::to_writer_pretty(&mut *out, &summary).map_err(io::Error::other)?;
    out.write_all(b"\n")
}
