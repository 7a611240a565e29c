//! The node's metrics: lock-free counters and fixed-bucket latency histograms, rendered in
//! the Prometheus text format at `/metrics`. Names follow `name_unit_total`; labels are bounded
//! (the rejection reasons are a fixed set).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Upper bounds of histogram buckets, seconds: 50 µs to 10 s, roughly ×2 apart.
const BUCKETS_S: [f64; 18] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0,
    10.0,
];

#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; 19],
    sum_ns: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, secs: f64) {
        let i = BUCKETS_S.iter().position(|&b| secs <= b).unwrap_or(BUCKETS_S.len());
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add((secs.max(0.0) * 1e9) as u64, Relaxed);
    }

    /// The q-quantile, as the upper bound of the bucket that holds it (None when empty).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let want = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return Some(BUCKETS_S.get(i).copied().unwrap_or(f64::INFINITY));
            }
        }
        None
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cum = 0;
        for (i, b) in BUCKETS_S.iter().enumerate() {
            cum += self.counts[i].load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cum}");
        }
        cum += self.counts[BUCKETS_S.len()].load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cum}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_ns.load(Relaxed) as f64 / 1e9);
        let _ = writeln!(out, "{name}_count {cum}");
    }
}

/// Latencies to a tenth of a millisecond up to one second, for benchmarks that need finer
/// quantiles than the Prometheus buckets give (shown in `/v1/status`, not in `/metrics`).
#[derive(Debug)]
pub struct FineHistogram {
    counts: Vec<AtomicU64>,
}

/// Buckets of 0.1 ms up to 1 s, and one beyond.
const FINE_BUCKETS: usize = 10_001;

impl Default for FineHistogram {
    fn default() -> Self {
        FineHistogram { counts: (0..FINE_BUCKETS).map(|_| AtomicU64::new(0)).collect() }
    }
}

impl FineHistogram {
    pub fn observe(&self, secs: f64) {
        let i = ((secs.max(0.0) * 1e4) as usize).min(FINE_BUCKETS - 1);
        self.counts[i].fetch_add(1, Relaxed);
    }

    /// count, and p50/p90/p99/max in ms (each the upper edge of its 0.1 ms bucket; ">1000"
    /// beyond a second).
    pub fn summary(&self) -> serde_json::Value {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        let at = |q: f64| -> serde_json::Value {
            if total == 0 {
                return serde_json::Value::Null;
            }
            let want = (q * total as f64).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= want {
                    return if i == FINE_BUCKETS - 1 { ">1000".into() } else { ((i + 1) as f64 / 10.0).into() };
                }
            }
            serde_json::Value::Null
        };
        serde_json::json!({"count": total, "p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99), "max_ms": at(1.0)})
    }
}

/// Why input was refused: a fixed set, so the label stays bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    Unauthenticated,
    Malformed,
    OutOfRange,
    WrongSensor,
    TooOld,
    InFuture,
    Oversized,
    Unavailable,
}

impl Reject {
    pub const ALL: [Reject; 8] = [
        Reject::Unauthenticated,
        Reject::Malformed,
        Reject::OutOfRange,
        Reject::WrongSensor,
        Reject::TooOld,
        Reject::InFuture,
        Reject::Oversized,
        Reject::Unavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reject::Unauthenticated => "unauthenticated",
            Reject::Malformed => "malformed",
            Reject::OutOfRange => "out_of_range",
            Reject::WrongSensor => "wrong_sensor",
            Reject::TooOld => "too_old",
            Reject::InFuture => "in_future",
            Reject::Oversized => "oversized",
            Reject::Unavailable => "unavailable",
        }
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub measurements_accepted: AtomicU64,
    rejected: [AtomicU64; 8],
    pub records_appended: AtomicU64,
    pub group_commits: AtomicU64,
    pub alerts_changed: AtomicU64,
    pub tracks_confirmed: AtomicU64,
    pub late_set_aside: AtomicU64,
    pub ws_clients: AtomicU64,
    /// Connected CoT clients (TAK), pushes to TAK servers included.
    pub cot_clients: AtomicU64,
    pub ws_dropped_messages: AtomicU64,
    /// The fusion thread's SCHED_FIFO priority, 0 when it runs at normal priority.
    pub fusion_realtime_priority: AtomicU64,
    /// From a batch's arrival to its acknowledgement (durable).
    pub ack_latency: Histogram,
    /// One group commit's write and sync.
    pub commit_latency: Histogram,
    /// From the arrival of the earliest-arrived batch of measurements an engine step fused (the
    /// longest any of its inputs waited: reorder window, queues and the step itself) to the
    /// publication of the alert changes that step made; also at 0.1 ms resolution.
    pub ingest_to_alert: Histogram,
    pub ingest_to_alert_fine: FineHistogram,
    /// One fusion step: taking records, the engine's advance, alerts and publication.
    pub fusion_step: Histogram,
    /// From a partner record's origin time (sealed at the origin, on the origin's clock) to
    /// its batch's arrival here (the origin's sync and release audit, and the link), to its
    /// being durable here, and to fusion taking it in.
    pub partner_received: FineHistogram,
    pub partner_applied: FineHistogram,
    pub partner_fused: FineHistogram,
}

impl Metrics {
    pub fn reject(&self, why: Reject, n: u64) {
        self.rejected[why as usize].fetch_add(n, Relaxed);
    }

    pub fn rejected(&self, why: Reject) -> u64 {
        self.rejected[why as usize].load(Relaxed)
    }

    pub fn render(&self, log_seq: u64) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter(
            "trilink_ingest_measurements_accepted_total",
            "Measurements accepted and logged.",
            self.measurements_accepted.load(Relaxed),
        );
        counter(
            "trilink_log_records_appended_total",
            "Records appended to the node's own log.",
            self.records_appended.load(Relaxed),
        );
        counter("trilink_log_group_commits_total", "Group commits (one sync each).", self.group_commits.load(Relaxed));
        counter(
            "trilink_alert_changes_total",
            "Alert changes (raised, updated, withdrawn).",
            self.alerts_changed.load(Relaxed),
        );
        counter("trilink_fusion_tracks_confirmed_total", "Tracks confirmed.", self.tracks_confirmed.load(Relaxed));
        counter(
            "trilink_fusion_late_set_aside_total",
            "Measurements set aside as too late for the reorder window.",
            self.late_set_aside.load(Relaxed),
        );
        counter(
            "trilink_ws_dropped_messages_total",
            "Stream messages dropped for slow WebSocket clients.",
            self.ws_dropped_messages.load(Relaxed),
        );
        let _ = writeln!(out, "# HELP trilink_ingest_rejected_total Input refused, by reason.\n# TYPE trilink_ingest_rejected_total counter");
        for r in Reject::ALL {
            let _ = writeln!(out, "trilink_ingest_rejected_total{{reason=\"{}\"}} {}", r.as_str(), self.rejected(r));
        }
        let _ = writeln!(out, "# HELP trilink_log_seq Last sequence number of the node's own log.\n# TYPE trilink_log_seq gauge\ntrilink_log_seq {log_seq}");
        let _ = writeln!(out, "# HELP trilink_ws_clients Connected WebSocket clients.\n# TYPE trilink_ws_clients gauge\ntrilink_ws_clients {}", self.ws_clients.load(Relaxed));
        let _ = writeln!(
            out,
            "# HELP trilink_fusion_realtime_priority The fusion thread's SCHED_FIFO priority (0: normal scheduling).\n# TYPE trilink_fusion_realtime_priority gauge\ntrilink_fusion_realtime_priority {}",
            self.fusion_realtime_priority.load(Relaxed)
        );
        let _ = writeln!(out, "# HELP trilink_cot_clients Connected CoT streams (TAK clients and servers).\n# TYPE trilink_cot_clients gauge\ntrilink_cot_clients {}", self.cot_clients.load(Relaxed));
        self.ack_latency.render(
            "trilink_ingest_ack_latency_seconds",
            "Arrival of a batch to its durable acknowledgement.",
            &mut out,
        );
        self.commit_latency.render("trilink_log_commit_seconds", "One group commit: write and sync.", &mut out);
        self.fusion_step.render(
            "trilink_fusion_step_seconds",
            "One fusion step: records in, engine advance, alerts, publication.",
            &mut out,
        );
        self.ingest_to_alert.render(
            "trilink_ingest_to_alert_seconds",
            "Arrival of the newest measurement an engine step used to publication of the alert changes it made (includes the reorder window).",
            &mut out,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_buckets() {
        let h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for _ in 0..99 {
            h.observe(0.0003);
        }
        h.observe(0.3);
        assert_eq!(h.quantile(0.5), Some(0.0005));
        assert_eq!(h.quantile(0.99), Some(0.0005));
        assert_eq!(h.quantile(1.0), Some(0.5));
        let mut text = String::new();
        h.render("x_seconds", "help", &mut text);
        assert!(text.contains("x_seconds_bucket{le=\"+Inf\"} 100"), "{text}");
    }
}
