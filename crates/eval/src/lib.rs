//! Judging the fusion engine against the simulator's truth (`trilink eval`): runs scenarios over
//! many seeds and measures position and velocity error against the posterior Cramér–Rao lower
//! bound, covariance consistency (NEES), multi-target accuracy (GOSPA), track breaks and
//! identity switches, launch-point and impact-point error, impact-ellipse coverage, and how
//! soon after launch the first impact prediction comes.
//!
//! No IO: the binary reads the scenario and writes the report and plots.

pub mod convert;
pub mod metrics;
pub mod pcrlb;
pub mod report;
mod run;
pub mod svg;

pub use report::{aggregate, Report, ScenarioReport};
pub use run::{evaluate, EvalConfig, RunOutcome};
