//! Prints one run's track-by-track trace against truth: `cargo run --release -p eval --example trace -- SCENARIO`.
use fusion::{Engine, EngineConfig, TrackStatus};
fn main() {
    let path = std::env::args().nth(1).expect("scenario path");
    let text = std::fs::read_to_string(&path).expect("read");
    let mut scenario = sim::parse(&path, &text).expect("parse");
    if let Some(seed) = std::env::args().nth(2) {
        scenario.seed = seed.parse().expect("seed");
    }
    let flown = sim::fly_all(&scenario, &flight::FlightConfig::default(), &|_| {}).expect("fly");
    let end = sim::end_time(&scenario, &flown);
    let ms = sim::measure_all(&scenario, &flown, end);
    let mut engine = Engine::new(EngineConfig::default());
    let mut next = scenario.start;
    for m in &ms {
        let Some(f) = eval::convert::to_fusion(&scenario, m) else { continue };
        while m.time >= next {
            engine.advance(next);
            for tr in engine.tracks().iter().filter(|t| t.status == TrackStatus::Confirmed) {
                let truth = flown[0].state_at(tr.time);
                let err = truth.map(|s| (s.pos - nalgebra::Vector3::new(tr.state[0], tr.state[1], tr.state[2])).norm());
                let acc = nalgebra::Vector3::new(tr.state[6], tr.state[7], tr.state[8]).norm();
                if let Some((t, l)) = &tr.launch {
                    println!(
                        "  launch est {:.3} {:.3} at t+{:.1} (sd {:.0} m, {:.1} s)",
                        l.point.lat_deg(),
                        l.point.lon_deg(),
                        t.add_secs_f64(-l.seconds_before).secs_since(flown[0].plan.time),
                        l.cov_en_m2.trace().sqrt(),
                        l.seconds_before_sd
                    );
                }
                println!(
                    "t+{:6.1} track {:3} boost {:.3} |a| {:6.1} err {:?} thrusting {:?} launch {}",
                    tr.time.secs_since(flown[0].plan.time),
                    tr.id.0,
                    tr.boost_probability,
                    acc,
                    err.map(|e| e.round()),
                    truth.map(|s| s.thrusting),
                    tr.launch.is_some()
                );
            }
            next = next.add_secs_f64(5.0);
        }
        engine.ingest(f);
    }
    println!("{:?}", engine.counters());
}
