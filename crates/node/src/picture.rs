//! The live picture: one OS thread runs the fusion engine over every durable record in log
//! order, raises and withdraws alerts, and publishes what changed (to the shared picture the
//! API reads, and as stream messages).

use crate::products::{alert_json, launch_json, track_json, Ack};
use alert::{AlertBook, AlertChange};
use fusion::{Engine, TrackStatus, TrackView};
use journal::{Append, Committed};
use prost::Message;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use telemetry::Metrics;
use tokio::sync::{broadcast, mpsc};
use vocab::UtcNanos;
use wire::RecordKind;

/// How often the engine is advanced when no data arrives (the reorder window drains on time).
const TICK: Duration = Duration::from_millis(20);
/// After this long with no newer report the data clock runs on by wall time, and the engine
/// judges its tracks about once per this interval (see `Engine::idle`).
const QUIET: Duration = Duration::from_secs(1);
/// Alert records waiting for room in the writer's queue; beyond this the oldest are dropped
/// from the log (and counted) rather than stall fusion. They stay in the picture either way.
const MAX_PENDING_ALERT_RECORDS: usize = 10_000;

/// How often the track picture and its stream messages are refreshed: an operator's display
/// gains nothing from more than ten updates a second, and alerts do not wait for it.
const PUBLISH_INTERVAL: Duration = Duration::from_millis(100);

/// What `refresh` carries from one engine step to the next.
#[derive(Debug)]
struct RefreshState {
    /// Confirmed tracks changed since the last publication.
    dirty: BTreeSet<u64>,
    /// When each track's impact prediction that alerts last saw was made.
    impact_made: BTreeMap<u64, UtcNanos>,
    /// The publisher thread's queue (one publication waits at most).
    publisher: std::sync::mpsc::SyncSender<Publication>,
    last_publish: Instant,
    /// Arrival of the earliest-arrived live record first fused by this step (for the
    /// ingest-to-alert latency): the longest any input of the step's alerts has waited, and
    /// when fusion took that record in (after the log's commit).
    oldest_fused_arrival: Option<(Instant, Instant)>,
    /// Impact predictions flown before this step (the engine's counter).
    predictions_before: u64,
    /// When this step began (after the wait for records), and when its records were taken in
    /// and the engine had advanced.
    step_started: Instant,
    taken_in: Instant,
    advanced: Instant,
}

/// An alert published this long beyond the reorder window after its earliest input arrived is
/// logged with where the time went (the ingest-to-alert target is 20 ms at a 5 ms window).
const SLOW_ALERT_BEYOND_WINDOW_S: f64 = 0.015;

/// The picture publisher's nice value (background work; the log writer stays at 0, and fusion
/// too unless `fusion.realtime_priority` puts it under SCHED_FIFO).
const PUBLISHER_NICE: i32 = 10;

/// Records read from the log per catch-up step; the picture refreshes between steps.
const CATCH_UP_CHUNK: usize = 1000;

/// The alerts as they stand, for the API: under a lock of their own, so that publishing an
/// alert never waits for the picture publisher (a background thread at nice 10) or for a
/// reader copying a thousand tracks.
pub type AlertList = Arc<RwLock<Vec<Value>>>;

/// What the API serves: the latest products (alerts apart, in `AlertList`).
#[derive(Debug, Default)]
pub struct Picture {
    pub tracks: BTreeMap<u64, Value>,
    pub launches: BTreeMap<u64, Value>,
    pub counters: Value,
    /// Seq of the last record fused.
    pub fused_seq: u64,
    /// Tracks with their raw view, for exports.
    pub views: BTreeMap<u64, TrackView>,
    /// Each confirmed track's recent history, oldest first: [unix s, lat, lon, alt m, phase]
    /// with phase 0 boost, 1 midcourse, 2 terminal.
    pub trails: BTreeMap<u64, VecDeque<[f64; 5]>>,
    /// Sensors seen in fused records, own and partners' (as released to this node).
    pub sensors: Vec<Value>,
}

/// Points of history kept per track (one per `TRAIL_STEP_S` of data time: ten minutes).
pub const TRAIL_POINTS: usize = 300;
const TRAIL_STEP_S: f64 = 2.0;

/// What the picture knows of a sensor from its measurements.
#[derive(Debug, Clone)]
pub struct SensorSeen {
    pub nation: String,
    pub kind: &'static str,
    pub lat_deg: f64,
    pub lon_deg: f64,
    pub alt_m: f64,
    /// Longest radar range reported so far: the coverage observed, not the designed.
    pub max_range_m: f64,
    pub last: UtcNanos,
    pub measurements: u64,
}

impl SensorSeen {
    fn json(&self, id: &str) -> Value {
        json!({"id": id, "nation": self.nation, "kind": self.kind, "lat_deg": self.lat_deg, "lon_deg": self.lon_deg,
               "alt_m": self.alt_m, "observed_range_m": self.max_range_m, "last": self.last.to_string(),
               "measurements": self.measurements})
    }
}

pub struct Fusion {
    pub engine: Engine,
    pub alerts: AlertBook,
    pub picture: Arc<RwLock<Picture>>,
    pub alert_list: AlertList,
    pub events: broadcast::Sender<Arc<str>>,
    pub metrics: Arc<Metrics>,
    /// Where alert changes are logged. Weak, so that the writer stops once the API is gone
    /// (fusion itself stops only after the writer).
    pub log: mpsc::WeakSender<Append>,
    /// Records at or below this seq are a replay of the log at start: their alert changes
    /// were logged the first time and are not logged again.
    pub replay_until: u64,
    pub reorder_window_s: f64,
    /// SCHED_FIFO priority the fusion thread asks for (0: none): see [`raise_to_realtime`].
    pub realtime_priority: u8,
    /// The log, read when fusion is behind what the writer handed it (at start, after a burst
    /// that overflowed the hand-over queue).
    pub store: journal::Store,
    pub origin: vocab::Nation,
    /// The writer's durable head.
    pub head: Arc<std::sync::atomic::AtomicU64>,
    /// (arrival, newest data time) of batches still inside their wall-clock reorder wait.
    pub arrivals: VecDeque<(Instant, UtcNanos)>,
    /// Newest data time of batches whose wait is over.
    pub waited_until: UtcNanos,
    /// (newest data time, arrival) of live batches taken in but not yet fused, in the order
    /// taken; a batch older than the last one is folded into it (fused no later than it).
    /// With each: when fusion took the batch in (after the commit).
    pub unfused: VecDeque<(UtcNanos, Instant, Instant)>,
    /// Partners' records fused so far, per origin.
    pub partner_seq: BTreeMap<vocab::Nation, u64>,
    /// When this node started: a partner's record sealed since then that fusion reads from the
    /// log (its hand-over queue was full) counts in the latency to fusion like one handed
    /// over; one sealed before is a replay or a catch-up, not live latency.
    pub started: UtcNanos,
    /// Whether the log holds partners' records (federation configured).
    pub federated: bool,
    /// Threat intelligence the log holds (CYBER_BUNDLE records of every origin).
    pub cti: taxii::SharedCti,
    /// Operators' acknowledgements, by alert id (from ALERT_ACK records).
    pub acks: BTreeMap<String, Ack>,
    /// Nations whose sensors fed each confirmed track.
    pub track_nations: BTreeMap<u64, Vec<String>>,
    pub sensors: BTreeMap<String, SensorSeen>,
}

/// Phase as a number for trails.
fn phase_code(p: &str) -> f64 {
    match p {
        "boost" => 0.0,
        "midcourse" => 1.0,
        _ => 2.0,
    }
}

/// Distinct sensors the picture keeps positions of (beyond, new ones are not shown).
const MAX_SENSORS_SEEN: usize = 10_000;

/// Batches whose reorder wait is tracked at once; older ones are released early.
const MAX_ARRIVALS: usize = 100_000;

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
        // The newest report's time and when it came; the last idle judgement.
        let mut newest_seen = (newest_time, Instant::now());
        let mut last_idle = Instant::now();
        let mut last_seq = 0;
        let mut pending_log: VecDeque<Append> = VecDeque::new();
        let mut st = RefreshState {
            dirty: BTreeSet::new(),
            impact_made: BTreeMap::new(),
            publisher: spawn_publisher(self.picture.clone(), self.events.clone()),
            last_publish: Instant::now(),
            oldest_fused_arrival: None,
            predictions_before: 0,
            step_started: Instant::now(),
            taken_in: Instant::now(),
            advanced: Instant::now(),
        };
        // Only now that the publisher runs: a thread inherits its creator's policy, and the
        // publisher's background work must not run real-time.
        if self.realtime_priority > 0 {
            let applied = raise_to_realtime(self.realtime_priority);
            self.metrics.fusion_realtime_priority.store(u64::from(applied), Relaxed);
        }
        loop {
            let mut got = 0usize;
            let mut disconnected = false;
            // Wake when the oldest batch's reorder wait ends, if that is sooner than the tick.
            let window = Duration::from_secs_f64(self.reorder_window_s);
            let wait = self
                .arrivals
                .front()
                .map_or(TICK, |(at, _)| (window.saturating_sub(at.elapsed())).clamp(Duration::from_micros(200), TICK));
            let received = rx.recv_timeout(wait);
            st.step_started = Instant::now();
            st.predictions_before = self.engine.counters().impact_predictions;
            match received {
                Ok(c) => {
                    got += 1;
                    self.take_in_order(c, &mut newest_time, &mut last_seq);
                    // Drain what else is ready, bounded so the picture refreshes under load.
                    while got < CATCH_UP_CHUNK {
                        match rx.try_recv() {
                            Ok(c) => {
                                got += 1;
                                self.take_in_order(c, &mut newest_time, &mut last_seq);
                            }
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => disconnected = true,
            }
            // Behind the writer with nothing handed over: read the log itself.
            if got == 0 && self.head.load(Relaxed) > last_seq {
                got += self.catch_up(last_seq + 1, u64::MAX, &mut newest_time, &mut last_seq);
            }
            if got == 0 && self.federated {
                got += self.catch_up_partners(&mut newest_time);
            }
            if disconnected && got == 0 {
                break;
            }
            // The engine runs on data time: a measurement is fused once one a reorder window
            // newer has arrived, or once it has waited a reorder window of wall time since it
            // reached fusion (a quiet sensor must not hold back the picture). So a partner's
            // report that crosses a link a few milliseconds after the node's own newer ones is
            // still fused in order — whether the feed is live or faster than real time.
            while self.arrivals.front().is_some_and(|(at, _)| at.elapsed() >= window) {
                if let Some((_, t)) = self.arrivals.pop_front() {
                    self.waited_until = self.waited_until.max(t);
                }
            }
            let now = newest_time.max(self.waited_until.add_secs_f64(self.reorder_window_s + 1e-6));
            st.taken_in = Instant::now();
            let changed = if newest_time.as_nanos() == i64::MIN { Vec::new() } else { self.engine.advance(now) };
            st.advanced = Instant::now();
            // When the sensors go quiet (the missile below every horizon) the data clock runs
            // on by wall time from the newest report, so a coasting track that has come down
            // is deleted and an alert whose impact is past is withdrawn. While reports flow it
            // is the data time itself.
            if newest_time != newest_seen.0 {
                newest_seen = (newest_time, Instant::now());
            }
            let quiet = newest_seen.1.elapsed();
            // No report yet: no clock (alerts are not judged).
            let clock = if newest_time.as_nanos() == i64::MIN {
                newest_time
            } else if quiet >= QUIET {
                now.add_secs_f64(quiet.as_secs_f64())
            } else {
                now
            };
            if quiet >= QUIET && got == 0 && changed.is_empty() && last_idle.elapsed() >= QUIET {
                last_idle = Instant::now();
                self.engine.idle(clock.add_secs_f64(-self.reorder_window_s));
            }
            let replaying = last_seq <= self.replay_until;
            let horizon = now.add_secs_f64(-self.reorder_window_s);
            st.oldest_fused_arrival = None;
            while self.unfused.front().is_some_and(|(t, _, _)| *t <= horizon) {
                if let Some((_, at, taken)) = self.unfused.pop_front() {
                    if st.oldest_fused_arrival.is_none_or(|(o, _)| at < o) {
                        st.oldest_fused_arrival = Some((at, taken));
                    }
                }
            }
            self.refresh(&changed, newest_time, clock, replaying, &mut st, &mut pending_log);
            // Steps that took records or changed tracks (a step that fuses what waited out the
            // reorder window may do so on a tick, with nothing new).
            if got > 0 || !changed.is_empty() {
                self.metrics.fusion_step.observe(st.step_started.elapsed().as_secs_f64());
            }
            // Not worth waiting for the publisher's lock: a later turn of the loop sets it.
            if let Ok(mut p) = self.picture.try_write() {
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

    /// Takes a partner's record handed over by a link, first reading from the log any it
    /// skipped; then, when idle, any the log holds beyond what fusion has (a restart's replay,
    /// a full hand-over queue).
    fn take_partner(&mut self, c: Committed, newest_time: &mut UtcNanos) {
        let origin = c.origin;
        let mut seq = self.partner_seq.get(&origin).copied().unwrap_or(0);
        if c.fill && c.seq <= seq {
            // A record owed and filled after fusion passed its stub: fused now (or set aside
            // as late, and counted, if the picture has moved on).
            let mut ignored = seq;
            self.take(c, newest_time, &mut ignored);
            return;
        }
        if c.seq <= seq {
            return;
        }
        if let Some(t) = c.origin_time {
            self.metrics.partner_fused.observe(journal::wall_clock().secs_since(t));
        }
        while seq + 1 < c.seq {
            if self.catch_up_origin(origin, seq + 1, c.seq - 1, newest_time, &mut seq) == 0 {
                tracing::error!(%origin, from = seq + 1, to = c.seq - 1, "partner records missing from the log; fusion skips them");
                break;
            }
        }
        self.take(c, newest_time, &mut seq);
        self.partner_seq.insert(origin, seq);
    }

    /// Reads partner records the log holds beyond what fusion has; returns how many.
    fn catch_up_partners(&mut self, newest_time: &mut UtcNanos) -> usize {
        let heads = match self.store.lock() {
            Ok(store) => store.heads(),
            Err(_) => return 0,
        };
        let mut n = 0;
        let own = self.origin;
        for h in heads.iter().filter(|h| h.origin() != own) {
            let origin = h.origin();
            let mut seq = self.partner_seq.get(&origin).copied().unwrap_or(0);
            if h.seq() > seq {
                n += self.catch_up_origin(origin, seq + 1, h.seq(), newest_time, &mut seq);
                self.partner_seq.insert(origin, seq);
            }
        }
        n
    }

    /// Takes a record handed over by the writer, first reading from the log any it skipped.
    fn take_in_order(&mut self, c: Committed, newest_time: &mut UtcNanos, last_seq: &mut u64) {
        if c.origin != self.origin {
            self.take_partner(c, newest_time);
            return;
        }
        if c.seq <= *last_seq {
            return;
        }
        while *last_seq + 1 < c.seq {
            if self.catch_up(*last_seq + 1, c.seq - 1, newest_time, last_seq) == 0 {
                tracing::error!(
                    from = *last_seq + 1,
                    to = c.seq - 1,
                    "records missing from the log; fusion skips them"
                );
                break;
            }
        }
        self.take(c, newest_time, last_seq);
    }

    /// Reads up to one chunk of records `from..=to` from the log into fusion; returns how many.
    fn catch_up(&mut self, from: u64, to: u64, newest_time: &mut UtcNanos, last_seq: &mut u64) -> usize {
        self.catch_up_origin(self.origin, from, to, newest_time, last_seq)
    }

    /// Reads up to one chunk of `origin`'s records `from..=to` from the log into fusion.
    fn catch_up_origin(
        &mut self,
        origin: vocab::Nation,
        from: u64,
        to: u64,
        newest_time: &mut UtcNanos,
        last_seq: &mut u64,
    ) -> usize {
        let want = usize::try_from(to.saturating_sub(from) + 1).unwrap_or(usize::MAX).min(CATCH_UP_CHUNK);
        // The lock is held only to plan the read; the file I/O runs without it. A partner's
        // records reach fusion once written, before their sync (`federation::link`), so one
        // skipped on a full queue may not be durable yet: read what is written.
        let plan = match self.store.lock() {
            Ok(store) if origin == self.origin => store.reader(origin, from, want, usize::MAX),
            Ok(store) => store.reader_ahead(origin, from, want, usize::MAX),
            Err(_) => return 0,
        };
        let records = plan.records();
        let records = match records {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, from, "failed to read the log for fusion");
                return 0;
            }
        };
        let n = records.len();
        for r in records {
            match wire::Record::decode(r.bytes.as_slice()) {
                // This node's transformed copies for partners: its own data again.
                Ok(rec) if rec.derived_from != 0 && origin == self.origin => *last_seq = r.seq,
                Ok(rec) => {
                    let kind = RecordKind::try_from(rec.kind).unwrap_or(RecordKind::Unspecified);
                    let sealed = UtcNanos::from_nanos(rec.origin_time_unix_ns);
                    if origin != self.origin && sealed >= self.started {
                        self.metrics.partner_fused.observe(journal::wall_clock().secs_since(sealed));
                    }
                    self.take(
                        Committed {
                            origin,
                            seq: r.seq,
                            kind,
                            body: rec.body,
                            arrived: None,
                            fill: false,
                            origin_time: None,
                        },
                        newest_time,
                        last_seq,
                    );
                }
                Err(e) => {
                    tracing::error!(%origin, seq = r.seq, error = %e, "undecodable record in the log; skipped");
                    *last_seq = r.seq;
                }
            }
        }
        n
    }

    fn take(&mut self, c: Committed, newest_time: &mut UtcNanos, last_seq: &mut u64) {
        *last_seq = c.seq;
        if c.kind == RecordKind::CyberBundle {
            if let Ok(mut cti) = self.cti.lock() {
                cti.take_record(c.origin, &c.body);
            }
            return;
        }
        if c.kind == RecordKind::AlertAck && c.origin == self.origin {
            self.take_ack(&c);
            return;
        }
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
        let mut batch_newest = UtcNanos::from_nanos(i64::MIN);
        for w in &batch.measurements {
            self.saw_sensor(w);
            match ingest::from_wire(w) {
                Ok(m) => {
                    batch_newest = batch_newest.max(m.time);
                    self.engine.ingest(m);
                }
                Err(e) => tracing::error!(seq = c.seq, error = %e, "invalid measurement in the log; skipped"),
            }
        }
        if batch_newest.as_nanos() != i64::MIN {
            *newest_time = (*newest_time).max(batch_newest);
            // When fusion took the batch in: its reorder wait starts here.
            let taken = Instant::now();
            // Arrival order is nearly data order; one entry per batch, bounded by the queue.
            if self.arrivals.back().is_none_or(|(_, t)| *t < batch_newest) {
                self.arrivals.push_back((taken, batch_newest));
            }
            while self.arrivals.len() > MAX_ARRIVALS {
                if let Some((_, t)) = self.arrivals.pop_front() {
                    self.waited_until = self.waited_until.max(t);
                }
            }
            if let Some(at) = c.arrived {
                match self.unfused.back_mut() {
                    Some(last) if batch_newest <= last.0 => {
                        if at < last.1 {
                            (last.1, last.2) = (at, taken);
                        }
                    }
                    _ => self.unfused.push_back((batch_newest, at, taken)),
                }
                if self.unfused.len() > MAX_ARRIVALS {
                    self.unfused.pop_front();
                }
            }
        }
    }

    /// Applies an operator's acknowledgement and publishes the alert with it.
    fn take_ack(&mut self, c: &Committed) {
        let a = match wire::AlertAck::decode(c.body.as_slice()) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(seq = c.seq, error = %e, "undecodable alert acknowledgement in the log; skipped");
                return;
            }
        };
        let level = match a.level() {
            wire::AlertLevel::Impact => alert::Level::Impact,
            wire::AlertLevel::Warning => alert::Level::Warning,
            _ => alert::Level::Watch,
        };
        let ack = Ack { operator: a.operator, time: UtcNanos::from_nanos(a.time_unix_ns), level, note: a.note };
        tracing::info!(alert = %a.alert_id, operator = %ack.operator, level = level.as_str(), "alert acknowledged");
        self.acks.insert(a.alert_id.clone(), ack);
        let current = self.alerts.current();
        if let Some(al) = current.iter().find(|x| x.id == a.alert_id) {
            let v = self.alert_value(al);
            publish(&self.events, json!({"type": "alert", "change": "acknowledged", "data": v}));
        }
        self.publish_alerts(&current);
    }

    fn alert_value(&self, a: &alert::Alert) -> Value {
        let nations = self.track_nations.get(&a.track).map(Vec::as_slice).unwrap_or(&[]);
        alert_json(a, nations, self.acks.get(&a.id))
    }

    fn publish_alerts(&self, current: &[alert::Alert]) {
        let values: Vec<Value> = current.iter().map(|a| self.alert_value(a)).collect();
        if let Ok(mut list) = self.alert_list.write() {
            *list = values;
        }
    }

    /// Notes where a sensor is, from one of its measurements.
    fn saw_sensor(&mut self, w: &wire::Measurement) {
        use wire::measurement::Obs;
        let (kind, lat, lon, alt, range) = match &w.obs {
            Some(Obs::Radar(r)) => ("radar", r.lat_deg, r.lon_deg, r.alt_m, r.range_m),
            Some(Obs::SpaceIr(ir)) => {
                let g = geodesy::ecef_to_geodetic(&geodesy::Vector3::new(ir.sat_x_m, ir.sat_y_m, ir.sat_z_m));
                ("space_ir", g.lat_deg(), g.lon_deg(), g.alt_m, 0.0)
            }
            _ => return,
        };
        if !(lat.is_finite() && lon.is_finite() && alt.is_finite()) {
            return;
        }
        let time = UtcNanos::from_nanos(w.time_unix_ns);
        let room = self.sensors.len() < MAX_SENSORS_SEEN;
        match self.sensors.get_mut(&w.sensor) {
            Some(s) => {
                if time >= s.last {
                    (s.lat_deg, s.lon_deg, s.alt_m, s.last) = (lat, lon, alt, time);
                }
                s.max_range_m = s.max_range_m.max(range);
                s.measurements += 1;
            }
            None if room => {
                self.sensors.insert(
                    w.sensor.clone(),
                    SensorSeen {
                        nation: w.nation.clone(),
                        kind,
                        lat_deg: lat,
                        lon_deg: lon,
                        alt_m: alt,
                        max_range_m: range,
                        last: time,
                        measurements: 1,
                    },
                );
            }
            None => {}
        }
    }

    /// After an engine step: alerts from every new impact prediction at once; the track
    /// picture and its stream messages at most every `PUBLISH_INTERVAL` (building JSON for a
    /// thousand tracks on every step would cost more than fusing them).
    fn refresh(
        &mut self,
        changed: &[fusion::TrackId],
        data_now: UtcNanos,
        clock: UtcNanos,
        replaying: bool,
        st: &mut RefreshState,
        pending_log: &mut VecDeque<Append>,
    ) {
        let changed: BTreeSet<fusion::TrackId> = changed.iter().copied().collect();
        let views = self.engine.tracks_where(|id| changed.contains(&id));
        let mut changes: Vec<AlertChange> = Vec::new();
        for t in views.iter().filter(|t| t.status == TrackStatus::Confirmed) {
            st.dirty.insert(t.id.0);
            if self.track_nations.get(&t.id.0).is_none_or(|n| n.len() != t.nations.len()) {
                self.track_nations.insert(t.id.0, t.nations.iter().map(|n| n.as_str().to_string()).collect());
            }
            let (Some((at, _)), Some(p)) = (&t.impact, crate::products::impact_prediction(t)) else { continue };
            if st.impact_made.get(&t.id.0) == Some(at) {
                continue;
            }
            st.impact_made.insert(t.id.0, *at);
            changes.extend(self.alerts.predict(t.id.0, &p, data_now));
        }
        let live: Vec<u64> = self.engine.track_ids().iter().map(|id| id.0).collect();
        if clock.as_nanos() > i64::MIN {
            changes.extend(self.alerts.expire(&live, clock));
        }
        if !changes.is_empty() {
            for c in &changes {
                self.metrics.alerts_changed.fetch_add(1, Relaxed);
                tracing::info!(alert = %c.alert.id, change = c.change.as_str(), level = c.alert.level.as_str(), area = %c.alert.area, "alert");
                publish(
                    &self.events,
                    json!({"type": "alert", "change": c.change.as_str(), "data": self.alert_value(&c.alert)}),
                );
                if !replaying {
                    pending_log.push_back(Append {
                        kind: RecordKind::Alert,
                        body: crate::products::alert_wire(c).encode_to_vec(),
                        arrived: Instant::now(),
                        reply: None,
                        derived: Vec::new(),
                        marking: None,
                    });
                }
            }
            self.publish_alerts(&self.alerts.current());
            if let (Some((t0, taken)), false) = (st.oldest_fused_arrival, replaying) {
                let secs = t0.elapsed().as_secs_f64();
                self.metrics.ingest_to_alert.observe(secs);
                self.metrics.ingest_to_alert_fine.observe(secs);
                if secs > self.reorder_window_s + SLOW_ALERT_BEYOND_WINDOW_S {
                    // Where the time went: the log's commit and the hand-over to fusion, the
                    // wait from there to this step (the reorder window, earlier steps), and
                    // the step itself (with the impact predictions it flew).
                    let ms = |d: Duration| d.as_secs_f64() * 1e3;
                    tracing::warn!(
                        ms = secs * 1e3,
                        commit_ms = ms(taken.saturating_duration_since(t0)),
                        wait_ms = ms(st.step_started.saturating_duration_since(taken)),
                        step_ms = ms(st.step_started.elapsed()),
                        take_in_ms = ms(st.taken_in.saturating_duration_since(st.step_started)),
                        advance_ms = ms(st.advanced.saturating_duration_since(st.taken_in)),
                        predictions = self.engine.counters().impact_predictions - st.predictions_before,
                        "slow alert: published long after its earliest input arrived"
                    );
                }
            }
        }
        if st.last_publish.elapsed() < PUBLISH_INTERVAL {
            return;
        }
        let counters = self.engine.counters();
        self.metrics.tracks_confirmed.store(counters.tracks_confirmed, Relaxed);
        self.metrics.late_set_aside.store(counters.late_set_aside, Relaxed);
        let live: BTreeSet<u64> = live.into_iter().collect();
        st.impact_made.retain(|id, _| live.contains(id));
        self.track_nations.retain(|id, _| live.contains(id));
        let views: Vec<TrackView> = self
            .engine
            .tracks_where(|id| st.dirty.contains(&id.0))
            .into_iter()
            .filter(|t| t.status == TrackStatus::Confirmed)
            .collect();
        let sensors: Vec<Value> = self.sensors.iter().map(|(id, s)| s.json(id)).collect();
        // Building the JSON of a thousand tracks takes milliseconds: the publisher thread
        // does it, so that alerts never wait for it. If it is still busy with the last one,
        // the dirty set is kept and sent next time.
        match st.publisher.try_send(Publication { views, live, counters, sensors }) {
            Ok(()) => {
                st.dirty.clear();
                st.last_publish = Instant::now();
            }
            Err(std::sync::mpsc::TrySendError::Full(_)) => {
                // Try again in 10 ms rather than at every step.
                let retry = PUBLISH_INTERVAL.saturating_sub(Duration::from_millis(10));
                st.last_publish = Instant::now().checked_sub(retry).unwrap_or(st.last_publish);
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                tracing::error!("the picture publisher stopped; the track picture is no longer refreshed");
                st.last_publish = Instant::now();
            }
        }
    }
}

/// Puts the calling thread (fusion) under SCHED_FIFO at `priority`, so that no thread of
/// normal priority — the node's own HTTP, gRPC and picture work, or anything else on the
/// machine — delays an engine step by sharing its core. Returns the priority applied, or 0
/// (normal scheduling, with a warning that says why).
///
/// Refused on a machine of one CPU: a FIFO thread that fuses a backlog for seconds would
/// leave the log writer and ingest only the kernel's real-time throttling margin (5%). With
/// two or more, the others run on the other cores. Needs `CAP_SYS_NICE` or an `RLIMIT_RTPRIO`
/// of at least `priority` (systemd: `LimitRTPRIO=`); docs/node.md.
pub fn raise_to_realtime(priority: u8) -> u8 {
    use thread_priority::{
        set_thread_priority_and_policy, thread_native_id, RealtimeThreadSchedulePolicy, ThreadPriority,
        ThreadPriorityValue, ThreadSchedulePolicy,
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        tracing::warn!(
            cpus,
            "fusion.realtime_priority is not applied on a machine of one CPU; fusion runs at normal priority"
        );
        return 0;
    }
    let value = match ThreadPriorityValue::try_from(priority) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(
                priority,
                error = e,
                "fusion.realtime_priority is out of range; fusion runs at normal priority"
            );
            return 0;
        }
    };
    let policy = ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo);
    match set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Crossplatform(value), policy) {
        Ok(()) => {
            tracing::info!(priority, "fusion runs under SCHED_FIFO");
            priority
        }
        Err(e) => {
            tracing::warn!(
                priority,
                error = %e,
                "fusion.realtime_priority could not be applied (it needs CAP_SYS_NICE or RLIMIT_RTPRIO); fusion runs at normal priority"
            );
            0
        }
    }
}

/// One refresh of the track picture, handed from fusion to the publisher thread.
struct Publication {
    /// Confirmed tracks changed since the last publication.
    views: Vec<TrackView>,
    /// Every live track.
    live: BTreeSet<u64>,
    counters: fusion::Counters,
    sensors: Vec<Value>,
}

/// Starts the thread that turns publications into the shared picture and stream messages.
/// It stops when fusion drops the sender.
fn spawn_publisher(
    picture: Arc<RwLock<Picture>>,
    events: broadcast::Sender<Arc<str>>,
) -> std::sync::mpsc::SyncSender<Publication> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Publication>(1);
    let spawned = std::thread::Builder::new().name("picture".into()).spawn(move || {
        // Background work: building the picture's JSON runs for milliseconds at a time, and at
        // normal priority it preempted fusion (an alert's step) while the other core idled.
        // Raising a thread's own nice needs no privilege; on Linux it applies to this thread.
        if let Err(e) = rustix::process::setpriority_process(None, PUBLISHER_NICE) {
            tracing::debug!(error = %e, "could not lower the picture publisher's priority");
        }
        // Tracks whose launch event has been published.
        let mut launched = BTreeSet::new();
        for p in rx {
            publish_picture(&picture, &events, p, &mut launched);
        }
    });
    if let Err(e) = spawned {
        // Without the thread the receiver is dropped: fusion logs it at the first publication.
        tracing::error!(error = %e, "failed to start the picture publisher");
    }
    tx
}

fn publish_picture(
    picture: &RwLock<Picture>,
    events: &broadcast::Sender<Arc<str>>,
    publication: Publication,
    launched: &mut BTreeSet<u64>,
) {
    let Publication { views, live, counters, sensors } = publication;
    let mut messages = Vec::new();
    let mut updates = Vec::new();
    for t in views {
        let v = track_json(&t);
        messages.push(json!({"type": "track", "data": v}));
        let launch = launch_json(&t);
        if let Some(l) = &launch {
            if launched.insert(t.id.0) {
                messages.push(json!({"type": "launch", "data": l}));
            }
        }
        updates.push((t.id.0, v, launch, t));
    }
    launched.retain(|id| live.contains(id));
    if let Ok(mut p) = picture.write() {
        let removed: Vec<u64> = p.tracks.keys().copied().filter(|id| !live.contains(id)).collect();
        for id in removed {
            p.tracks.remove(&id);
            p.views.remove(&id);
            p.trails.remove(&id);
            messages.push(json!({"type": "track_deleted", "track": id}));
        }
        p.sensors = sensors;
        for (id, v, launch, view) in updates {
            let trail = p.trails.entry(id).or_default();
            let t = view.time.as_nanos() as f64 * 1e-9;
            if trail.back().is_none_or(|b| t - b[0] >= TRAIL_STEP_S) {
                let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
                trail.push_back([t, f("lat_deg"), f("lon_deg"), f("alt_m"), phase_code(view.phase.as_str())]);
                if trail.len() > TRAIL_POINTS {
                    trail.pop_front();
                }
            }
            p.tracks.insert(id, v);
            p.views.insert(id, view);
            if let Some(l) = launch {
                p.launches.insert(id, l);
            }
        }
        p.counters = crate::products::counters_json(&counters);
    }
    for m in messages {
        publish(events, m);
    }
}
