//! The synthetic cloud both fusion and ingest benchmarks draw from: objects in midcourse
//! over the Sea of Japan seen by five radars, reported in time order from a fixed start.

use crate::Failure;
use anyhow::anyhow;
use fusion::{Measurement, Observation, RadarObs};
use geodesy::{enu_rotation, geodetic_to_ecef, Geodetic, Vector3};
use sim::rng::Rng;
use sim::sensors::{Observation as SimObs, Radar};

/// When the cloud's reports begin.
pub const CLOUD_START: vocab::UtcNanos = vocab::UtcNanos::from_nanos(1_800_000_000 * vocab::NANOS_PER_SECOND);

/// Limits: beyond these the report stream does not fit comfortably in memory (~200 bytes a report).
pub const MAX_OBJECTS: usize = 20_000;
pub const MAX_REPORTS: f64 = 20e6;

/// Radar sites of the bundled scenarios, all round and long-range for the benchmark.
const SITES: [(&str, &str, f64, f64); 5] = [
    ("KOR-GP-1", "KOR", 36.95, 127.45),
    ("JPN-FPS5-SADO", "JPN", 38.0, 138.3),
    ("JPN-DDG-SOJ", "JPN", 39.0, 133.5),
    ("USA-TPY2-SHARIKI", "USA", 40.88, 140.34),
    ("KOR-GP-2", "KOR", 35.5, 129.3),
];

/// Most frames a scan may be split into.
pub const MAX_FRAMES: u32 = 1_000;

/// A cloud of objects in midcourse over the Sea of Japan seen by five radars: the reports,
/// in time order from a fixed start, the flights, the radars and their update interval.
/// Each radar's scan is reported in `frames` frames spread evenly over its update interval
/// (object i in frame i mod frames), the radars staggered by a fraction of a frame; with one
/// frame every radar reports every object at the same instants.
#[allow(clippy::type_complexity)]
pub fn cloud(
    objects_n: usize,
    reports_per_s: f64,
    seconds: f64,
    seed: u64,
    frames: u32,
) -> Result<(Vec<Measurement>, Vec<flight::Trajectory>, Vec<Radar>, f64), Failure> {
    if frames == 0 || frames > MAX_FRAMES {
        return Err(Failure::Input(anyhow!("--frames must be 1..={MAX_FRAMES}")));
    }
    let mut rng = Rng::for_stream(seed, "bench-fusion");
    // Objects: a cloud 300 km across at 300-600 km height over the Sea of Japan, moving
    // 2.5-3.5 km/s roughly east, as a salvo or a debris field in midcourse would.
    let centre = Geodetic::from_degrees(40.0, 134.0, 0.0);
    let rot = enu_rotation(&centre).transpose();
    let cfg = flight::FlightConfig::default();
    let mut objects = Vec::with_capacity(objects_n);
    for _ in 0..objects_n {
        let enu = Vector3::new(rng.uniform_in(-150e3, 150e3), rng.uniform_in(-150e3, 150e3), 0.0);
        let mut g = geodesy::ecef_to_geodetic(&(geodetic_to_ecef(&centre) + rot * enu));
        g.alt_m = rng.uniform_in(300e3, 600e3);
        let heading = rng.uniform_in(60f64, 120.0).to_radians();
        let speed = rng.uniform_in(2_500.0, 3_500.0);
        let v_enu = Vector3::new(speed * heading.sin(), speed * heading.cos(), rng.uniform_in(-500.0, 500.0));
        let v = enu_rotation(&g).transpose() * v_enu;
        let flight =
            flight::fly_ballistic(geodetic_to_ecef(&g), v, None, &cfg).map_err(|e| Failure::Run(anyhow!(e)))?;
        objects.push(flight);
    }
    let interval = objects_n as f64 * SITES.len() as f64 / reports_per_s;
    let radars: Vec<Radar> = SITES
        .iter()
        .map(|(id, nation, lat, lon)| -> Result<Radar, Failure> {
            Ok(Radar {
                id: (*id).to_string(),
                nation: vocab::Nation::parse(nation).map_err(|e| Failure::Run(anyhow!(e)))?,
                site: Geodetic::from_degrees(*lat, *lon, 50.0),
                boresight_az_rad: 0.0,
                half_width_rad: std::f64::consts::PI,
                min_el_rad: 0.0,
                max_el_rad: 90f64.to_radians(),
                max_range_m: 3_000e3,
                update_interval_s: interval,
                detection_probability: 0.95,
                sigma_range_m: 20.0,
                sigma_az_rad: 1e-3,
                sigma_el_rad: 1e-3,
                sigma_range_rate_mps: None,
                false_alarms_per_scan: 1.0,
            })
        })
        .collect::<Result<_, _>>()?;
    let start = CLOUD_START;
    let mut reports: Vec<Measurement> = Vec::with_capacity((reports_per_s * seconds) as usize);
    let mut clutter = Vec::new();
    let frame_s = interval / f64::from(frames);
    for (r, radar) in radars.iter().enumerate() {
        let site = radar.site_ecef();
        let mut rrng = Rng::for_stream(seed, &radar.id);
        let scans = (seconds / radar.update_interval_s).floor() as u64;
        let stagger_s = if frames > 1 { frame_s * r as f64 / radars.len() as f64 } else { 0.0 };
        for k in 0..scans * u64::from(frames) {
            let frame = (k % u64::from(frames)) as usize;
            let t_s = k as f64 * frame_s + stagger_s;
            let time = start.add_secs_f64(t_s);
            let push = |obs: SimObs, out: &mut Vec<Measurement>| {
                if let SimObs::Radar { aer, .. } = obs {
                    if let Ok(o) = RadarObs::new(
                        radar.site,
                        aer.range_m,
                        aer.az_rad,
                        aer.el_rad,
                        None,
                        (radar.sigma_range_m, radar.sigma_az_rad, radar.sigma_el_rad),
                        None,
                    ) {
                        out.push(Measurement {
                            time,
                            sensor: radar.id.clone(),
                            nation: radar.nation,
                            obs: Observation::Radar(o),
                        });
                    }
                }
            };
            for f in objects.iter().skip(frame).step_by(frames as usize) {
                let Some((pos, vel)) = f.state_at(t_s) else { continue };
                let Some((aer, rr)) = radar.geometry(&site, &pos, &vel) else { continue };
                let detected = rrng.bernoulli(radar.detection_probability);
                let obs = radar.measure(&aer, rr, &mut rrng);
                if detected {
                    push(obs, &mut reports);
                }
            }
            if frame != 0 {
                continue;
            }
            clutter.clear();
            radar.clutter(&mut rrng, &mut clutter);
            for obs in clutter.drain(..) {
                push(obs, &mut reports);
            }
        }
    }
    reports.sort_by_key(|m| m.time);
    Ok((reports, objects, radars, interval))
}
