//! The live picture: one OS thread runs the fusion engine over every durable record in log
//! order, raises and withdraws alerts, and publishes what changed (to the shared picture the
//! API reads, and as stream messages).

use crate::metrics::Metrics;
use crate::products::{alert_json, launch_json, track_json};
use crate::writer::{Append, Committed};
use alert::{AlertBook, AlertChange, Prediction};
use fusion::{Engine, TrackStatus, TrackView};
use prost::Message;
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc};
use vocab::UtcNanos;
use wire::RecordKind;

/// How often the engine is advanced when no data arrives (the reorder window drains on time).
const TICK: Duration = Duration::from_millis(20);
/// Alert records waiting for room in the writer's queue; beyond this the oldest are dropped
/// from the log (and counted) rather than stall fusion. They stay in the picture either way.
const MAX_PENDING_ALERT_RECORDS: usize = 10_000;

/// What the API serves: the latest products.
#[derive(Debug, Default)]
pub struct Picture {
    pub tracks: BTreeMap<u64, Value>,
    pub alerts: Vec<Value>,
    pub launches: BTreeMap<u64, Value>,
    pub counters: Value,
    /// Seq of the last record fused.
    pub fused_seq: u64,
    /// Tracks with their raw view, for exports.
    pub views: BTreeMap<u64, TrackView>,
}

pub struct Fusion {
    pub engine: Engine,
    pub alerts: AlertBook,
    pub picture: Arc<RwLock<Picture>>,
    pub events: broadcast::Sender<Arc<str>>,
    pub metrics: Arc<Metrics>,
    /// Where alert changes are logged. Weak, so that the writer stops once the API is gone
    /// (fusion itself stops only after the writer).
    pub log: mpsc::WeakSender<Append>,
    /// Records at or below this seq are a replay of the log at start: their alert changes
    /// were logged the first time and are not logged again.
    pub replay_until: u64,
    pub reorder_window_s: f64,
}

impl std::fmt::Debug for Fusion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fusion").field("replay_until", &self.replay_until).finish_non_exhaustive()
    }
}

fn publish(events: &broadcast::Sender<Arc<str>>, v: Value) {
    // No subscriber is not an error.
    let _ = events.send(Arc::from(v.to_string()));
}

impl Fusion {
    /// Runs until the writer is gone.
    pub fn run(mut self, rx: Receiver<Committed>) {
        let mut newest_time = UtcNanos::from_nanos(i64::MIN);
        let mut newest_arrival: Option<Instant> = None;
        let mut last_seq = 0;
        let mut pending_log: VecDeque<Append> = VecDeque::new();
        let mut launched: BTreeMap<u64, bool> = BTreeMap::new();
        let mut last_arrival = Instant::now();
        loop {
            let mut got = 0usize;
            match rx.recv_timeout(TICK) {
                Ok(c) => {
                    got += 1;
                    self.take(c, &mut newest_time, &mut newest_arrival, &mut last_seq);
                    // Drain what else is ready, bounded so the picture refreshes under load.
                    while got < 10_000 {
                        match rx.try_recv() {
                            Ok(c) => {
                                got += 1;
                                self.take(c, &mut newest_time, &mut newest_arrival, &mut last_seq);
                            }
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            // The engine runs on data time: a measurement waits until one a reorder window
            // newer has arrived, or until no data has arrived for a window of wall time (a
            // quiet sensor must not hold back the picture). Wall time never enters otherwise,
            // so a replay and a faster-than-real-time feed fuse exactly as live data would.
            if got > 0 {
                last_arrival = Instant::now();
            }
            let idle = last_arrival.elapsed().as_secs_f64() >= self.reorder_window_s;
            let now = if idle { newest_time.add_secs_f64(self.reorder_window_s + 1e-6) } else { newest_time };
            let changed = if newest_time.as_nanos() == i64::MIN { Vec::new() } else { self.engine.advance(now) };
            let replaying = last_seq <= self.replay_until;
            self.refresh(&changed, newest_time, replaying, &mut launched, newest_arrival, &mut pending_log);
            if let Ok(mut p) = self.picture.write() {
                p.fused_seq = last_seq;
            }
            let log = self.log.upgrade();
            while let Some(a) = pending_log.pop_front() {
                let Some(log) = &log else {
                    pending_log.clear();
                    break;
                };
                match log.try_send(a) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(a)) => {
                        pending_log.push_front(a);
                        break;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        pending_log.clear();
                        break;
                    }
                }
            }
            while pending_log.len() > MAX_PENDING_ALERT_RECORDS {
                pending_log.pop_front();
                tracing::warn!("alert record dropped from the log: writer queue full");
            }
        }
        tracing::info!(seq = last_seq, "fusion stopped");
    }

    fn take(
        &mut self,
        c: Committed,
        newest_time: &mut UtcNanos,
        newest_arrival: &mut Option<Instant>,
        last_seq: &mut u64,
    ) {
        *last_seq = c.seq;
        if c.kind != RecordKind::MeasurementBatch {
            return;
        }
        let batch = match wire::MeasurementBatch::decode(c.body.as_slice()) {
            Ok(b) => b,
            Err(e) => {
                // The log holds only what ingest validated; this is a bug, not bad input.
                tracing::error!(seq = c.seq, error = %e, "undecodable measurement batch in the log; skipped");
                return;
            }
        };
        for w in &batch.measurements {
            match ingest::from_wire(w) {
                Ok(m) => {
                    *newest_time = (*newest_time).max(m.time);
                    self.engine.ingest(m);
                }
                Err(e) => tracing::error!(seq = c.seq, error = %e, "invalid measurement in the log; skipped"),
            }
        }
        if c.arrived.is_some() {
            *newest_arrival = c.arrived;
        }
    }

    fn refresh(
        &mut self,
        changed: &[fusion::TrackId],
        data_now: UtcNanos,
        replaying: bool,
        launched: &mut BTreeMap<u64, bool>,
        newest_arrival: Option<Instant>,
        pending_log: &mut VecDeque<Append>,
    ) {
        let views = self.engine.tracks();
        let live: Vec<u64> = views.iter().map(|t| t.id.0).collect();
        let mut changes: Vec<AlertChange> = Vec::new();
        let mut messages = Vec::new();
        let mut track_updates = Vec::new();
        for t in views.iter().filter(|t| changed.contains(&t.id) && t.status == TrackStatus::Confirmed) {
            let v = track_json(t);
            messages.push(json!({"type": "track", "data": v}));
            track_updates.push((t.id.0, v, t.clone()));
            if let Some((at, i)) = &t.impact {
                let p = Prediction {
                    lat_deg: i.point.lat_deg(),
                    lon_deg: i.point.lon_deg(),
                    cov_en_m2: i.cov_en_m2,
                    impact_time: at.add_secs_f64(i.time_to_impact_s),
                    time_to_impact_sd_s: i.time_to_impact_sd_s,
                };
                changes.extend(self.alerts.predict(t.id.0, &p, data_now));
            }
            if t.launch.is_some() && !launched.get(&t.id.0).copied().unwrap_or(false) {
                launched.insert(t.id.0, true);
                if let Some(l) = launch_json(t) {
                    messages.push(json!({"type": "launch", "data": l}));
                }
            }
        }
        if data_now.as_nanos() > i64::MIN {
            changes.extend(self.alerts.expire(&live, data_now));
        }
        let removed: Vec<u64> = {
            let p = self.picture.read().map(|p| p.tracks.keys().copied().collect::<Vec<_>>()).unwrap_or_default();
            p.into_iter().filter(|id| !live.contains(id)).collect()
        };
        for id in &removed {
            messages.push(json!({"type": "track_deleted", "track": id}));
        }
        for c in &changes {
            messages.push(json!({"type": "alert", "change": c.change.as_str(), "data": alert_json(&c.alert)}));
            self.metrics.alerts_changed.fetch_add(1, Relaxed);
            tracing::info!(alert = %c.alert.id, change = c.change.as_str(), level = c.alert.level.as_str(), area = %c.alert.area, "alert");
            if !replaying {
                pending_log.push_back(Append {
                    kind: RecordKind::Alert,
                    body: crate::products::alert_wire(c).encode_to_vec(),
                    arrived: Instant::now(),
                    reply: None,
                });
            }
        }
        let counters = self.engine.counters();
        self.metrics.tracks_confirmed.store(counters.tracks_confirmed, Relaxed);
        self.metrics.late_set_aside.store(counters.late_set_aside, Relaxed);
        if let Ok(mut p) = self.picture.write() {
            for (id, v, view) in track_updates {
                p.tracks.insert(id, v);
                p.views.insert(id, view);
            }
            for id in &removed {
                p.tracks.remove(id);
                p.views.remove(id);
            }
            for t in views.iter().filter(|t| t.status == TrackStatus::Confirmed) {
                if let Some(l) = launch_json(t) {
                    p.launches.insert(t.id.0, l);
                }
            }
            if !changes.is_empty() {
                p.alerts = self.alerts.current().iter().map(alert_json).collect();
            }
            p.counters = crate::products::counters_json(&counters);
        }
        for m in messages {
            publish(&self.events, m);
        }
        if !changes.is_empty() {
            if let Some(t0) = newest_arrival {
                if !replaying {
                    self.metrics.ingest_to_alert.observe(t0.elapsed().as_secs_f64());
                }
            }
        }
    }
}
