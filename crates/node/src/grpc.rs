//! The gRPC ingest service (`trilink.v1.Ingest`, proto/trilink/v1/trilink.proto): the same
//! checks and the same durable acknowledgement as HTTP ingest, for sensors that stream.

use crate::admission::{Admission, Staged};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use wire::ingest_server::{Ingest, IngestServer};
use wire::{IngestAck, MeasurementBatch, Rejection};

/// Batches a stream may have in flight (staged, then awaiting their acknowledgement's
/// delivery) before the node stops reading it (backpressure).
const STREAM_ACK_BUFFER: usize = 64;

#[derive(Debug)]
pub struct Service {
    app: Arc<Admission>,
}

pub fn service(app: Arc<Admission>) -> IngestServer<Service> {
    let limit = app.limits.max_body_bytes;
    IngestServer::new(Service { app }).max_decoding_message_size(limit)
}

fn bearer<T>(req: &Request<T>) -> Option<String> {
    req.metadata().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// Checks a batch and queues it for the log (see `Admission::stage_batch`).
async fn stage(app: &Admission, sensor: &crate::config::Sensor, batch: MeasurementBatch) -> Result<Staged, Status> {
    let arrived = Instant::now();
    let max = app.limits.max_batch_measurements;
    if batch.measurements.len() > max {
        app.metrics.reject(telemetry::Reject::Oversized, 1);
        return Err(Status::resource_exhausted(format!(
            "{} measurements exceed the batch limit of {max}",
            batch.measurements.len()
        )));
    }
    if batch.measurements.is_empty() {
        return Err(Status::invalid_argument("empty batch"));
    }
    let items = batch.measurements.iter().map(ingest::from_wire).collect();
    app.stage_batch(sensor, items, arrived).await.map_err(Status::unavailable)
}

/// The acknowledgement of a staged batch, once its record is durable.
async fn acknowledge(app: &Admission, staged: Staged) -> Result<IngestAck, Status> {
    let o = staged.durable(app).await.map_err(Status::unavailable)?;
    Ok(IngestAck {
        accepted: o.accepted as u64,
        rejected: o.refused.len() as u64,
        rejections: o
            .refused
            .iter()
            .map(|r| Rejection { index: r.index as u32, reason: format!("{}: {}", r.reason.as_str(), r.message) })
            .collect(),
        seq: o.seq.unwrap_or(0),
    })
}

type AckStream = Pin<Box<dyn Stream<Item = Result<IngestAck, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Ingest for Service {
    async fn submit(&self, req: Request<MeasurementBatch>) -> Result<Response<IngestAck>, Status> {
        let sensor = self.app.authenticate(bearer(&req).as_deref()).map_err(Status::unauthenticated)?.clone();
        let staged = stage(&self.app, &sensor, req.into_inner()).await?;
        acknowledge(&self.app, staged).await.map(Response::new)
    }

    type StreamStream = AckStream;

    async fn stream(&self, req: Request<Streaming<MeasurementBatch>>) -> Result<Response<AckStream>, Status> {
        let sensor = self.app.authenticate(bearer(&req).as_deref()).map_err(Status::unauthenticated)?.clone();
        let mut inbound = req.into_inner();
        let app = self.app.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_ACK_BUFFER);
        // Batches are staged (checked and queued for the log, in stream order) as they arrive
        // and acknowledged in the same order as each becomes durable: a stream keeps up to
        // `STREAM_ACK_BUFFER` batches in the group commit instead of one per sync.
        let (staged_tx, mut staged_rx) = tokio::sync::mpsc::channel(STREAM_ACK_BUFFER);
        let reader_app = app.clone();
        tokio::spawn(async move {
            while let Some(batch) = inbound.next().await {
                let staged = match batch {
                    Ok(b) => stage(&reader_app, &sensor, b).await,
                    Err(status) => {
                        reader_app.metrics.reject(telemetry::Reject::Malformed, 1);
                        let _ = staged_tx.send(Err(status)).await;
                        break;
                    }
                };
                if staged_tx.send(staged).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            while let Some(staged) = staged_rx.recv().await {
                let ack = match staged {
                    Ok(s) => acknowledge(&app, s).await,
                    Err(status) => Err(status),
                };
                if tx.send(ack).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}
