//! Aggregating runs into a scenario report: what `trilink eval` prints and writes as JSON.

use crate::metrics::chi2_quantile;
use crate::run::RunOutcome;
use serde::Serialize;

/// Width of the time-since-launch bins of the error tables.
pub const BIN_S: f64 = 20.0;
/// Steady state: ballistic midcourse at least this long after the track's first sample.
const SETTLE_S: f64 = 30.0;

#[derive(Debug, Serialize)]
pub struct Report {
    pub scenarios: Vec<ScenarioReport>,
}

#[derive(Debug, Serialize)]
pub struct ScenarioReport {
    pub scenario: String,
    pub runs: usize,
    pub seeds: Vec<u64>,
    pub launches: Vec<String>,
    pub bins: Vec<Bin>,
    pub steady_state: SteadyState,
    pub nees: NeesSummary,
    pub gospa_mean_m: f64,
    pub gospa: Vec<(f64, f64)>,
    pub track_breaks: usize,
    pub id_switches: usize,
    pub false_track_samples: usize,
    pub launch_point: Vec<LaunchSummary>,
    pub impact_bins: Vec<ImpactBin>,
    pub impact_coverage_95: f64,
    pub impact_coverage_50: f64,
    pub first_impact_prediction_s: Vec<Option<f64>>,
    pub first_ballistic_impact_prediction_s: Vec<Option<f64>>,
    pub measurements: usize,
    pub engine_seconds: f64,
    pub measurements_per_second: f64,
    /// Engine seconds per second of scenario: below 1 keeps up with real time.
    pub engine_load: f64,
    pub late_set_aside: u64,
}

#[derive(Debug, Serialize)]
pub struct Bin {
    pub t_since_launch_s: f64,
    pub samples: usize,
    pub pos_rmse_m: f64,
    pub vel_rmse_mps: f64,
    pub pcrlb_pos_m: f64,
    pub pcrlb_vel_mps: f64,
    pub rmse_over_pcrlb: f64,
    /// The Monte Carlo average NEES at one instant: each run's and launch's sample nearest
    /// the bin's middle, averaged (see [`instant_nees`]).
    pub mean_nees: f64,
    /// How many samples `mean_nees` averages: one per run and launch with a sample in the bin.
    pub nees_samples: usize,
    /// The 95% χ² band of `mean_nees` for a consistent filter: χ²(6n)/n at 2.5% and 97.5%.
    pub nees_band: (f64, f64),
    /// The average NEES over every sample in the bin, for reference (no band: the samples of
    /// one run are correlated in time).
    pub mean_nees_all_samples: f64,
}

#[derive(Debug, Serialize)]
pub struct SteadyState {
    pub samples: usize,
    pub pos_rmse_m: f64,
    pub pcrlb_pos_m: f64,
    pub rmse_over_pcrlb: f64,
}

#[derive(Debug, Serialize)]
pub struct NeesSummary {
    pub mean: f64,
    /// Fraction of bins whose Monte Carlo average NEES (one instant per bin) lies in the
    /// 95% χ² band.
    pub bins_in_band: f64,
    /// Fractions of bins above the band (the covariance smaller than the errors: over-confident,
    /// the dangerous side) and below it (cautious).
    pub bins_above_band: f64,
    pub bins_below_band: f64,
}

#[derive(Debug, Serialize)]
pub struct LaunchSummary {
    pub launch: String,
    pub estimates: usize,
    pub mean_point_error_m: f64,
    pub mean_reported_sd_m: f64,
    pub mean_time_error_s: f64,
    pub mean_reported_time_sd_s: f64,
    /// Share of the estimates whose 95% ellipse holds the true launch point.
    pub coverage_95: f64,
}

#[derive(Debug, Serialize)]
pub struct ImpactBin {
    pub t_since_launch_s: f64,
    pub predictions: usize,
    pub mean_error_m: f64,
    pub coverage_50: f64,
    pub coverage_95: f64,
    pub mean_time_to_impact_error_s: f64,
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        s / n as f64
    }
}

/// The bound for a truth at a time: the latest bound point at or before it.
fn bound_at(run: &RunOutcome, truth: usize, t: f64) -> Option<crate::pcrlb::Bound> {
    let b = &run.bounds[truth];
    let i = b.partition_point(|x| x.t_since_launch_s <= t + 1e-9);
    (i > 0).then(|| b[i - 1])
}

/// The Monte Carlo NEES test at one instant (Bar-Shalom, Li and Kirubarajan, *Estimation
/// with Applications to Tracking and Navigation*, §5.4.2): the average of `n` independent
/// NEES values of a consistent 6-element estimate is χ²(6n)/n, so it lies in the band
/// returned 95% of the time. The values must be independent — one per run and launch. Every
/// sample of a 20 s bin would not do: a track's error at one update is strongly correlated
/// with its error a second later, and a band that treats 20 such samples per run as
/// independent rejects an exactly consistent filter in over half the bins (the test below).
pub fn instant_nees(values: impl Iterator<Item = f64>) -> (f64, (f64, f64)) {
    let v: Vec<f64> = values.collect();
    let n = v.len().max(1) as f64;
    (mean(v.into_iter()), (chi2_quantile(6.0 * n, 0.025) / n, chi2_quantile(6.0 * n, 0.975) / n))
}

pub fn aggregate(scenario: &str, runs: &[RunOutcome]) -> ScenarioReport {
    let bin_of = |t: f64| (t / BIN_S).floor().max(0.0) as usize;
    let max_bin =
        runs.iter().flat_map(|r| r.track_samples.iter()).map(|s| bin_of(s.t_since_launch_s)).max().unwrap_or(0);
    let mut bins = Vec::new();
    for b in 0..=max_bin {
        let mut e2 = Vec::new();
        let mut v2 = Vec::new();
        let mut b2 = Vec::new();
        let mut bv2 = Vec::new();
        let mut nees = Vec::new();
        let mut nearest = std::collections::BTreeMap::new();
        let middle = (b as f64 + 0.5) * BIN_S;
        for (k, run) in runs.iter().enumerate() {
            for s in run.track_samples.iter().filter(|s| bin_of(s.t_since_launch_s) == b) {
                if s.nees.is_finite() {
                    let d = (s.t_since_launch_s - middle).abs();
                    let slot = nearest.entry((k, s.truth)).or_insert((d, s.nees));
                    if d < slot.0 {
                        *slot = (d, s.nees);
                    }
                    nees.push(s.nees);
                }
                e2.push(s.pos_err_m.powi(2));
                v2.push(s.vel_err_mps.powi(2));
                if let Some(bound) = bound_at(run, s.truth, s.t_since_launch_s) {
                    b2.push(bound.pos_sd_m.powi(2));
                    bv2.push(bound.vel_sd_mps.powi(2));
                }
            }
        }
        if e2.is_empty() {
            continue;
        }
        let (instant, band) = instant_nees(nearest.values().map(|(_, v)| *v));
        let pos_rmse = mean(e2.iter().copied()).sqrt();
        let pcrlb = mean(b2.iter().copied()).sqrt();
        bins.push(Bin {
            t_since_launch_s: b as f64 * BIN_S,
            samples: e2.len(),
            pos_rmse_m: pos_rmse,
            vel_rmse_mps: mean(v2.iter().copied()).sqrt(),
            pcrlb_pos_m: pcrlb,
            pcrlb_vel_mps: mean(bv2.iter().copied()).sqrt(),
            rmse_over_pcrlb: pos_rmse / pcrlb,
            mean_nees: instant,
            nees_samples: nearest.len(),
            nees_band: band,
            mean_nees_all_samples: mean(nees.iter().copied()),
        });
    }
    // Steady state.
    let mut e2 = Vec::new();
    let mut b2 = Vec::new();
    for run in runs {
        let first: Vec<f64> = (0..run.launches.len())
            .map(|j| {
                run.track_samples
                    .iter()
                    .filter(|s| s.truth == j)
                    .map(|s| s.t_since_launch_s)
                    .fold(f64::INFINITY, f64::min)
            })
            .collect();
        for s in &run.track_samples {
            if s.thrusting || s.alt_m < flight::TERMINAL_BELOW_M || s.t_since_launch_s < first[s.truth] + SETTLE_S {
                continue;
            }
            if let Some(bound) = bound_at(run, s.truth, s.t_since_launch_s) {
                e2.push(s.pos_err_m.powi(2));
                b2.push(bound.pos_sd_m.powi(2));
            }
        }
    }
    let steady = SteadyState {
        samples: e2.len(),
        pos_rmse_m: mean(e2.iter().copied()).sqrt(),
        pcrlb_pos_m: mean(b2.iter().copied()).sqrt(),
        rmse_over_pcrlb: mean(e2.iter().copied()).sqrt() / mean(b2.iter().copied()).sqrt(),
    };
    let all_nees: Vec<f64> =
        runs.iter().flat_map(|r| r.track_samples.iter().map(|s| s.nees)).filter(|x| x.is_finite()).collect();
    let in_band = bins.iter().filter(|b| b.mean_nees >= b.nees_band.0 && b.mean_nees <= b.nees_band.1).count();
    let above_band = bins.iter().filter(|b| b.mean_nees > b.nees_band.1).count();
    let below_band = bins.iter().filter(|b| b.mean_nees < b.nees_band.0).count();
    // Impact predictions after burnout.
    let impact_bin_s = 30.0;
    let ballistic: Vec<_> = runs.iter().flat_map(|r| r.impact_samples.iter().filter(|s| !s.during_boost)).collect();
    let max_ib = ballistic.iter().map(|s| (s.t_since_launch_s / impact_bin_s) as usize).max().unwrap_or(0);
    let mut impact_bins = Vec::new();
    for b in 0..=max_ib {
        let these: Vec<_> = ballistic.iter().filter(|s| (s.t_since_launch_s / impact_bin_s) as usize == b).collect();
        if these.is_empty() {
            continue;
        }
        let n = these.len() as f64;
        impact_bins.push(ImpactBin {
            t_since_launch_s: b as f64 * impact_bin_s,
            predictions: these.len(),
            mean_error_m: mean(these.iter().map(|s| s.err_m)),
            coverage_50: these.iter().filter(|s| s.inside_50).count() as f64 / n,
            coverage_95: these.iter().filter(|s| s.inside_95).count() as f64 / n,
            mean_time_to_impact_error_s: mean(these.iter().map(|s| s.time_to_impact_err_s)),
        });
    }
    let nb = ballistic.len().max(1) as f64;
    let launches = runs.first().map(|r| r.launches.clone()).unwrap_or_default();
    let launch_point = launches
        .iter()
        .enumerate()
        .map(|(j, id)| {
            let got: Vec<_> = runs.iter().filter_map(|r| r.launch[j]).collect();
            LaunchSummary {
                launch: id.clone(),
                estimates: got.len(),
                mean_point_error_m: mean(got.iter().map(|l| l.err_m)),
                mean_reported_sd_m: mean(got.iter().map(|l| l.sd_m)),
                mean_time_error_s: mean(got.iter().map(|l| l.time_err_s)),
                mean_reported_time_sd_s: mean(got.iter().map(|l| l.time_sd_s)),
                coverage_95: mean(got.iter().map(|l| if l.inside_95 { 1.0 } else { 0.0 })),
            }
        })
        .collect();
    let per_launch_mean = |f: &dyn Fn(&RunOutcome, usize) -> Option<f64>| -> Vec<Option<f64>> {
        (0..launches.len())
            .map(|j| {
                let v: Vec<f64> = runs.iter().filter_map(|r| f(r, j)).collect();
                (!v.is_empty()).then(|| mean(v.into_iter()))
            })
            .collect()
    };
    let engine_seconds: f64 = runs.iter().map(|r| r.engine_time.as_secs_f64()).sum();
    let measurements: usize = runs.iter().map(|r| r.measurements).sum();
    let mut gospa_bins: std::collections::BTreeMap<i64, Vec<f64>> = Default::default();
    for r in runs {
        for (t, g) in &r.gospa {
            gospa_bins.entry(t.round() as i64).or_default().push(*g);
        }
    }
    ScenarioReport {
        scenario: scenario.to_string(),
        runs: runs.len(),
        seeds: runs.iter().map(|r| r.seed).collect(),
        launches: launches.clone(),
        bins,
        steady_state: steady,
        nees: NeesSummary {
            mean: mean(all_nees.iter().copied()),
            bins_in_band: 0.0,
            bins_above_band: 0.0,
            bins_below_band: 0.0,
        },
        gospa_mean_m: mean(runs.iter().flat_map(|r| r.gospa.iter().map(|g| g.1))),
        gospa: gospa_bins.into_iter().map(|(t, v)| (t as f64, mean(v.into_iter()))).collect(),
        track_breaks: runs.iter().map(|r| r.breaks.iter().sum::<usize>()).sum(),
        id_switches: runs.iter().map(|r| r.id_switches).sum(),
        false_track_samples: runs.iter().map(|r| r.false_track_samples).sum(),
        launch_point,
        impact_bins,
        impact_coverage_95: ballistic.iter().filter(|s| s.inside_95).count() as f64 / nb,
        impact_coverage_50: ballistic.iter().filter(|s| s.inside_50).count() as f64 / nb,
        first_impact_prediction_s: per_launch_mean(&|r, j| r.first_impact_s[j]),
        first_ballistic_impact_prediction_s: per_launch_mean(&|r, j| r.first_ballistic_impact_s[j]),
        measurements,
        engine_seconds,
        measurements_per_second: measurements as f64 / engine_seconds.max(1e-9),
        engine_load: engine_seconds / runs.iter().map(|r| r.scenario_s).sum::<f64>().max(1e-9),
        late_set_aside: runs.iter().map(|r| r.counters.late_set_aside).sum(),
    }
    .with_band_fractions(in_band, above_band, below_band)
}

impl ScenarioReport {
    fn with_band_fractions(mut self, in_band: usize, above: usize, below: usize) -> ScenarioReport {
        let n = self.bins.len().max(1) as f64;
        self.nees.bins_in_band = in_band as f64 / n;
        self.nees.bins_above_band = above as f64 / n;
        self.nees.bins_below_band = below as f64 / n;
        self
    }

    /// The human summary `trilink eval` prints.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "== {} ({} runs, seeds {:?})", self.scenario, self.runs, self.seeds);
        let _ = writeln!(
            s,
            "  t since launch  samples  pos RMSE   PCRLB   ratio  vel RMSE  PCRLB   NEES at one instant, n (95% band)   NEES all samples"
        );
        for b in &self.bins {
            let _ = writeln!(
                s,
                "  {:>6.0} s       {:>7}  {:>8.1} m {:>7.1} m {:>5.2}  {:>6.1} m/s {:>6.1}  {:>6.2}, {:>3} ({:.2}–{:.2}) {:>8.2}",
                b.t_since_launch_s,
                b.samples,
                b.pos_rmse_m,
                b.pcrlb_pos_m,
                b.rmse_over_pcrlb,
                b.vel_rmse_mps,
                b.pcrlb_vel_mps,
                b.mean_nees,
                b.nees_samples,
                b.nees_band.0,
                b.nees_band.1,
                b.mean_nees_all_samples
            );
        }
        let ss = &self.steady_state;
        let _ = writeln!(
            s,
            "  steady state (midcourse): RMSE {:.1} m, PCRLB {:.1} m, ratio {:.2} over {} samples",
            ss.pos_rmse_m, ss.pcrlb_pos_m, ss.rmse_over_pcrlb, ss.samples
        );
        let _ = writeln!(
            s,
            "  NEES: mean of all samples {:.2} (6 expected); {:.0}% of bins' one-instant averages in their 95% band, {:.0}% above it (over-confident), {:.0}% below (cautious)",
            self.nees.mean,
            100.0 * self.nees.bins_in_band,
            100.0 * self.nees.bins_above_band,
            100.0 * self.nees.bins_below_band
        );
        let _ = writeln!(
            s,
            "  GOSPA (c = 10 km): mean {:.0} m; track breaks {}; ID switches {}; false-track samples {}",
            self.gospa_mean_m, self.track_breaks, self.id_switches, self.false_track_samples
        );
        for l in &self.launch_point {
            let _ = writeln!(
                s,
                "  launch point {}: error {:.1} km (reported σ {:.1} km, 95% ellipse holds it in {:.0}%), launch time error {:+.1} s (σ {:.1} s), {} estimates",
                l.launch,
                l.mean_point_error_m / 1e3,
                l.mean_reported_sd_m / 1e3,
                l.coverage_95 * 100.0,
                l.mean_time_error_s,
                l.mean_reported_time_sd_s,
                l.estimates
            );
        }
        let _ = writeln!(s, "  impact prediction after burnout: t since launch  n  mean error  50% / 95% ellipse coverage  time-to-impact error");
        for b in &self.impact_bins {
            let _ = writeln!(
                s,
                "    {:>6.0} s  {:>5}  {:>8.2} km  {:>4.0}% / {:>4.0}%  {:+.1} s",
                b.t_since_launch_s,
                b.predictions,
                b.mean_error_m / 1e3,
                100.0 * b.coverage_50,
                100.0 * b.coverage_95,
                b.mean_time_to_impact_error_s
            );
        }
        let _ = writeln!(
            s,
            "  95% ellipse coverage overall: {:.1}% (50%: {:.1}%)",
            100.0 * self.impact_coverage_95,
            100.0 * self.impact_coverage_50
        );
        for (i, id) in self.launches.iter().enumerate() {
            let fmt = |x: Option<f64>| x.map_or("none".to_string(), |v| format!("{v:.0} s"));
            let _ = writeln!(
                s,
                "  {id}: first impact prediction {} after launch (first after burnout {})",
                fmt(self.first_impact_prediction_s[i]),
                fmt(self.first_ballistic_impact_prediction_s[i])
            );
        }
        let _ = writeln!(
            s,
            "  engine: {} measurements in {:.2} s = {:.0} measurements/s, {:.2}% of real time; late set aside {}",
            self.measurements,
            self.engine_seconds,
            self.measurements_per_second,
            100.0 * self.engine_load,
            self.late_set_aside
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NEES values of an exactly consistent 6-element estimator whose error is a Gaussian
    /// AR(1) process with unit covariance and one-second correlation `rho`: `runs` runs of
    /// `bins` bins of 20 one-second samples each.
    fn consistent_nees(runs: usize, bins: usize, rho: f64) -> Vec<Vec<Vec<f64>>> {
        let mut rng = sim::rng::Rng::for_stream(11, "nees");
        (0..runs)
            .map(|_| {
                let mut e = [0.0f64; 6];
                e.iter_mut().for_each(|x| *x = rng.normal());
                (0..bins)
                    .map(|_| {
                        (0..BIN_S as usize)
                            .map(|_| {
                                for x in e.iter_mut() {
                                    *x = rho * *x + (1.0 - rho * rho).sqrt() * rng.normal();
                                }
                                e.iter().map(|x| x * x).sum()
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn the_one_instant_test_passes_a_consistent_filter_whose_errors_are_correlated() {
        let (runs, bins) = (10, 400);
        let nees = consistent_nees(runs, bins, 0.95);
        let share_in_band = |per_run: &dyn Fn(&[f64]) -> Vec<f64>| {
            let inside = (0..bins)
                .filter(|&b| {
                    let (m, (lo, hi)) = instant_nees(nees.iter().flat_map(|r| per_run(&r[b])));
                    (lo..=hi).contains(&m)
                })
                .count();
            inside as f64 / bins as f64
        };
        let instant = share_in_band(&|bin| vec![bin[bin.len() / 2]]);
        assert!((0.92..=0.98).contains(&instant), "one instant per run: {instant}");
        // Every sample of the bin as if independent: the band is too narrow for the same filter.
        let all = share_in_band(&|bin| bin.to_vec());
        assert!(all < 0.6, "all samples: {all}");
    }
}
