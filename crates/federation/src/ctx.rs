//! What a federation's tasks share with the node (`Ctx`), the link's timing and window limits,
//! and how a link runs its blocking work (`blocking`).

use crate::state::Fed;
use journal::Committed;
use std::sync::Arc;
use tokio::sync::watch;

/// Entries per batch (before the byte budget `protocol::MAX_BATCH_BYTES`).
pub const BATCH_RECORDS: usize = 1024;
/// Entries a sender may have in flight per origin before it waits for an acknowledgement:
/// enough to keep a catch-up at several times the live rate over a long-haul round trip (at
/// 16,384 one over 100 ms each way was held to about 77,000 records/s; docs/BENCHMARKS.md).
pub const WINDOW_RECORDS: u64 = 65_536;
/// Bytes of batches a sender may have unacknowledged on one subscription (what it read,
/// queued, encoded and sent that the partner has not yet made durable): the bound on the
/// memory a partner that stops reading can hold, at most this plus one batch. Enough for a
/// catch-up at 40 MB/s over 100 ms each way.
pub const MAX_UNACKED_BYTES: usize = 8 * 1024 * 1024;
/// A subscription with batches unacknowledged and no acknowledgement for this long is ended:
/// the partner is not reading (an honest one acknowledges each batch once it is durable, in
/// milliseconds).
pub const ACK_LIMIT: std::time::Duration = SILENCE_LIMIT;
/// Heartbeat period, both for lag measurement and liveness.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(1);
/// A link with no message (batch or heartbeat) for this long is dead.
pub const SILENCE_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What the link tasks share with the node.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub fed: Arc<Fed>,
    pub store: journal::Store,
    /// Bumped after every commit to the log (own or replica), and after each of the node's
    /// own groups is written, before its sync: senders wake on it.
    pub version: Arc<watch::Sender<u64>>,
    /// The node's own last durable seq (the log writer's).
    pub head: Arc<std::sync::atomic::AtomicU64>,
    pub stop: watch::Receiver<bool>,
    pub to_fusion: std::sync::mpsc::SyncSender<Committed>,
    pub metrics: Arc<telemetry::Metrics>,
}

/// Runs blocking work of a link (a read of the log, a sync) on the calling worker thread,
/// which hands its other tasks to another (`block_in_place`): the stream's next step does not
/// wait for a blocking-pool thread to wake and then for a worker to wake again, two thread
/// wake-ups that each cost milliseconds at the tail on a busy machine. On a runtime of one
/// thread, where that is not possible, it runs on the blocking pool. A panic in `f` is an
/// error, as it is from the blocking pool: the link drops and redials rather than its task
/// ending for good.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    if tokio::runtime::Handle::current().runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
        tokio::task::block_in_place(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)))
            .map_err(|_| "the link's blocking work panicked".to_string())
    } else {
        tokio::task::spawn_blocking(f).await.map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    /// Blocking work returns its value, and a panic in it is an error, on either kind of runtime.
    #[test]
    fn blocking_work_returns_or_fails_without_ending_the_task() {
        let multi = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
        let single = tokio::runtime::Builder::new_current_thread().build().unwrap();
        for rt in [multi, single] {
            rt.block_on(async {
                assert_eq!(super::blocking(|| 6 * 7).await, Ok(42));
                let failed = super::blocking(|| -> u8 { panic!("a fault in the apply") }).await;
                assert!(failed.is_err());
                assert_eq!(super::blocking(|| "after").await, Ok("after"));
            });
        }
    }
}
