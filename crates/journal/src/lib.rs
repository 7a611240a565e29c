//! The node's log as a running service: the shared store handle (`Store`), the group-commit
//! writer thread (`writer::Writer`) that seals the node's own records, what it hands on once
//! they are durable (`Committed`), the handle through which anything else in the node asks for
//! a record to be appended (`LogHandle`), and the node's clock (`wall_clock`).
//!
//! Every adapter that writes to the log (ingest, TAXII, alerts, federation) depends on this
//! crate, not on the node: it is the narrow way in to the log.

pub mod store;
pub mod writer;

pub use store::{finish_commit, wall_clock, Store};
pub use writer::{Append, Committed, Reopen, Writer};

use std::time::Instant;
use tokio::sync::{mpsc, oneshot};
use vocab::Nation;

/// The way in to the log writer's queue for records the node makes itself (alert
/// acknowledgements, threat intelligence, products): cheap to clone, one per adapter.
#[derive(Debug, Clone)]
pub struct LogHandle {
    tx: mpsc::Sender<Append>,
}

impl LogHandle {
    pub fn new(tx: mpsc::Sender<Append>) -> LogHandle {
        LogHandle { tx }
    }

    /// The writer's queue itself, for callers that build their own `Append` (ingest's batches
    /// with derived copies).
    pub fn sender(&self) -> &mpsc::Sender<Append> {
        &self.tx
    }

    /// Appends one record of the node's own and returns its seq once durable.
    pub async fn append(
        &self,
        kind: wire::RecordKind,
        body: Vec<u8>,
        marking: Option<Vec<Nation>>,
    ) -> Result<u64, String> {
        if let Some(why) = writer::too_large(body.len()) {
            return Err(why);
        }
        let (reply, rx) = oneshot::channel();
        let append = Append { kind, body, arrived: Instant::now(), reply: Some(reply), derived: Vec::new(), marking };
        if self.tx.send(append).await.is_err() {
            return Err("the node is shutting down".into());
        }
        match rx.await {
            Ok(r) => r,
            Err(_) => Err("the log writer stopped".into()),
        }
    }
}
