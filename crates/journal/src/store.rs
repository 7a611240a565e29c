//! The node's log store as the node's threads share it, and the node's clock.

use ledger::LogStore;
use std::sync::{Arc, Mutex};
use vocab::UtcNanos;

/// The node's log, shared by the writer, readers and federation (locked only to plan reads).
pub type Store = Arc<Mutex<Box<dyn LogStore>>>;

/// Runs a `commit_start`'s sync without the store's lock, then takes the lock again to publish
/// it (`LogStore::commit_finish`): what was written is durable and visible when this returns.
pub fn finish_commit(store: &Store, pending: Option<ledger::PendingSync>) -> Result<(), ledger::StoreError> {
    let Some(pending) = pending else { return Ok(()) };
    let synced = pending.run();
    store.lock().map_err(|_| ledger::StoreError::Failed("store lock poisoned".into()))?.commit_finish(synced)
}

/// The node's clock: the only place it is read.
pub fn wall_clock() -> UtcNanos {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    UtcNanos::from_nanos(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}
