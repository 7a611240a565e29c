//! Simulator measurements as the fusion engine receives them — the same fields a sensor sends
//! over the wire, nothing of the truth.

use fusion::{Measurement, Observation, RadarObs, SpaceIrObs};
use sim::sensors::Observation as SimObs;
use sim::Scenario;

/// Converts one simulator report; `None` if the engine's input checks refuse it (counted by
/// the caller; with bundled scenarios this does not happen).
pub fn to_fusion(scenario: &Scenario, m: &sim::Measurement) -> Option<Measurement> {
    let radars = scenario.radars.len();
    match &m.observation {
        SimObs::Radar { aer, range_rate_mps } => {
            let r = &scenario.radars[m.sensor];
            let obs = RadarObs::new(
                r.site,
                aer.range_m,
                aer.az_rad,
                aer.el_rad,
                *range_rate_mps,
                (r.sigma_range_m, r.sigma_az_rad, r.sigma_el_rad),
                r.sigma_range_rate_mps,
            )
            .ok()?;
            Some(Measurement { time: m.time, sensor: r.id.clone(), nation: r.nation, obs: Observation::Radar(obs) })
        }
        SimObs::SpaceIr { alpha_rad, beta_rad, sat_pos_ecef_m } => {
            let s = &scenario.space_ir[m.sensor - radars];
            let obs = SpaceIrObs::new(*sat_pos_ecef_m, *alpha_rad, *beta_rad, s.sigma_los_rad).ok()?;
            Some(Measurement { time: m.time, sensor: s.id.clone(), nation: s.nation, obs: Observation::SpaceIr(obs) })
        }
    }
}
