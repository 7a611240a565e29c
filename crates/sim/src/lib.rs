//! The simulator, trilink's source of truth: scenario files, missile flights, and radar and
//! space-infrared sensors that observe them with noise, misses and clutter. Deterministic from
//! the scenario's seed. No IO but writing to a caller's `io::Write`.

pub mod orbit;
pub mod output;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod sensors;

pub use run::{end_time, fly_all, measure_all, truth_all, Flown, LaunchError, Measurement, TruthSample};
pub use scenario::{parse, Atmosphere, Scenario, ScenarioError};
