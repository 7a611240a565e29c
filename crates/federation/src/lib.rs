//! Federation: links to partner nodes over mutual TLS (docs/federation.md).
//!
//! `protocol` decides (egress policy, ingress verification, sans IO); `tls` makes and checks
//! identities; `serve` is the sending side (a gRPC service partners subscribe to); `link` the
//! receiving side (one task per partner that dials, subscribes, applies and acknowledges);
//! `releases` the signed audit log of release decisions.

pub mod config;
pub mod ctx;
pub mod link;
pub mod protocol;
pub mod recover;
pub mod serve;
pub mod state;
pub mod tls;
pub mod transform;

#[cfg(test)]
mod simulation;

pub use config::{Partner, Settings};
pub use ctx::Ctx;
use std::sync::Arc;

/// Starts the federation server (accepting verified partners) and one link per partner with
/// an address; returns their tasks, which end when `ctx.stop` turns.
pub fn start(ctx: Ctx, listener: tokio::net::TcpListener) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let fed = ctx.fed.clone();
    let refused: Arc<dyn Fn(&'static str) + Send + Sync> = Arc::new(move |r| fed.count_refused(r));
    tasks.push(tokio::spawn(ctx.fed.tls.clone().accept_loop(
        listener,
        tx,
        refused,
        ctx.fed.handshake.clone(),
        ctx.stop.clone(),
    )));
    let service = wire::federation_server::FederationServer::new(serve::Service::new(ctx.clone()))
        .max_decoding_message_size(protocol::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(protocol::MAX_MESSAGE_BYTES);
    let mut stop = ctx.stop.clone();
    let server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(5)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(10)))
        .add_service(service)
        .serve_with_incoming_shutdown(tokio_stream::wrappers::ReceiverStream::new(rx), async move {
            let _ = stop.changed().await;
        });
    tasks.push(tokio::spawn(async move {
        if let Err(e) = server.await {
            tracing::error!(error = %e, "federation server failed");
        }
    }));
    for p in ctx.fed.partners.values() {
        if let Some(addr) = p.address {
            tasks.push(tokio::spawn(link::run(ctx.clone(), p.nation, addr)));
        }
    }
    tasks
}
