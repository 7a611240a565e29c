//! Sensors at the door: who a bearer token belongs to, whether each measurement it sends may
//! be taken (its sensor, its time), and the queueing of a batch's good measurements for the
//! log with the derived copies partners get instead. Shared by HTTP and gRPC ingest.

use crate::config::{IngestLimits, Sensor};
use fusion::Measurement;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use telemetry::{Metrics, Reject};
use tokio::sync::oneshot;
use vocab::{Nation, UtcNanos};

/// What ingest needs of the node: its sensors, its limits, the partners its measurements go
/// to only transformed, the log, and where to count.
#[derive(Debug)]
pub struct Admission {
    /// Sensors by the SHA-256 of their token.
    pub sensors_by_token: BTreeMap<[u8; 32], Sensor>,
    pub limits: IngestLimits,
    /// Partners that get this node's measurement batches only transformed.
    pub transforms: Vec<(Nation, federation::transform::Transform)>,
    /// Salt of the sensor pseudonyms in transformed releases (from the signing key).
    pub pseudonym_salt: [u8; 32],
    pub log: journal::LogHandle,
    pub metrics: Arc<Metrics>,
    /// Per-sensor counts for the status API.
    pub stats: Mutex<BTreeMap<String, SensorStats>>,
}

/// Per-sensor counts for the status API.
#[derive(Debug, Default, Clone)]
pub struct SensorStats {
    pub accepted: u64,
    pub rejected: u64,
    pub last_seen: Option<UtcNanos>,
}

/// One refused measurement: its index in the batch and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub index: usize,
    pub reason: Reject,
    pub message: String,
}

/// The outcome of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchOutcome {
    pub accepted: usize,
    pub refused: Vec<Refused>,
    /// The record holding the accepted measurements (None when nothing was accepted).
    pub seq: Option<u64>,
}

impl Admission {
    /// The sensor a bearer token belongs to.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<&Sensor, String> {
        let Some(value) = authorization else {
            self.metrics.reject(Reject::Unauthenticated, 1);
            return Err("missing authorization: send `Authorization: Bearer <sensor token>`".into());
        };
        let token = value.strip_prefix("Bearer ").unwrap_or("").trim();
        match self.sensors_by_token.get(&pki::token_hash(token)) {
            Some(s) if !token.is_empty() => Ok(s),
            _ => {
                self.metrics.reject(Reject::Unauthenticated, 1);
                Err("unknown sensor token".into())
            }
        }
    }

    /// Checks one parsed measurement against the sensor that sent it and the clock.
    fn admit(&self, sensor: &Sensor, m: &Measurement, now: UtcNanos) -> Result<(), (Reject, String)> {
        if m.sensor != sensor.id || m.nation != sensor.nation {
            return Err((
                Reject::WrongSensor,
                format!(
                    "measurement names sensor {} of {} but the token is {}'s of {}",
                    m.sensor, m.nation, sensor.id, sensor.nation
                ),
            ));
        }
        let ahead_s = m.time.secs_since(now);
        if ahead_s > self.limits.max_future_s {
            return Err((
                Reject::InFuture,
                format!(
                    "time {} is {ahead_s:.0} s ahead of the node's clock (limit {} s)",
                    m.time, self.limits.max_future_s
                ),
            ));
        }
        if -ahead_s > self.limits.max_age_s {
            return Err((
                Reject::TooOld,
                format!("time {} is {:.0} s old (limit {} s)", m.time, -ahead_s, self.limits.max_age_s),
            ));
        }
        Ok(())
    }

    /// Checks a batch of parsed (or unparseable) measurements, logs the good ones as one
    /// record and returns once that record is durable.
    pub async fn ingest_batch(
        &self,
        sensor: &Sensor,
        items: Vec<Result<Measurement, ingest::IngestError>>,
        arrived: Instant,
    ) -> Result<BatchOutcome, String> {
        self.stage_batch(sensor, items, arrived).await?.durable(self).await
    }

    /// The first half of `ingest_batch`: checks the batch and queues its good measurements
    /// for the log, in call order, without waiting for them to be durable. A stream stages
    /// its next batch while earlier ones are in the group commit, so a sensor sending small
    /// batches is not held to one batch per sync.
    pub async fn stage_batch(
        &self,
        sensor: &Sensor,
        items: Vec<Result<Measurement, ingest::IngestError>>,
        arrived: Instant,
    ) -> Result<Staged, String> {
        let now = journal::wall_clock();
        let mut refused = Vec::new();
        let mut good = Vec::with_capacity(items.len());
        let mut good_at = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            let checked = item
                .map_err(|e| {
                    let reason = match e {
                        ingest::IngestError::TooLong => Reject::Oversized,
                        ingest::IngestError::Json(_) => Reject::Malformed,
                        ingest::IngestError::Invalid { .. } => Reject::OutOfRange,
                    };
                    (reason, e.to_string())
                })
                .and_then(|m| self.admit(sensor, &m, now).map(|()| m));
            match checked {
                Ok(m) => {
                    good.push(ingest::to_wire(&m));
                    good_at.push(index);
                }
                Err((reason, message)) => {
                    self.metrics.reject(reason, 1);
                    refused.push(Refused { index, reason, message });
                }
            }
        }
        let accepted = good.len();
        {
            let mut s = self.stats.lock().map_err(|_| "sensor table poisoned".to_string())?;
            let e = s.entry(sensor.id.clone()).or_default();
            e.accepted += accepted as u64;
            e.rejected += refused.len() as u64;
            e.last_seen = Some(now);
        }
        if good.is_empty() {
            return Ok(Staged { accepted, refused, durable: None });
        }
        let batch = wire::MeasurementBatch { measurements: good };
        // Partners that get this node's measurements only transformed get a derived copy each.
        let derived: Vec<(Nation, Vec<u8>)> = self
            .transforms
            .iter()
            .map(|(nation, t)| {
                let copy = federation::transform::apply(&batch, t, &self.pseudonym_salt);
                (*nation, prost::Message::encode_to_vec(&copy))
            })
            .collect();
        let body = prost::Message::encode_to_vec(&batch);
        // The record as the node encodes it must fit the log: refused here, by the
        // measurements' reason, rather than by the writer.
        let largest = derived.iter().map(|(_, b)| b.len()).chain([body.len()]).max().unwrap_or(0);
        if let Some(why) = journal::writer::too_large(largest) {
            self.metrics.reject(Reject::Oversized, accepted as u64);
            let message = format!("the batch's record: {why}");
            refused.extend(good_at.iter().map(|&index| Refused {
                index,
                reason: Reject::Oversized,
                message: message.clone(),
            }));
            refused.sort_by_key(|r| r.index);
            return Ok(Staged { accepted: 0, refused, durable: None });
        }
        let (tx, rx) = oneshot::channel();
        let append = journal::Append {
            kind: wire::RecordKind::MeasurementBatch,
            body,
            arrived,
            reply: Some(tx),
            derived,
            marking: None,
        };
        if self.log.sender().send(append).await.is_err() {
            self.metrics.reject(Reject::Unavailable, accepted as u64);
            return Err("the node is shutting down".into());
        }
        Ok(Staged { accepted, refused, durable: Some(rx) })
    }
}

/// A checked batch queued for the log (`Admission::stage_batch`); `durable` waits for its record.
#[derive(Debug)]
pub struct Staged {
    accepted: usize,
    refused: Vec<Refused>,
    /// The writer's answer for the record of the good measurements (none: nothing to log).
    durable: Option<oneshot::Receiver<Result<u64, String>>>,
}

impl Staged {
    /// The batch's outcome once its record is durable (or why it is not).
    pub async fn durable(self, app: &Admission) -> Result<BatchOutcome, String> {
        let Staged { accepted, refused, durable } = self;
        let Some(rx) = durable else { return Ok(BatchOutcome { accepted, refused, seq: None }) };
        match rx.await {
            Ok(Ok(seq)) => {
                app.metrics.measurements_accepted.fetch_add(accepted as u64, Relaxed);
                Ok(BatchOutcome { accepted, refused, seq: Some(seq) })
            }
            Ok(Err(e)) => {
                app.metrics.reject(Reject::Unavailable, accepted as u64);
                Err(e)
            }
            Err(_) => {
                app.metrics.reject(Reject::Unavailable, accepted as u64);
                Err("the log writer stopped".into())
            }
        }
    }
}
