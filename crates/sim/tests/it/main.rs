//! Integration tests of the simulator: determinism, the statistics of its sensors, and the
//! errors a malformed scenario gets.

mod determinism;
mod scenario_errors;
mod sensor_statistics;

use sim::{Flown, Measurement, Scenario};

/// A bundled scenario, flown and observed.
#[derive(Debug)]
pub struct Run {
    pub scenario: Scenario,
    pub flown: Vec<Flown>,
    pub measurements: Vec<Measurement>,
    pub truth: Vec<sim::TruthSample>,
    pub end: vocab::UtcNanos,
}

pub fn bundled(name: &str) -> Scenario {
    let path = format!("{}/../../scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("bundled scenario");
    sim::parse(&path, &text).unwrap_or_else(|e| panic!("{e}"))
}

pub fn run(scenario: Scenario) -> Run {
    let flown = sim::fly_all(&scenario, &flight::FlightConfig::default(), &|_| {}).expect("flies");
    let end = sim::end_time(&scenario, &flown);
    let measurements = sim::measure_all(&scenario, &flown, end);
    let truth = sim::truth_all(&scenario, &flown, end);
    Run { scenario, flown, measurements, truth, end }
}

impl Run {
    /// The three output files as bytes.
    pub fn files(&self) -> [Vec<u8>; 3] {
        let mut truth = Vec::new();
        sim::output::write_truth(&mut truth, &self.flown, &self.truth).expect("write to memory");
        let mut meas = Vec::new();
        sim::output::write_measurements(&mut meas, &self.scenario, &self.flown, &self.measurements)
            .expect("write to memory");
        let mut summary = Vec::new();
        sim::output::write_summary(
            &mut summary,
            &self.scenario,
            &self.flown,
            self.end,
            self.truth.len(),
            &self.measurements,
        )
        .expect("write to memory");
        [truth, meas, summary]
    }
}
