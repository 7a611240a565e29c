//! Shaping the pitch programme: find the kick angle (and, for less than full energy, the thrust
//! cut-off) that gives a minimum-energy, lofted or depressed trajectory to a range or apogee.
//!
//! Range as a function of the kick is unimodal: a small kick flies nearly straight up (lofted,
//! short range, high apogee), the range peaks at the minimum-energy kick, and larger kicks fly
//! flatter and shorter (depressed). Lofted solutions are on the rising side, depressed on the
//! falling side. A minimum-energy shot shorter than the maximum range cuts thrust early,
//! keeping at each cut-off the range-maximising kick. Searches run on a coarse step; the last
//! few secant steps run at the caller's step so the requested figure is hit at full accuracy.

use crate::trajectory::{fly, FlightConfig, FlightError, PitchProgram, Trajectory};
use crate::vehicle::Vehicle;
use geodesy::Geodetic;

/// The trajectory shape asked of a launch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// The most range for the energy: the maximum range of the class, or less by early cut-off.
    MinimumEnergy { range_m: Option<f64> },
    /// Steeper than minimum energy, full burn: to a range, to an apogee, or both (then the
    /// thrust is cut off early to hit both).
    Lofted { range_m: Option<f64>, apogee_m: Option<f64> },
    /// Flatter than minimum energy, full burn, to a range.
    Depressed { range_m: f64 },
    /// A given kick and optional cut-off, not solved.
    Explicit { kick_rad: f64, cutoff_s: Option<f64> },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SolveError {
    #[error("failed to shape the trajectory: {requested} km is beyond this missile's reach of {reach} km")]
    OutOfReach { requested: String, reach: String },
    #[error("failed to shape the trajectory: {0}")]
    Infeasible(String),
    #[error(transparent)]
    Flight(#[from] FlightError),
}

/// A solved launch: the programme and the flight it gives at the caller's step.
#[derive(Debug, Clone)]
pub struct SolvedLaunch {
    pub program: PitchProgram,
    pub trajectory: Trajectory,
}

/// Kick angles searched, radians: from nearly vertical to well past any minimum-energy kick.
const KICK_MIN_RAD: f64 = 0.002;
const KICK_MAX_RAD: f64 = 1.2;
/// Iterations of the coarse searches. Bisection halves the bracket (18 steps: 4e-6 of it) and
/// golden section shrinks it by 0.618 (16 steps: 5e-4 rad of kick, where the range is flat to
/// second order); the secant steps at the fine step then polish the figure that was asked for.
const BISECTIONS: usize = 18;
const GOLDEN_STEPS: usize = 16;
const SECANT_STEPS: usize = 6;

struct Problem<'a> {
    vehicle: &'a Vehicle,
    site: Geodetic,
    azimuth_rad: f64,
    coarse: FlightConfig,
    fine: FlightConfig,
}

/// (range, apogee) of a flight. A flight that crashes while boosting (the far end of the
/// depressed side) scores a negative range that falls with the kick, so that searches see a
/// continued decline there rather than a flat plateau they cannot climb out of.
#[derive(Clone, Copy)]
struct Outcome {
    range_m: f64,
    apogee_m: f64,
}

impl Problem<'_> {
    fn program(&self, kick_rad: f64, cutoff_s: Option<f64>) -> PitchProgram {
        let first_burn = self.vehicle.stages[0].burn_time_s;
        PitchProgram {
            azimuth_rad: self.azimuth_rad,
            vertical_rise_s: (0.1 * first_burn).clamp(4.0, 12.0),
            pitch_over_s: (0.15 * first_burn).clamp(6.0, 20.0),
            kick_rad,
            cutoff_s,
        }
    }

    fn earliest_cutoff_s(&self) -> f64 {
        let p = self.program(0.0, None);
        p.vertical_rise_s + p.pitch_over_s + 1.0
    }

    fn outcome(&self, kick_rad: f64, cutoff_s: Option<f64>, cfg: &FlightConfig) -> Result<Outcome, SolveError> {
        match fly(self.vehicle, &self.site, &self.program(kick_rad, cutoff_s), cfg) {
            Ok(t) => Ok(Outcome { range_m: t.range_m(), apogee_m: t.apogee_alt_m }),
            Err(FlightError::CrashedDuringBoost { .. }) => Ok(Outcome { range_m: -1e7 * kick_rad, apogee_m: 0.0 }),
            Err(e) => Err(e.into()),
        }
    }

    /// The kick that maximises range at this cut-off (golden-section search).
    fn best_kick(&self, cutoff_s: Option<f64>) -> Result<(f64, Outcome), SolveError> {
        let phi = (5f64.sqrt() - 1.0) / 2.0;
        let (mut a, mut b) = (KICK_MIN_RAD, KICK_MAX_RAD);
        let mut c = b - phi * (b - a);
        let mut d = a + phi * (b - a);
        let mut fc = self.outcome(c, cutoff_s, &self.coarse)?.range_m;
        let mut fd = self.outcome(d, cutoff_s, &self.coarse)?.range_m;
        for _ in 0..GOLDEN_STEPS {
            if fc > fd {
                (b, d, fd) = (d, c, fc);
                c = b - phi * (b - a);
                fc = self.outcome(c, cutoff_s, &self.coarse)?.range_m;
            } else {
                (a, c, fc) = (c, d, fd);
                d = a + phi * (b - a);
                fd = self.outcome(d, cutoff_s, &self.coarse)?.range_m;
            }
        }
        let kick = 0.5 * (a + b);
        Ok((kick, self.outcome(kick, cutoff_s, &self.coarse)?))
    }

    /// Bisects a knob over `[lo, hi]` for `target`, where `f` is monotone on the bracket.
    fn bisect(
        &self,
        mut lo: f64,
        mut hi: f64,
        target: f64,
        f: impl Fn(f64) -> Result<f64, SolveError>,
    ) -> Result<f64, SolveError> {
        let rising = f(hi)? > f(lo)?;
        for _ in 0..BISECTIONS {
            let mid = 0.5 * (lo + hi);
            if (f(mid)? < target) == rising {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Ok(0.5 * (lo + hi))
    }

    /// Secant polish of a knob at the fine step, kept inside `[lo, hi]`.
    fn polish(
        &self,
        x0: f64,
        (lo, hi): (f64, f64),
        target: f64,
        f: impl Fn(f64) -> Result<f64, SolveError>,
    ) -> Result<f64, SolveError> {
        let mut x_prev = x0;
        let mut f_prev = f(x_prev)? - target;
        let mut x = (x0 + 1e-4 * (hi - lo)).min(hi);
        for _ in 0..SECANT_STEPS {
            let fx = f(x)? - target;
            if fx.abs() < 0.01 || fx == f_prev {
                break;
            }
            let next = (x - fx * (x - x_prev) / (fx - f_prev)).clamp(lo, hi);
            (x_prev, f_prev, x) = (x, fx, next);
        }
        Ok(x)
    }
}

/// Shapes the pitch programme of `vehicle` launched from `site` toward `azimuth_rad`.
pub fn solve_program(
    vehicle: &Vehicle,
    site: &Geodetic,
    azimuth_rad: f64,
    shape: Shape,
    cfg: &FlightConfig,
) -> Result<SolvedLaunch, SolveError> {
    vehicle.validate().map_err(FlightError::from)?;
    let coarse =
        FlightConfig { boost_step_s: cfg.boost_step_s.max(0.25), coast_step_s: cfg.coast_step_s.max(4.0), ..*cfg };
    let p = Problem { vehicle, site: *site, azimuth_rad, coarse, fine: *cfg };
    let km = |m: f64| format!("{:.0}", m / 1000.0);
    let full_burn = vehicle.total_burn_s();
    let range_of = |kick: f64, cutoff: Option<f64>, cfg: &FlightConfig| p.outcome(kick, cutoff, cfg).map(|o| o.range_m);

    let (kick, cutoff) = match shape {
        Shape::Explicit { kick_rad, cutoff_s } => (kick_rad, cutoff_s),
        Shape::MinimumEnergy { range_m } => {
            let (kick_full, best) = p.best_kick(None)?;
            match range_m {
                None => (kick_full, None),
                Some(r) if r > best.range_m * 1.0005 => {
                    return Err(SolveError::OutOfReach { requested: km(r), reach: km(best.range_m) })
                }
                Some(r) => {
                    let lo = p.earliest_cutoff_s();
                    let max_range_at = |c: f64| p.best_kick(Some(c)).map(|(_, o)| o.range_m);
                    if max_range_at(lo)? > r {
                        return Err(SolveError::Infeasible(format!(
                            "{} km is shorter than this missile flies even with the earliest cut-off",
                            km(r)
                        )));
                    }
                    let c = p.bisect(lo, full_burn, r, max_range_at)?;
                    let (k, _) = p.best_kick(Some(c))?;
                    let c = p.polish(c, (lo, full_burn), r, |c| range_of(k, Some(c), &p.fine))?;
                    (k, Some(c).filter(|c| *c < full_burn))
                }
            }
        }
        Shape::Lofted { range_m, apogee_m } => {
            let (kick_full, best) = p.best_kick(None)?;
            match (range_m, apogee_m) {
                (None, None) => return Err(SolveError::Infeasible("a lofted shot needs a range or an apogee".into())),
                (Some(r), _) if r > best.range_m => {
                    return Err(SolveError::OutOfReach { requested: km(r), reach: km(best.range_m) })
                }
                (Some(r), None) => {
                    let k = p.bisect(KICK_MIN_RAD, kick_full, r, |k| range_of(k, None, &p.coarse))?;
                    (p.polish(k, (KICK_MIN_RAD, kick_full), r, |k| range_of(k, None, &p.fine))?, None)
                }
                (None, Some(a)) => {
                    let apogee = |k: f64| p.outcome(k, None, &p.coarse).map(|o| o.apogee_m);
                    if a > apogee(KICK_MIN_RAD)? || a < best.apogee_m {
                        return Err(SolveError::Infeasible(format!(
                            "a lofted apogee must lie between {} km (minimum energy) and {} km (vertical) for this missile",
                            km(best.apogee_m),
                            km(apogee(KICK_MIN_RAD)?)
                        )));
                    }
                    let k = p.bisect(KICK_MIN_RAD, kick_full, a, apogee)?;
                    let fine_apogee = |k: f64| p.outcome(k, None, &p.fine).map(|o| o.apogee_m);
                    (p.polish(k, (KICK_MIN_RAD, kick_full), a, fine_apogee)?, None)
                }
                (Some(r), Some(a)) => {
                    // Less energy lowers the apogee of the lofted shot to range r: bisect the cut-off.
                    let lofted_kick = |c: f64| -> Result<f64, SolveError> {
                        let (k_best, o) = p.best_kick(Some(c))?;
                        if o.range_m < r {
                            return Ok(k_best);
                        }
                        p.bisect(KICK_MIN_RAD, k_best, r, |k| range_of(k, Some(c), &p.coarse))
                    };
                    let apogee_at = |c: f64| -> Result<f64, SolveError> {
                        let k = lofted_kick(c)?;
                        p.outcome(k, Some(c), &p.coarse).map(|o| o.apogee_m)
                    };
                    let lo = p.earliest_cutoff_s();
                    if apogee_at(full_burn)? < a {
                        return Err(SolveError::Infeasible(format!(
                            "apogee {} km at range {} km needs more energy than this missile has",
                            km(a),
                            km(r)
                        )));
                    }
                    let c = p.bisect(lo, full_burn, a, apogee_at)?;
                    let k = lofted_kick(c)?;
                    let k = p.polish(k, (KICK_MIN_RAD, KICK_MAX_RAD), r, |k| range_of(k, Some(c), &p.fine))?;
                    (k, Some(c).filter(|c| *c < full_burn))
                }
            }
        }
        Shape::Depressed { range_m: r } => {
            let (kick_full, best) = p.best_kick(None)?;
            if r > best.range_m {
                return Err(SolveError::OutOfReach { requested: km(r), reach: km(best.range_m) });
            }
            let k = p.bisect(kick_full, KICK_MAX_RAD, r, |k| range_of(k, None, &p.coarse))?;
            (p.polish(k, (kick_full, KICK_MAX_RAD), r, |k| range_of(k, None, &p.fine))?, None)
        }
    };
    let program = p.program(kick, cutoff);
    let trajectory = fly(vehicle, site, &program, cfg)?;
    Ok(SolvedLaunch { program, trajectory })
}
