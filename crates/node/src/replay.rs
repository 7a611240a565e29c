//! Replay of a past interval from the log (`GET /v1/replay`): a fresh fusion engine and alert
//! book run over every origin's measurement records of the interval (plus a lead-in, so tracks
//! already flying at its start exist), and the picture is sampled at a fixed step of data time.
//! The live picture is untouched; the replay is what the node would have shown then, rebuilt
//! from the log alone.

use crate::products::{alert_json, track_json};
use alert::AlertBook;
use fusion::{Engine, EngineConfig, TrackStatus};
use journal::Store;
use ledger::LogStore;
use prost::Message;
use serde_json::{json, Value};
use std::sync::Mutex;
use vocab::{Nation, UtcNanos};
use wire::RecordKind;

/// Most frames one replay returns.
pub const MAX_FRAMES: usize = 3600;
/// Longest interval one replay covers.
pub const MAX_SPAN_S: f64 = 6.0 * 3600.0;
/// Data read before the interval so that tracks flying at its start are already formed.
const LEAD_IN_S: f64 = 120.0;
/// Most measurement records one replay fuses (beyond, the request is refused: ask for less).
pub const MAX_RECORDS: usize = 2_000_000;
/// Records read from the log per step.
const CHUNK: usize = 2000;

/// A replay request, checked.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    pub from: UtcNanos,
    pub to: UtcNanos,
    pub step_s: f64,
}

impl Request {
    /// Brings the request within bounds: an interval longer than `MAX_SPAN_S` keeps its end,
    /// a step that would give more than `MAX_FRAMES` frames is raised. Refuses only a step
    /// outside 0.1 s to a day.
    pub fn bounded(mut self) -> Result<Request, String> {
        if !(self.step_s.is_finite() && (0.1..=86_400.0).contains(&self.step_s)) {
            return Err(format!("step_s {} must be between 0.1 and 86400", self.step_s));
        }
        if self.to.secs_since(self.from) > MAX_SPAN_S {
            self.from = self.to.add_secs_f64(-MAX_SPAN_S);
        }
        let span = self.to.secs_since(self.from).max(0.0);
        if span / self.step_s > MAX_FRAMES as f64 {
            self.step_s = span / MAX_FRAMES as f64;
        }
        Ok(self)
    }
}

/// Origin time of the record at `seq` of `origin` (None if it cannot be read).
fn record_time(store: &Mutex<Box<dyn LogStore>>, origin: Nation, seq: u64) -> Option<UtcNanos> {
    let plan = store.lock().ok()?.reader(origin, seq, 1, usize::MAX);
    let r = plan.records().ok()?.into_iter().next()?;
    wire::Record::decode(r.bytes.as_slice()).ok().map(|r| UtcNanos::from_nanos(r.origin_time_unix_ns))
}

/// First seq of `origin` whose record is at or after `t` (records are sealed in time order,
/// so a binary search over seq finds it with a few reads).
fn first_seq_at(store: &Mutex<Box<dyn LogStore>>, origin: Nation, head: u64, t: UtcNanos) -> u64 {
    let (mut lo, mut hi) = (1u64, head + 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match record_time(store, origin, mid) {
            Some(rt) if rt < t => lo = mid + 1,
            // Unreadable (a withheld stub) counts as late enough: the scan filters by time.
            _ => hi = mid,
        }
    }
    lo
}

/// The time span the log covers (first and newest record over every origin).
pub fn log_span(store: &Mutex<Box<dyn LogStore>>) -> Option<(UtcNanos, UtcNanos)> {
    let heads = store.lock().ok()?.heads();
    let mut span: Option<(UtcNanos, UtcNanos)> = None;
    for h in heads.iter().filter(|h| h.seq() > 0) {
        let (Some(a), Some(b)) = (record_time(store, h.origin(), 1), record_time(store, h.origin(), h.seq())) else {
            continue;
        };
        span = Some(match span {
            None => (a, b),
            Some((x, y)) => (x.min(a), y.max(b)),
        });
    }
    span
}

/// Reads every origin's measurements between `from` and `to` (by measurement time), sorted.
fn measurements(
    store: &Mutex<Box<dyn LogStore>>,
    own: Nation,
    from: UtcNanos,
    to: UtcNanos,
) -> Result<Vec<fusion::Measurement>, String> {
    let heads = store.lock().map_err(|_| "store lock poisoned".to_string())?.heads();
    let mut out = Vec::new();
    let mut records = 0usize;
    for h in heads.iter().filter(|h| h.seq() > 0) {
        let origin = h.origin();
        // Records are sealed after their measurements were taken: start a minute early.
        let mut seq = first_seq_at(store, origin, h.seq(), from.add_secs_f64(-60.0));
        while seq <= h.seq() {
            let plan =
                store.lock().map_err(|_| "store lock poisoned".to_string())?.reader(origin, seq, CHUNK, usize::MAX);
            let chunk = plan.records().map_err(|e| e.to_string())?;
            let Some(last) = chunk.last() else { break };
            seq = last.seq + 1;
            let mut past_end = false;
            for r in chunk {
                let Ok(rec) = wire::Record::decode(r.bytes.as_slice()) else { continue };
                if UtcNanos::from_nanos(rec.origin_time_unix_ns) > to.add_secs_f64(60.0) {
                    past_end = true;
                    break;
                }
                let kind = RecordKind::try_from(rec.kind).unwrap_or(RecordKind::Unspecified);
                // This node's transformed copies for partners are its own data again.
                if kind != RecordKind::MeasurementBatch || (rec.derived_from != 0 && origin == own) {
                    continue;
                }
                records += 1;
                if records > MAX_RECORDS {
                    return Err(format!("the interval holds over {MAX_RECORDS} records: replay a shorter one"));
                }
                let Ok(batch) = wire::MeasurementBatch::decode(rec.body.as_slice()) else { continue };
                for w in &batch.measurements {
                    if let Ok(m) = ingest::from_wire(w) {
                        if m.time >= from && m.time <= to {
                            out.push(m);
                        }
                    }
                }
            }
            if past_end {
                break;
            }
        }
    }
    out.sort_by_key(|m| m.time);
    Ok(out)
}

/// Runs the replay: frames of `{time, tracks, alerts}` every `step_s` from `from` to `to`.
pub fn run(
    store: &Store,
    own: Nation,
    engine_config: EngineConfig,
    areas: Vec<alert::Area>,
    req: Request,
) -> Result<Value, String> {
    let req = req.bounded()?;
    if req.to < req.from {
        return Ok(json!({"from": req.from.to_string(), "to": req.to.to_string(), "step_s": req.step_s,
                         "measurements": 0, "frames": []}));
    }
    let lead_from = req.from.add_secs_f64(-LEAD_IN_S);
    let data = measurements(store, own, lead_from, req.to)?;
    let n_measurements = data.len();
    let mut engine = Engine::new(engine_config);
    let mut book = AlertBook::new(areas);
    let mut frames = Vec::new();
    let mut it = data.into_iter().peekable();
    let steps = ((req.to.secs_since(req.from) / req.step_s).floor() as usize).min(MAX_FRAMES - 1);
    for k in 0..=steps {
        let t = req.from.add_secs_f64(k as f64 * req.step_s);
        while let Some(m) = it.next_if(|m| m.time <= t) {
            engine.ingest(m);
        }
        let changed = engine.advance(t);
        let views = engine.tracks_where(|id| changed.contains(&id));
        for v in views.iter().filter(|v| v.status == TrackStatus::Confirmed) {
            if let Some(p) = crate::products::impact_prediction(v) {
                book.predict(v.id.0, &p, t);
            }
        }
        let live: Vec<u64> = engine.track_ids().iter().map(|id| id.0).collect();
        book.expire(&live, t);
        let confirmed: Vec<fusion::TrackView> =
            engine.tracks().into_iter().filter(|v| v.status == TrackStatus::Confirmed).collect();
        let tracks: Vec<Value> = confirmed.iter().map(track_json).collect();
        let alerts: Vec<Value> = book
            .current()
            .iter()
            .map(|a| {
                let nations: Vec<String> = confirmed
                    .iter()
                    .find(|v| v.id.0 == a.track)
                    .map(|v| v.nations.iter().map(|n| n.as_str().to_string()).collect())
                    .unwrap_or_default();
                let mut v = alert_json(a, &nations, None);
                // Time to impact as it stood at the frame, not as it stands now.
                v["time_to_impact_s"] = json!(a.impact_time.secs_since(t));
                v
            })
            .collect();
        frames.push(json!({"time": t.to_string(), "tracks": tracks, "alerts": alerts}));
    }
    Ok(json!({
        "from": req.from.to_string(),
        "to": req.to.to_string(),
        "step_s": req.step_s,
        "measurements": n_measurements,
        "frames": frames,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> UtcNanos {
        UtcNanos::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn requests_are_brought_within_bounds() {
        let r = Request { from: at("2026-05-14T00:00:00Z"), to: at("2026-05-14T10:00:00Z"), step_s: 1.0 };
        let b = r.bounded().unwrap();
        assert_eq!(b.from, at("2026-05-14T04:00:00Z"), "an interval over 6 h keeps its end");
        assert!((b.step_s - MAX_SPAN_S / MAX_FRAMES as f64).abs() < 1e-9, "the step is raised to 3600 frames");
        let r = Request { from: at("2026-05-14T00:00:00Z"), to: at("2026-05-14T00:10:00Z"), step_s: 1.0 };
        assert_eq!(r.bounded().unwrap().step_s, 1.0);
        for bad in [0.0, 0.05, f64::NAN, f64::INFINITY, 1e9] {
            assert!(Request { step_s: bad, ..r }.bounded().is_err(), "{bad}");
        }
    }
}
