//! Each origin's durable, hash-chained, signed log of records.
//!
//! # The log format
//!
//! A record (`wire::Record`) is the unit of keeping and sharing; its identity is (origin, seq),
//! seq gap-free from 1. Its digest is SHA-256 over exactly the encoded bytes that are stored
//! and sent, its link hash is SHA-256(prev_hash ‖ marking hash ‖ digest), and record N carries
//! the link hash of record N−1 (`prev_hash`; 32 zero bytes for record 1), so the chain commits
//! to every record before it. A replica holds a `wire::Withheld` stub (prev_hash, marking and
//! digest) in place of a record it may not hold or was not sent; the chain verifies across it
//! all the same. A stub whose marking names the holder is owed: when the record arrives by a
//! path that can carry it, it is kept as a *fill* (per origin, `fills.dat`, the same frames)
//! and reads return it in the stub's place. The origin signs checkpoints
//! (`wire::Checkpoint`: "my chain up to seq has head hash H") with Ed25519; a record counts as
//! accepted only once a verified checkpoint covers it. Bytes are never re-serialised to verify:
//! hashes and signatures are over the stored bytes themselves.
//!
//! On disk a log is one directory with one sub-directory per origin (`USA/`, `JPN/`, …), so a
//! node keeps its own chain and its replicas of partners' chains side by side. Each origin's
//! records live in segment files named by their first sequence number
//! (`00000000000000000001.seg`), rolled at [`MAX_SEGMENT_BYTES`]. A segment is a sequence of
//! frames:
//!
//! ```text
//! u32 LE payload length | u32 LE CRC-32C of (type byte ‖ payload) | u8 type | payload
//! type 1: an encoded Record    type 2: an encoded SignedCheckpoint
//! type 3: an encoded Withheld (a partner's record this node may not hold)
//! ```
//!
//! The writer appends the records of many requests, then one checkpoint over them, then syncs
//! once (group commit); requests are acknowledged only after the sync. A crash can therefore
//! leave at most a torn tail: frames after the last whole checkpoint, which no one was told
//! about. Opening a log cuts that tail off (zeroes it in place, keeping a copy as
//! `<segment>.torn-<offset>`); anything wrong *before* the last checkpoint is corruption, and
//! opening refuses with the first bad frame named, as `audit` does offline.
//!
//! A commit has three steps (`LogStore::commit_start`, `PendingSync::run`,
//! `LogStore::commit_finish`): the frames are written under the store's lock, synced without
//! it (one sync of an origin at a time; a failed sync fails the store, and no later sync of
//! that origin counts), and only then published to readers and heads. Syncs finishing out of
//! order are safe: a sync covers every earlier write to its file, and a roll syncs the full
//! segment before the next is created. `reader_ahead` reads what is written before it is
//! durable, for work that may start early but lets nothing out before the sync.
//!
//! The last segment is allocated ahead: zeros follow its frames (64 KiB to 1 MiB), so that a
//! commit overwrites bytes the file has and its sync flushes no change of size. No frame is all
//! zeros, so zeros from a frame boundary to the end of a segment are free space; a segment that
//! rolls is trimmed to its frames.
//!
//! The modules: `chain` (the sans-IO state machine that seals and verifies records and
//! checkpoints), `frame` (the frame codec), `store` (the `LogStore` trait and the segment-file
//! store), `audit` (offline verification of a directory), `keys` (key files).

pub mod audit;
pub mod chain;
pub mod contract;
pub mod frame;
pub mod keys;
pub mod store;

pub use chain::{Chain, ChainError, Proven, Sealed};
pub use store::{
    EndsReader, Entry, FileStore, LogEnd, LogStore, PendingSync, ReadPlan, Reader, StoreError, StoredRecord, Synced,
};

/// Segments roll at this size: small enough to copy and verify piecewise, large enough that a
/// day of one nation's sensor traffic is a few hundred files.
pub const MAX_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Largest frame payload: a record holds one ingest batch (at most 16 MiB of measurements);
/// anything larger is corruption, not data, and is never allocated.
pub const MAX_FRAME_BYTES: u32 = 16 * 1024 * 1024 + 4096;
/// Largest record body the node's own writer seals: a frame's payload less room for the
/// record's header (origin, seq, times, marking, previous hash). Anything larger is refused
/// before it reaches the writer, with the sizes named.
pub const MAX_RECORD_BODY_BYTES: usize = 16 * 1024 * 1024;
/// A group commit stops taking records once their bodies reach this, so that the records
/// between two checkpoints never exceed it by more than one record (a partner's batch must
/// hold the rest of a group: the federation's message limit derives from it).
pub const MAX_GROUP_BYTES: usize = 4 * 1024 * 1024;
/// Length of a record hash (SHA-256).
pub const HASH_LEN: usize = 32;

pub type Hash = [u8; HASH_LEN];

/// SHA-256 of a record's encoded bytes: what a `Withheld` stub reveals of it.
pub fn record_digest(bytes: &[u8]) -> Hash {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// SHA-256 of a marking: the `releasable_to` codes joined by "," in their order.
pub fn marking_hash(releasable_to: &[String]) -> Hash {
    use sha2::Digest;
    sha2::Sha256::digest(releasable_to.join(",").as_bytes()).into()
}

/// A record's link hash, which the next record carries as `prev_hash`:
/// SHA-256(prev_hash ‖ marking hash ‖ digest). Committing to the previous link and the marking
/// outside the digest lets a `Withheld` stub (prev hash, marking, digest; no content) carry the
/// chain across a record its holder may not see — with a marking no relay can misstate —
/// while every record that is sent still pins everything before it.
pub fn link_hash(prev: &[u8], releasable_to: &[String], digest: &Hash) -> Hash {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(prev);
    h.update(marking_hash(releasable_to));
    h.update(digest);
    h.finalize().into()
}
