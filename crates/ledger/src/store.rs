//! The `LogStore` trait and its embedded default, `FileStore`: one directory, one
//! sub-directory per origin, segment files of frames, group commit (see the crate
//! documentation for the layout and the recovery rule).

use crate::chain::{Chain, ChainError, Proven};
use crate::frame::{self, FrameType, HEADER_BYTES};
use crate::{Hash, MAX_SEGMENT_BYTES};
use ed25519_dalek::VerifyingKey;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use vocab::Nation;

/// What one pass over a segment's bytes found.
#[derive(Debug)]
pub(crate) struct Scan {
    /// Offset just past the last checkpoint, and the chain there.
    pub good_end: usize,
    /// Where the segment's zero padding (space the writer allocated ahead) begins: the
    /// data's length, or `data.len()` when the segment has none.
    pub end: usize,
    pub good_chain: Chain,
    /// The first frame that failed, and why.
    pub failure: Option<(usize, String)>,
    /// (seq, offset) of every `INDEX_STRIDE`th record.
    pub index: Vec<(u64, u64)>,
    pub last_checkpoint: Option<Vec<u8>>,
    pub records: u64,
    pub checkpoints: u64,
    /// Digests of the stubs read whose marking names `owner` (all stubs when no owner).
    pub stubs: Vec<(u64, Hash)>,
}

/// Verifies a segment's frames against `chain` (advanced as it goes), stopping at the first
/// bad frame.
pub(crate) fn scan_segment(
    data: &[u8],
    chain: &mut Chain,
    trusted: Option<&VerifyingKey>,
    owner: Option<Nation>,
) -> Scan {
    let mut scan = Scan {
        stubs: Vec::new(),
        good_end: 0,
        end: data.len(),
        good_chain: chain.clone(),
        failure: None,
        index: Vec::new(),
        last_checkpoint: None,
        records: 0,
        checkpoints: 0,
    };
    let mut offset = 0usize;
    while offset < data.len() {
        let (kind, payload, n) = match frame::decode(&data[offset..]) {
            Ok(f) => f,
            // No frame is all zeros (its CRC covers the type byte, never 0), so zeros to the
            // end are the writer's preallocated space, not a fault.
            Err(_) if data[offset..].iter().all(|&b| b == 0) => {
                scan.end = offset;
                break;
            }
            Err(e) => {
                scan.failure = Some((offset, e.to_string()));
                break;
            }
        };
        let checked = match kind {
            FrameType::Record => chain.verify_next(payload).map(|_| {
                scan.records += 1;
                if (chain.seq() - 1).is_multiple_of(INDEX_STRIDE) {
                    scan.index.push((chain.seq(), offset as u64));
                }
            }),
            FrameType::Withheld => chain.verify_withheld(payload).map(|stub| {
                if owner.is_none_or(|o| crate::chain::owed_to(o, &stub)) {
                    if let Ok(d) = <Hash>::try_from(stub.digest.as_slice()) {
                        scan.stubs.push((stub.seq, d));
                    }
                }
                scan.records += 1;
                if (chain.seq() - 1).is_multiple_of(INDEX_STRIDE) {
                    scan.index.push((chain.seq(), offset as u64));
                }
            }),
            FrameType::Checkpoint => chain.verify_checkpoint(payload, trusted).map(|_| {
                scan.checkpoints += 1;
                scan.good_end = offset + n;
                scan.good_chain = chain.clone();
                scan.last_checkpoint = Some(payload.to_vec());
            }),
        };
        if let Err(e) = checked {
            scan.failure = Some((offset, e.to_string()));
            break;
        }
        offset += n;
    }
    scan
}

/// The offset of the first whole, checksummed checkpoint frame at or after `from`, found by
/// trying every offset (frame boundaries are lost after a fault).
fn checkpoint_frame_after(data: &[u8], from: usize) -> Option<usize> {
    (from..data.len().saturating_sub(HEADER_BYTES)).find(|&at| {
        data[at + 8] == FrameType::Checkpoint as u8
            && matches!(frame::decode(&data[at..]), Ok((FrameType::Checkpoint, payload, _))
                if <wire::SignedCheckpoint as prost::Message>::decode(payload).is_ok())
    })
}

/// One in this many records has an entry in the in-memory index; a read scans at most this
/// many frames forward. 16 bytes per 256 records keeps the index of a year of traffic small.
const INDEX_STRIDE: u64 = 256;
/// The writer keeps this much zeroed space allocated past a segment's data, so that a commit
/// overwrites bytes the file already has: its sync then flushes only data, not the file's size
/// through the file system's journal (half the sync's time here, and no wait behind another
/// file's journal commit). Extending costs about 1 ms per MiB, once per MiB of records.
/// A young segment allocates as much again as it holds, from `PREALLOC_MIN_BYTES`: a log that
/// stays small (a replica of a quiet partner, a test) does not pay for a MiB of zeros.
const PREALLOC_BYTES: u64 = 1024 * 1024;
const PREALLOC_MIN_BYTES: u64 = 64 * 1024;
/// Zeros to extend a segment with, a block at a time.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
/// Most records one `read` returns: bounds the memory of a range query.
pub const MAX_READ_RECORDS: usize = 10_000;
const LOCK_FILE: &str = "LOCK";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to {what} {path}: {source}")]
    Io { what: &'static str, path: PathBuf, source: io::Error },
    #[error("failed to open log {0}: another process holds it")]
    Locked(PathBuf),
    #[error("log is corrupt: {path} at byte {offset} (origin {origin}, after seq {seq}): {why}")]
    Corrupt { path: PathBuf, offset: u64, origin: Nation, seq: u64, why: String },
    #[error("failed to append to {origin}'s log: {source}")]
    Rejected { origin: Nation, source: ChainError },
    #[error("failed to fill {origin}/{seq}: {why}")]
    NotOwed { origin: Nation, seq: u64, why: String },
    #[error("failed to append: the log failed earlier ({0}) and accepts nothing until restarted")]
    Failed(String),
    /// Another process writes this log (a remote store's writer that opened after this one
    /// fenced it off): this one must stop, and must not take the log back by reopening it.
    #[error("failed to append: {0}")]
    Superseded(String),
    /// A remote store (JetStream) could not be reached or refused an operation.
    #[error("log store unavailable: {0}")]
    Unavailable(String),
    /// A remote store's stream holds what a log cannot (a gap, a record that does not chain).
    #[error("log is corrupt: {origin}'s stream {stream} at seq {seq}: {why}")]
    CorruptStream { stream: String, origin: Nation, seq: u64, why: String },
    /// The remote store is not configured as trilink requires (durability, replicas, sizes).
    #[error("log store refused: {0}")]
    Misconfigured(String),
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io { what, path: path.to_path_buf(), source }
}

/// A record as stored: its number and exact bytes (hash and verify these, never a re-encoding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub seq: u64,
    pub bytes: Vec<u8>,
}

/// One frame of an origin's log as read back for sharing: what a receiver needs to verify the
/// chain from a cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Record(StoredRecord),
    /// A `wire::Withheld` stub standing for record `seq`.
    Withheld {
        seq: u64,
        bytes: Vec<u8>,
    },
    /// A `wire::SignedCheckpoint` over the chain up to `seq`.
    Checkpoint {
        seq: u64,
        bytes: Vec<u8>,
    },
}

impl Entry {
    /// The seq a record or stub holds, or the seq a checkpoint covers.
    pub fn seq(&self) -> u64 {
        match self {
            Entry::Record(r) => r.seq,
            Entry::Withheld { seq, .. } | Entry::Checkpoint { seq, .. } => *seq,
        }
    }
}

/// What recovery found when it opened a log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Bytes cut from segment tails (kept aside, zeroed in place): frames after the last
    /// checkpoint, never acknowledged. Allocated space (zeros) is not counted.
    pub torn_bytes_cut: u64,
    /// Records in that cut tail that were whole but not yet covered by a checkpoint.
    pub uncovered_records_cut: u64,
    /// Fill frames cut from a `fills.dat` (torn, or not matching an owed stub): the records are
    /// owed again and fetched again.
    pub fills_cut: u64,
    /// Records after the last checkpoint that a store which cannot cut its tail (JetStream)
    /// kept: whole, chained, never acknowledged; the next checkpoint covers them.
    pub uncovered_records_kept: u64,
}

/// Where one origin's log ends in a store another process writes, as its `EndsReader` read it.
#[derive(Debug, Clone)]
pub struct LogEnd {
    pub origin: Nation,
    /// The seq the last checkpoint covers.
    pub covers: u64,
    /// The store's own position of that end (a JetStream stream sequence).
    pub position: u64,
    /// The last signed checkpoint's bytes.
    pub checkpoint: Vec<u8>,
}

/// Reads the ends of a log another process writes, without holding the store
/// (`LogStore::ends_reader`).
pub trait EndsReader: Send {
    fn read(&self) -> Result<Vec<LogEnd>, StoreError>;
}

/// A read worked out under the store's lock and run without it (`LogStore::reader`): readers
/// never hold the lock across I/O.
pub trait Reader: Send {
    /// The planned records (stubs skipped; filled stubs read as their record).
    fn records(&self) -> Result<Vec<StoredRecord>, StoreError>;
    /// The planned entries, ending on a checkpoint that covers them all (see
    /// `LogStore::read_entries`).
    fn entries(&self) -> Result<Vec<Entry>, StoreError>;
}

/// Where an origin's records are kept. `append_*` buffer; `commit` makes everything buffered
/// durable at once (group commit); only committed, checkpointed records are read back.
pub trait LogStore: Send + std::fmt::Debug {
    /// Each origin held, with its chain head (`covered()` is the last durable checkpoint).
    fn heads(&self) -> Vec<Chain>;
    /// Buffers `origin`'s next record; it must extend the chain (checked).
    fn append_record(&mut self, origin: Nation, bytes: &[u8]) -> Result<(), StoreError>;
    /// Buffers the `Withheld` stub of `origin`'s next record (a replica's stand-in for a record
    /// this node may not hold); it must extend the chain (checked).
    fn append_withheld(&mut self, origin: Nation, bytes: &[u8]) -> Result<(), StoreError>;
    /// Buffers the full record for a stub this store's owner is owed (its marking names the
    /// owner): the record's digest must equal the stub's. Reads return it in the stub's place.
    fn append_fill(&mut self, origin: Nation, bytes: &[u8]) -> Result<u64, StoreError>;
    /// Seqs of `origin` held as stubs whose record the owner is owed (`chain::owed_to`: the
    /// marking names it, or the origin is its own), not yet filled.
    fn owed(&self, origin: Nation) -> Vec<u64>;
    /// Forgets that `origin`/`seq` is owed: its origin itself withheld it (by policy), so no
    /// path will bring it. In memory only: after a restart it is asked for once more.
    fn disown(&mut self, origin: Nation, seq: u64);
    /// Buffers a signed checkpoint over `origin`'s current head (checked against `trusted`).
    fn append_checkpoint(
        &mut self,
        origin: Nation,
        bytes: &[u8],
        trusted: Option<&VerifyingKey>,
    ) -> Result<(), StoreError>;
    /// `append_checkpoint` for a checkpoint whose signature the caller has already verified
    /// (or just made): the store checks that `proof` is of these bytes, over its own head, by
    /// `trusted` where given, and spends no second signature verification on it.
    fn append_proven_checkpoint(
        &mut self,
        origin: Nation,
        bytes: &[u8],
        proof: &Proven,
        trusted: Option<&VerifyingKey>,
    ) -> Result<(), StoreError>;
    /// Makes everything buffered durable.
    fn commit(&mut self) -> Result<(), StoreError>;

    /// `commit` in three steps, so that nobody waits on the store through a sync: this writes
    /// what is buffered and returns the sync, to run after the caller lets go of the store
    /// (`PendingSync::run`); `commit_finish` then makes what it synced visible to readers and
    /// heads. Until then it is neither: a caller acknowledges only after `commit_finish`. A
    /// store whose commit is not a local sync commits in full here and returns nothing to run.
    fn commit_start(&mut self) -> Result<Option<PendingSync>, StoreError> {
        self.commit().map(|()| None)
    }

    /// `origin`'s chain over everything appended, written or only buffered: what its next
    /// append must extend. It is ahead of its entry in `heads` only while a `commit_start`'s
    /// sync runs.
    fn tail(&self, origin: Nation) -> Option<Chain> {
        self.heads().into_iter().find(|c| c.origin() == origin)
    }

    /// Why the store accepts no more appends, once a write, sync or remote commit failed; then
    /// every later call fails the same way. `None` while it works. (A store that cannot say
    /// keeps the default.)
    fn failure(&self) -> Option<StoreError> {
        None
    }

    /// Publishes what a `commit_start`'s sync made durable, or fails the store if it failed.
    fn commit_finish(&mut self, synced: Synced) -> Result<(), StoreError> {
        let _ = synced;
        Ok(())
    }
    /// Up to `max` (capped at `MAX_READ_RECORDS`) committed, covered records of `origin` from `from_seq`.
    fn read(&self, origin: Nation, from_seq: u64, max: usize) -> Result<Vec<StoredRecord>, StoreError>;
    /// Committed entries of `origin` from `from_seq` — records, stubs and the checkpoints among
    /// them — ending with a checkpoint, so that a receiver holding `from_seq - 1` can verify all
    /// of them. About `max` records (capped at `MAX_READ_RECORDS`); more only to reach the next
    /// checkpoint.
    fn read_entries(&self, origin: Nation, from_seq: u64, max: usize) -> Result<Vec<Entry>, StoreError>;

    /// The latest committed signed checkpoint of `origin`.
    fn last_checkpoint(&self, origin: Nation) -> Option<Vec<u8>>;

    /// Reads the heads again where another process writes the log (a JetStream follower);
    /// a store that is its own writer has nothing to do. `ends_reader` and `apply_ends` do the
    /// same in two steps, so that the read need not hold the store.
    fn refresh(&mut self) -> Result<(), StoreError> {
        match self.ends_reader() {
            Some(reader) => {
                let ends = reader.read()?;
                self.apply_ends(ends)
            }
            None => Ok(()),
        }
    }

    /// Where another process writes the log: a reader of each origin's end (a network round
    /// trip, run without holding the store), whose answer `apply_ends` takes. A store that is
    /// its own writer has none.
    fn ends_reader(&self) -> Option<Box<dyn EndsReader>> {
        None
    }

    /// Moves the heads to ends read by this store's `ends_reader`.
    fn apply_ends(&mut self, ends: Vec<LogEnd>) -> Result<(), StoreError> {
        let _ = ends;
        Ok(())
    }

    /// Plans `read(origin, from_seq, max)` (or, through `Reader::entries`, `read_entries` ending
    /// at the first checkpoint after `max` records or `max_bytes` bytes of entries) to run
    /// after the caller lets go of the store.
    fn reader(&self, origin: Nation, from_seq: u64, max: usize, max_bytes: usize) -> Box<dyn Reader>;

    /// `reader`, reaching past what is durable to everything written (whole, checkpointed
    /// groups whose sync may still be running): for work that can start before the sync ends
    /// but must not let anything out before it does. Where nothing is written ahead of being
    /// durable, the same as `reader`.
    fn reader_ahead(&self, origin: Nation, from_seq: u64, max: usize, max_bytes: usize) -> Box<dyn Reader> {
        self.reader(origin, from_seq, max, max_bytes)
    }
}

/// The sync of a `commit_start`, to run without holding the store.
#[derive(Debug)]
pub struct PendingSync {
    items: Vec<SyncItem>,
}

#[derive(Debug)]
struct SyncItem {
    /// The tail segment, written through another handle of the same file: a sync of it
    /// covers every write made to the file before it.
    file: File,
    path: PathBuf,
    lock: Arc<Mutex<Option<String>>>,
    publish: Publish,
}

/// What a sync made durable: how far a segment is, and the chain and checkpoint there.
#[derive(Debug)]
struct Publish {
    origin: Nation,
    segment: usize,
    len: u64,
    chain: Chain,
    checkpoint: Option<Vec<u8>>,
}

/// The outcome of `PendingSync::run`, for `LogStore::commit_finish`.
#[derive(Debug)]
pub struct Synced {
    done: Vec<Publish>,
    error: Option<String>,
}

impl PendingSync {
    /// Syncs each origin's tail, one sync of an origin at a time (so a failure is seen by
    /// every later one), different origins' at once.
    pub fn run(self) -> Synced {
        let mut done = Vec::with_capacity(self.items.len());
        for item in self.items {
            let Ok(mut failed) = item.lock.lock() else {
                return Synced { done, error: Some(format!("sync of {} poisoned", item.publish.origin)) };
            };
            if let Some(f) = failed.as_ref() {
                return Synced { done, error: Some(f.clone()) };
            }
            if let Err(e) = item.file.sync_data() {
                let why = io_err("sync", &item.path)(e).to_string();
                *failed = Some(why.clone());
                return Synced { done, error: Some(why) };
            }
            done.push(item.publish);
        }
        Synced { done, error: None }
    }
}

#[derive(Debug)]
struct Segment {
    first_seq: u64,
    path: PathBuf,
    /// Durable length in bytes.
    len: u64,
}

#[derive(Debug)]
struct OriginLog {
    dir: PathBuf,
    /// Chain over everything appended (buffered included).
    chain: Chain,
    /// Chain as of the last durable checkpoint: what readers see.
    durable: Chain,
    segments: Vec<Segment>,
    /// (seq, segment index, offset) every `INDEX_STRIDE` records, including the buffered ones.
    index: Vec<(u64, usize, u64)>,
    file: Option<File>,
    /// Frames appended but not yet written.
    buf: Vec<u8>,
    /// The last segment file's length on disk: its data, then zeros allocated ahead.
    tail_alloc: u64,
    /// Bytes of the last segment written (its `len` is what is durable and published): the
    /// next write goes here.
    written: u64,
    /// The seq of the last record written.
    written_seq: u64,
    /// Held through a sync of this origin's tail; holds the first sync failure, after which
    /// no later sync of it counts (the kernel reports a lost write back once).
    sync_lock: Arc<Mutex<Option<String>>>,
    last_checkpoint: Option<Vec<u8>>,
    pending_checkpoint: Option<Vec<u8>>,
    /// Chain state at the last buffered checkpoint: what a commit makes durable.
    checkpointed: Chain,
    /// Stubs naming the owner without their record yet: seq → the stub's digest.
    owed: BTreeMap<u64, Hash>,
    /// Records filled into stubs: seq → offset of its frame in `fills.dat` (durable).
    fills: BTreeMap<u64, u64>,
    fills_len: u64,
    fills_buf: Vec<u8>,
    pending_fills: Vec<(u64, u64)>,
}

/// The embedded store: a directory of segment files per origin.
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    /// The nation whose node keeps this log: stubs naming it are owed (see `append_fill`).
    owner: Option<Nation>,
    origins: BTreeMap<Nation, OriginLog>,
    failed: Option<String>,
    _lock: File,
}

/// A read worked out under the store's lock — which segments, from which offset, up to which
/// seq — and run without it, so that readers never hold the lock across file I/O.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    origin: Nation,
    /// (path, durable length) of the segments to read, the first from `offset`.
    segments: Vec<(PathBuf, u64)>,
    offset: u64,
    /// Seq of the first record at `offset`.
    seq: u64,
    from_seq: u64,
    last: u64,
    max: usize,
    /// With checkpoints: stop at the first checkpoint after this many bytes of entries.
    max_bytes: usize,
    /// Filled stubs in the planned range: seq → offset in `fills_path`.
    fills: BTreeMap<u64, u64>,
    fills_path: PathBuf,
}

impl FileStore {
    /// Plans a read of up to `max` (capped at `MAX_READ_RECORDS`) committed, covered records of
    /// `origin` from `from_seq`. Cheap: no I/O.
    pub fn plan_read(&self, origin: Nation, from_seq: u64, max: usize) -> ReadPlan {
        self.plan_read_to(origin, from_seq, max, false)
    }

    /// `plan_read`, up to what is durable or (`ahead`) to everything written.
    fn plan_read_to(&self, origin: Nation, from_seq: u64, max: usize, ahead: bool) -> ReadPlan {
        let mut plan = ReadPlan {
            origin,
            segments: Vec::new(),
            offset: 0,
            seq: 0,
            from_seq: from_seq.max(1),
            last: 0,
            max: max.min(MAX_READ_RECORDS),
            max_bytes: usize::MAX,
            fills: BTreeMap::new(),
            fills_path: PathBuf::new(),
        };
        let Some(log) = self.origins.get(&origin) else { return plan };
        // Writes are whole groups, each ending on its checkpoint: all that is written is covered.
        plan.last = if ahead { log.written_seq } else { log.durable.covered().min(log.durable.seq()) };
        if plan.from_seq > plan.last || plan.max == 0 {
            return plan;
        }
        plan.fills = log.fills.range(plan.from_seq..=plan.last).map(|(&s, &o)| (s, o)).collect();
        plan.fills_path = log.dir.join(FILLS_FILE);
        if let Some((seg, offset, seq)) = log.locate(plan.from_seq) {
            plan.segments = log.segments[seg..].iter().map(|s| (s.path.clone(), s.len)).collect();
            if let Some(tail) = plan.segments.last_mut().filter(|_| ahead) {
                tail.1 = tail.1.max(log.written);
            }
            plan.offset = offset;
            plan.seq = seq;
        }
        plan
    }
}

impl FileStore {
    /// Plans `read_entries` (ending at the first checkpoint after `max` records or `max_bytes`)
    /// under the caller's lock, to run without it (`ReadPlan::run_entries`).
    pub fn plan_entries(&self, origin: Nation, from_seq: u64, max: usize, max_bytes: usize) -> ReadPlan {
        self.plan_read(origin, from_seq, max).with_max_bytes(max_bytes)
    }
}

impl ReadPlan {
    /// Reads the planned records (stubs are skipped). Segments are append-only and only their
    /// durable prefix is read, so running after the store has moved on still gives exactly the
    /// planned records.
    pub fn run(&self) -> Result<Vec<StoredRecord>, StoreError> {
        Ok(self
            .scan(false)?
            .into_iter()
            .filter_map(|e| match e {
                Entry::Record(r) => Some(r),
                _ => None,
            })
            .collect())
    }

    /// Ends an entry read at the first checkpoint after `n` bytes of entries.
    pub fn with_max_bytes(mut self, n: usize) -> ReadPlan {
        self.max_bytes = n;
        self
    }

    /// Reads the planned entries, checkpoints included, through the first checkpoint at or
    /// after the planned number of records (see `LogStore::read_entries`).
    pub fn run_entries(&self) -> Result<Vec<Entry>, StoreError> {
        self.scan(true)
    }

    fn scan(&self, with_checkpoints: bool) -> Result<Vec<Entry>, StoreError> {
        let (origin, from_seq, last, max) = (self.origin, self.from_seq, self.last, self.max);
        let (mut offset, mut seq) = (self.offset, self.seq);
        let mut out = Vec::new();
        // Records and stubs read (checkpoints are not counted against `max`).
        let mut count = 0usize;
        let mut bytes_read = 0usize;
        // With checkpoints, a read stops only just after one, so that it verifies on its own.
        let mut done = false;
        // One frame buffer for the whole read: header, then payload.
        let mut frame_buf = Vec::new();
        for (path, len) in &self.segments {
            if done {
                break;
            }
            let mut f = File::open(path).map_err(io_err("open", path))?;
            f.seek(SeekFrom::Start(offset)).map_err(io_err("seek", path))?;
            let mut r = io::BufReader::with_capacity(256 * 1024, f.take(len - offset));
            while !done {
                frame_buf.resize(HEADER_BYTES, 0);
                match r.read_exact(&mut frame_buf) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(io_err("read", path)(e)),
                }
                let n = u32::from_le_bytes([frame_buf[0], frame_buf[1], frame_buf[2], frame_buf[3]]) as usize;
                let corrupt = |why: String| StoreError::Corrupt { path: path.clone(), offset, origin, seq, why };
                if n > crate::MAX_FRAME_BYTES as usize {
                    return Err(corrupt("frame too long".into()));
                }
                frame_buf.resize(HEADER_BYTES + n, 0);
                r.read_exact(&mut frame_buf[HEADER_BYTES..]).map_err(io_err("read", path))?;
                let (kind, body, _) = frame::decode(&frame_buf).map_err(|e| corrupt(e.to_string()))?;
                offset += frame_buf.len() as u64;
                match kind {
                    FrameType::Record | FrameType::Withheld => {
                        if seq > last {
                            done = true;
                            break;
                        }
                        if seq >= from_seq {
                            let entry = match (kind, self.fills.get(&seq)) {
                                (FrameType::Record, _) => Entry::Record(StoredRecord { seq, bytes: body.to_vec() }),
                                (_, Some(&at)) => Entry::Record(StoredRecord {
                                    seq,
                                    bytes: read_fill(&self.fills_path, at, origin, seq)?,
                                }),
                                _ => Entry::Withheld { seq, bytes: body.to_vec() },
                            };
                            bytes_read += match &entry {
                                Entry::Record(r) => r.bytes.len(),
                                Entry::Withheld { bytes, .. } | Entry::Checkpoint { bytes, .. } => bytes.len(),
                            };
                            out.push(entry);
                            count += 1;
                        }
                        seq += 1;
                        if !with_checkpoints && (count >= max || seq > last) {
                            done = true;
                        }
                    }
                    FrameType::Checkpoint => {
                        if with_checkpoints && count > 0 {
                            out.push(Entry::Checkpoint { seq: seq - 1, bytes: body.to_vec() });
                            if count >= max || bytes_read >= self.max_bytes || seq > last {
                                done = true;
                            }
                        }
                    }
                }
            }
            offset = 0;
        }
        if with_checkpoints {
            // Never end on records no checkpoint in hand covers.
            while out.last().is_some_and(|e| !matches!(e, Entry::Checkpoint { .. })) {
                out.pop();
            }
        }
        Ok(out)
    }
}

/// Checks that `bytes` is the record an owed stub (seq → digest) stands for and takes the stub
/// off `owed`; returns its seq. Every store fills this way.
pub fn take_owed(owed: &mut BTreeMap<u64, Hash>, origin: Nation, bytes: &[u8]) -> Result<u64, StoreError> {
    let not_owed = |seq: u64, why: &str| StoreError::NotOwed { origin, seq, why: why.to_string() };
    let record = <wire::Record as prost::Message>::decode(bytes).map_err(|e| not_owed(0, &e.to_string()))?;
    let seq = record.seq;
    let Some(digest) = owed.get(&seq) else { return Err(not_owed(seq, "no stub owed at that seq")) };
    if *digest != crate::record_digest(bytes) {
        return Err(not_owed(seq, "the record's digest is not the stub's"));
    }
    owed.remove(&seq);
    Ok(seq)
}

/// Per origin, the records filled into owed stubs.
pub(crate) const FILLS_FILE: &str = "fills.dat";

/// The record of the fill frame at `at` in `path`.
fn read_fill(path: &Path, at: u64, origin: Nation, seq: u64) -> Result<Vec<u8>, StoreError> {
    let mut f = File::open(path).map_err(io_err("open", path))?;
    f.seek(SeekFrom::Start(at)).map_err(io_err("seek", path))?;
    let mut head = [0u8; HEADER_BYTES];
    f.read_exact(&mut head).map_err(io_err("read", path))?;
    let n = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let corrupt = |why: String| StoreError::Corrupt { path: path.to_path_buf(), offset: at, origin, seq, why };
    if n > crate::MAX_FRAME_BYTES {
        return Err(corrupt("fill frame too long".into()));
    }
    let mut buf = head.to_vec();
    buf.resize(HEADER_BYTES + n as usize, 0);
    f.read_exact(&mut buf[HEADER_BYTES..]).map_err(io_err("read", path))?;
    let (_, payload, _) = frame::decode(&buf).map_err(|e| corrupt(e.to_string()))?;
    Ok(payload.to_vec())
}

/// Reads a `fills.dat`: each whole frame whose record's digest matches a stub in `stubs`
/// (seq → digest), up to the first that does not. Returns (seq, offset) of the good ones and
/// the length they span.
pub(crate) fn scan_fills(data: &[u8], stubs: &BTreeMap<u64, Hash>) -> (Vec<(u64, u64)>, usize) {
    let mut good = Vec::new();
    let mut offset = 0;
    while offset < data.len() {
        let Ok((FrameType::Record, payload, n)) = frame::decode(&data[offset..]) else { break };
        let Ok(record) = <wire::Record as prost::Message>::decode(payload) else { break };
        if stubs.get(&record.seq) != Some(&crate::record_digest(payload)) {
            break;
        }
        good.push((record.seq, offset as u64));
        offset += n;
    }
    (good, offset)
}

/// The origin directories of a log (`USA/`, `JPN/`, …), sorted; other entries are ignored.
pub(crate) fn list_origins(dir: &Path) -> io::Result<Vec<(Nation, PathBuf)>> {
    let mut v: Vec<(Nation, PathBuf)> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| Nation::parse(&e.file_name().to_string_lossy()).ok().map(|n| (n, e.path())))
        .collect();
    v.sort();
    Ok(v)
}

/// An origin's segment files with their first seq, in order; other files (`*.torn-*`) are ignored.
pub(crate) fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut v: Vec<(u64, PathBuf)> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            Some((name.strip_suffix(".seg")?.parse::<u64>().ok()?, e.path()))
        })
        .collect();
    v.sort();
    Ok(v)
}

/// Writes zeros over `from..to` of `f`.
fn write_zeros(f: &File, from: u64, to: u64) -> io::Result<()> {
    let mut at = from;
    while at < to {
        let n = (to - at).min(ZEROS.len() as u64);
        f.write_all_at(&ZEROS[..n as usize], at)?;
        at += n;
    }
    Ok(())
}

fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.seg")
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("sync directory", dir))
}

impl FileStore {
    /// Opens (or creates) the log in `dir`, verifying every origin's chain and checkpoints
    /// (against `trusted` keys where given) and cutting any torn tail.
    pub fn open(dir: &Path, trusted: &BTreeMap<Nation, VerifyingKey>) -> Result<(FileStore, Recovery), StoreError> {
        FileStore::open_for(dir, trusted, None)
    }

    /// `open`, for the node of `owner`: stubs whose marking names it are owed and can be
    /// filled (`append_fill`).
    pub fn open_for(
        dir: &Path,
        trusted: &BTreeMap<Nation, VerifyingKey>,
        owner: Option<Nation>,
    ) -> Result<(FileStore, Recovery), StoreError> {
        fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err("open", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(StoreError::Locked(dir.to_path_buf())),
            Err(fs::TryLockError::Error(e)) => return Err(io_err("lock", &lock_path)(e)),
        }
        let mut recovery = Recovery::default();
        let mut origins = BTreeMap::new();
        for (origin, path) in list_origins(dir).map_err(io_err("list", dir))? {
            let log = OriginLog::recover(origin, &path, trusted.get(&origin), owner, &mut recovery)?;
            origins.insert(origin, log);
        }
        Ok((FileStore { dir: dir.to_path_buf(), owner, origins, failed: None, _lock: lock }, recovery))
    }

    fn origin_mut(&mut self, origin: Nation) -> Result<&mut OriginLog, StoreError> {
        if let Some(f) = &self.failed {
            return Err(StoreError::Failed(f.clone()));
        }
        if !self.origins.contains_key(&origin) {
            let path = self.dir.join(origin.as_str());
            fs::create_dir_all(&path).map_err(io_err("create", &path))?;
            sync_dir(&self.dir)?;
            self.origins.insert(origin, OriginLog::empty(origin, path));
        }
        Ok(self.origins.get_mut(&origin).expect("inserted above"))
    }
}

impl OriginLog {
    fn empty(origin: Nation, dir: PathBuf) -> OriginLog {
        OriginLog {
            dir,
            chain: Chain::new(origin),
            durable: Chain::new(origin),
            segments: Vec::new(),
            index: Vec::new(),
            file: None,
            buf: Vec::new(),
            tail_alloc: 0,
            written: 0,
            written_seq: 0,
            sync_lock: Arc::new(Mutex::new(None)),
            last_checkpoint: None,
            pending_checkpoint: None,
            checkpointed: Chain::new(origin),
            owed: BTreeMap::new(),
            fills: BTreeMap::new(),
            fills_len: 0,
            fills_buf: Vec::new(),
            pending_fills: Vec::new(),
        }
    }

    /// Reads every segment, verifying frames, the chain and the checkpoints; cuts frames after
    /// the last checkpoint of the last segment (a torn or unacknowledged tail).
    fn recover(
        origin: Nation,
        dir: &Path,
        trusted: Option<&VerifyingKey>,
        owner: Option<Nation>,
        recovery: &mut Recovery,
    ) -> Result<OriginLog, StoreError> {
        let mut log = OriginLog::empty(origin, dir.to_path_buf());
        let mut stubs: BTreeMap<u64, Hash> = BTreeMap::new();
        let names = list_segments(dir).map_err(io_err("list", dir))?;
        let last = names.len().saturating_sub(1);
        let mut chain = Chain::new(origin);
        for (i, (first_seq, path)) in names.iter().enumerate() {
            let data = fs::read(path).map_err(io_err("read", path))?;
            let corrupt = |offset: usize, seq: u64, why: String| StoreError::Corrupt {
                path: path.clone(),
                offset: offset as u64,
                origin,
                seq,
                why,
            };
            if *first_seq != chain.seq() + 1 {
                return Err(corrupt(0, chain.seq(), format!("segment starts at seq {first_seq}")));
            }
            // The stubs naming the owner (all stubs when opened without one), to check fills.
            let scan = scan_segment(&data, &mut chain, trusted, owner);
            stubs.extend(scan.stubs.iter().copied());
            if scan.last_checkpoint.is_some() {
                log.last_checkpoint = scan.last_checkpoint.clone();
            }
            let (good_end, end, good_chain, failure) = (scan.good_end, scan.end, scan.good_chain, scan.failure);
            let mut index_here: Vec<_> =
                scan.index.iter().map(|&(seq, offset)| (seq, log.segments.len(), offset)).collect();
            if i != last {
                if let Some((offset, why)) = failure {
                    return Err(corrupt(offset, chain.seq(), why));
                }
                // Zero padding past `end` is left by a crash between a roll and the old
                // tail's trim; reads stop at `len`, so it is harmless.
                if good_end != end {
                    return Err(corrupt(
                        good_end,
                        good_chain.seq(),
                        "records after the segment's last checkpoint".into(),
                    ));
                }
            } else if good_end != end {
                // Whatever follows the last checkpoint was never acknowledged — unless a
                // whole checkpoint frame lies beyond the fault, which means the fault is
                // damage inside acknowledged data, not a torn write: refuse, never cut it.
                if let Some((offset, why)) = &failure {
                    if let Some(at) = checkpoint_frame_after(&data, *offset + 1) {
                        return Err(corrupt(
                            *offset,
                            chain.seq(),
                            format!("{why}; a checkpoint follows at byte {at}, so this is damage, not a torn write"),
                        ));
                    }
                }
                // The torn bytes end at the last non-zero one (what follows is allocated space).
                let torn_end = data.iter().rposition(|&b| b != 0).map_or(good_end, |at| at + 1).max(good_end);
                // Keep the cut bytes beside the log for inspection; never destroy them.
                let keep = path.with_extension(format!("torn-{good_end}"));
                fs::write(&keep, &data[good_end..torn_end]).map_err(io_err("write", &keep))?;
                recovery.torn_bytes_cut += (torn_end - good_end) as u64;
                recovery.uncovered_records_cut += chain.seq() - good_chain.seq();
                // Zeroed in place rather than truncated: the space stays allocated.
                let f = OpenOptions::new().write(true).open(path).map_err(io_err("open", path))?;
                write_zeros(&f, good_end as u64, torn_end as u64).map_err(io_err("clear", path))?;
                f.sync_data().map_err(io_err("sync", path))?;
                chain = good_chain.clone();
                index_here.retain(|&(seq, _, _)| seq <= chain.seq());
            }
            log.index.extend(index_here);
            log.tail_alloc = data.len() as u64;
            log.segments.push(Segment { first_seq: *first_seq, path: path.clone(), len: good_end as u64 });
        }
        // An empty last segment (rolled, nothing committed) is dropped so that segment names
        // always equal their first record's seq.
        if log.segments.last().is_some_and(|s| s.len == 0) {
            if let Some(s) = log.segments.pop() {
                fs::remove_file(&s.path).map_err(io_err("remove", &s.path))?;
                sync_dir(dir)?;
            }
        }
        log.written = log.segments.last().map_or(0, |s| s.len);
        log.written_seq = chain.seq();
        log.chain = chain.clone();
        log.durable = chain.clone();
        log.checkpointed = chain;
        stubs.retain(|&seq, _| seq <= log.durable.seq());
        let fills_path = dir.join(FILLS_FILE);
        if fills_path.exists() {
            let data = fs::read(&fills_path).map_err(io_err("read", &fills_path))?;
            let (good, len) = scan_fills(&data, &stubs);
            if len != data.len() {
                // A torn or unmatched tail: those records are owed again (and fetched again).
                recovery.fills_cut += 1;
                let f = OpenOptions::new().write(true).open(&fills_path).map_err(io_err("open", &fills_path))?;
                f.set_len(len as u64).map_err(io_err("truncate", &fills_path))?;
                f.sync_all().map_err(io_err("sync", &fills_path))?;
            }
            for (seq, at) in good {
                stubs.remove(&seq);
                log.fills.insert(seq, at);
            }
            log.fills_len = len as u64;
        }
        // Owed only to a named owner; a log opened without one (an audit, a checker) owes nothing
        // and never cuts a fill.
        if owner.is_some() {
            log.owed = stubs;
        }
        Ok(log)
    }

    fn open_tail(&mut self) -> Result<(), StoreError> {
        if self.file.is_some() {
            return Ok(());
        }
        let roll = self.segments.is_empty() || self.written >= MAX_SEGMENT_BYTES;
        if roll {
            // A finished segment keeps no allocated space: trim it to its data. It is synced
            // here, with whatever of it an earlier commit's sync has yet to cover, so that
            // the new segment's syncs never publish records after an unsynced gap.
            let written = self.written;
            if let Some(prev) = self.segments.last_mut() {
                let f = OpenOptions::new().write(true).open(&prev.path).map_err(io_err("open", &prev.path))?;
                if self.tail_alloc > written {
                    f.set_len(written).map_err(io_err("trim", &prev.path))?;
                }
                f.sync_all().map_err(io_err("sync", &prev.path))?;
                prev.len = prev.len.max(written);
            }
            // The buffer starts right after what is written.
            let first_seq = self.written_seq + 1;
            let path = self.dir.join(segment_name(first_seq));
            let f = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .open(&path)
                .map_err(io_err("create", &path))?;
            // Its directory entry is made durable before any sync of its data can publish it.
            sync_dir(&self.dir)?;
            self.segments.push(Segment { first_seq, path, len: 0 });
            self.file = Some(f);
            self.tail_alloc = 0;
            self.written = 0;
        } else if let Some(s) = self.segments.last() {
            let f = OpenOptions::new().write(true).open(&s.path).map_err(io_err("open", &s.path))?;
            self.file = Some(f);
        }
        Ok(())
    }

    /// Writes the buffer (whole groups: it always ends on a checkpoint) and returns its sync.
    fn write(&mut self, origin: Nation) -> Result<Option<SyncItem>, StoreError> {
        self.commit_fills()?;
        if self.buf.is_empty() {
            return Ok(None);
        }
        self.open_tail()?;
        let seg = self.segments.last_mut().expect("open_tail made one");
        let f = self.file.as_mut().expect("open_tail opened it");
        let need = self.written + self.buf.len() as u64;
        if need > self.tail_alloc {
            let by = need.clamp(PREALLOC_MIN_BYTES, PREALLOC_BYTES);
            let ahead = (need + by).next_multiple_of(4096).min(MAX_SEGMENT_BYTES);
            let to = need.max(ahead);
            write_zeros(f, need.max(self.tail_alloc), to).map_err(io_err("extend", &seg.path))?;
            self.tail_alloc = to;
        }
        f.write_all_at(&self.buf, self.written).map_err(io_err("write", &seg.path))?;
        let file = f.try_clone().map_err(io_err("open", &seg.path))?;
        self.written = need;
        self.written_seq = self.checkpointed.seq();
        self.buf.clear();
        let item = SyncItem {
            file,
            path: seg.path.clone(),
            lock: self.sync_lock.clone(),
            publish: Publish {
                origin,
                segment: self.segments.len() - 1,
                len: need,
                chain: self.checkpointed.clone(),
                checkpoint: self.pending_checkpoint.take(),
            },
        };
        if need >= MAX_SEGMENT_BYTES {
            self.file = None;
        }
        Ok(Some(item))
    }

    /// Makes a synced write visible. Syncs may finish out of order; each covers every write
    /// of its file before it, so the furthest one published stands.
    fn publish(&mut self, p: Publish) {
        if let Some(seg) = self.segments.get_mut(p.segment) {
            seg.len = seg.len.max(p.len);
        }
        if p.chain.seq() > self.durable.seq() {
            self.durable = p.chain;
            if p.checkpoint.is_some() {
                self.last_checkpoint = p.checkpoint;
            }
        }
    }

    /// Buffers a checkpoint the chain has just taken.
    fn buffer_checkpoint(&mut self, bytes: &[u8]) {
        frame::encode(FrameType::Checkpoint, bytes, &mut self.buf);
        self.checkpointed = self.chain.clone();
        self.pending_checkpoint = Some(bytes.to_vec());
    }

    fn commit_fills(&mut self) -> Result<(), StoreError> {
        if self.fills_buf.is_empty() {
            return Ok(());
        }
        let path = self.dir.join(FILLS_FILE);
        let new = !path.exists();
        let mut f = OpenOptions::new().create(true).append(true).open(&path).map_err(io_err("open", &path))?;
        f.write_all(&self.fills_buf).map_err(io_err("write", &path))?;
        f.sync_data().map_err(io_err("sync", &path))?;
        if new {
            sync_dir(&self.dir)?;
        }
        self.fills_len += self.fills_buf.len() as u64;
        self.fills_buf.clear();
        self.fills.extend(self.pending_fills.drain(..));
        Ok(())
    }

    /// Indexes the record just verified into `chain` if it falls on the stride; call before
    /// buffering its frame.
    fn note_index(&mut self) {
        let seq = self.chain.seq();
        if (seq - 1).is_multiple_of(INDEX_STRIDE) {
            // The frame will be written at the end of the written tail plus the buffer, in the
            // current segment, or at the start of a new one if the tail is full.
            let (seg, base) = match self.segments.last() {
                Some(_) if self.written < MAX_SEGMENT_BYTES || self.file.is_some() => {
                    (self.segments.len() - 1, self.written)
                }
                _ => (self.segments.len(), 0),
            };
            self.index.push((seq, seg, base + self.buf.len() as u64));
        }
    }

    /// The offset where frames of `seq` can be found by scanning forward.
    fn locate(&self, seq: u64) -> Option<(usize, u64, u64)> {
        let i = self.index.partition_point(|&(s, _, _)| s <= seq);
        if i > 0 {
            let (s, seg, off) = self.index[i - 1];
            // The index may point into an earlier segment than `seq`'s; prefer the segment start
            // when it is nearer.
            let seg_of_seq = self.segments.partition_point(|g| g.first_seq <= seq).saturating_sub(1);
            if seg_of_seq > seg {
                return Some((seg_of_seq, 0, self.segments[seg_of_seq].first_seq));
            }
            Some((seg, off, s))
        } else {
            self.segments.first().map(|g| (0, 0, g.first_seq))
        }
    }
}

impl Reader for ReadPlan {
    fn records(&self) -> Result<Vec<StoredRecord>, StoreError> {
        self.run()
    }

    fn entries(&self) -> Result<Vec<Entry>, StoreError> {
        self.run_entries()
    }
}

impl LogStore for FileStore {
    fn failure(&self) -> Option<StoreError> {
        self.failed.clone().map(StoreError::Failed)
    }

    fn reader(&self, origin: Nation, from_seq: u64, max: usize, max_bytes: usize) -> Box<dyn Reader> {
        Box::new(self.plan_entries(origin, from_seq, max, max_bytes))
    }

    fn reader_ahead(&self, origin: Nation, from_seq: u64, max: usize, max_bytes: usize) -> Box<dyn Reader> {
        Box::new(self.plan_read_to(origin, from_seq, max, true).with_max_bytes(max_bytes))
    }

    fn heads(&self) -> Vec<Chain> {
        self.origins.values().map(|o| o.durable.clone()).collect()
    }

    fn append_record(&mut self, origin: Nation, bytes: &[u8]) -> Result<(), StoreError> {
        let log = self.origin_mut(origin)?;
        log.chain.verify_next(bytes).map_err(|source| StoreError::Rejected { origin, source })?;
        log.note_index();
        frame::encode(FrameType::Record, bytes, &mut log.buf);
        Ok(())
    }

    fn append_withheld(&mut self, origin: Nation, bytes: &[u8]) -> Result<(), StoreError> {
        let owner = self.owner;
        let log = self.origin_mut(origin)?;
        let stub = log.chain.verify_withheld(bytes).map_err(|source| StoreError::Rejected { origin, source })?;
        if owner.is_some_and(|o| crate::chain::owed_to(o, &stub)) {
            if let Ok(d) = <Hash>::try_from(stub.digest.as_slice()) {
                log.owed.insert(stub.seq, d);
            }
        }
        log.note_index();
        frame::encode(FrameType::Withheld, bytes, &mut log.buf);
        Ok(())
    }

    fn append_fill(&mut self, origin: Nation, bytes: &[u8]) -> Result<u64, StoreError> {
        let log = self.origin_mut(origin)?;
        let seq = take_owed(&mut log.owed, origin, bytes)?;
        log.pending_fills.push((seq, log.fills_len + log.fills_buf.len() as u64));
        frame::encode(FrameType::Record, bytes, &mut log.fills_buf);
        Ok(seq)
    }

    fn owed(&self, origin: Nation) -> Vec<u64> {
        self.origins.get(&origin).map(|o| o.owed.keys().copied().collect()).unwrap_or_default()
    }

    fn disown(&mut self, origin: Nation, seq: u64) {
        if let Some(o) = self.origins.get_mut(&origin) {
            o.owed.remove(&seq);
        }
    }

    fn append_checkpoint(
        &mut self,
        origin: Nation,
        bytes: &[u8],
        trusted: Option<&VerifyingKey>,
    ) -> Result<(), StoreError> {
        let log = self.origin_mut(origin)?;
        log.chain.verify_checkpoint(bytes, trusted).map_err(|source| StoreError::Rejected { origin, source })?;
        log.buffer_checkpoint(bytes);
        Ok(())
    }

    fn append_proven_checkpoint(
        &mut self,
        origin: Nation,
        bytes: &[u8],
        proof: &Proven,
        trusted: Option<&VerifyingKey>,
    ) -> Result<(), StoreError> {
        let log = self.origin_mut(origin)?;
        log.chain.accept_proven(bytes, proof, trusted).map_err(|source| StoreError::Rejected { origin, source })?;
        log.buffer_checkpoint(bytes);
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        match self.commit_start()? {
            Some(pending) => self.commit_finish(pending.run()),
            None => Ok(()),
        }
    }

    fn tail(&self, origin: Nation) -> Option<Chain> {
        self.origins.get(&origin).map(|o| o.chain.clone())
    }

    fn commit_start(&mut self) -> Result<Option<PendingSync>, StoreError> {
        if let Some(f) = &self.failed {
            return Err(StoreError::Failed(f.clone()));
        }
        let mut items = Vec::new();
        for (&origin, log) in self.origins.iter_mut() {
            if log.checkpointed.seq() != log.chain.seq() {
                // An append without its checkpoint is a caller bug; commit nothing unsigned.
                self.failed = Some(format!(
                    "{} records of {} lack a checkpoint",
                    log.chain.seq() - log.checkpointed.seq(),
                    log.chain.origin()
                ));
                return Err(StoreError::Failed(self.failed.clone().unwrap_or_default()));
            }
            match log.write(origin) {
                Ok(item) => items.extend(item),
                Err(e) => {
                    // A failed write leaves the file's tail unknown; stop here, and let
                    // recovery at the next open cut whatever was half written.
                    self.failed = Some(e.to_string());
                    return Err(e);
                }
            }
        }
        Ok((!items.is_empty()).then_some(PendingSync { items }))
    }

    fn commit_finish(&mut self, synced: Synced) -> Result<(), StoreError> {
        if let Some(e) = synced.error {
            self.failed.get_or_insert(e);
        }
        if let Some(f) = &self.failed {
            // Whatever this sync covered is not published: a failed store acknowledges nothing.
            return Err(StoreError::Failed(f.clone()));
        }
        for p in synced.done {
            if let Some(log) = self.origins.get_mut(&p.origin) {
                log.publish(p);
            }
        }
        Ok(())
    }

    fn read(&self, origin: Nation, from_seq: u64, max: usize) -> Result<Vec<StoredRecord>, StoreError> {
        self.plan_read(origin, from_seq, max).run()
    }

    fn read_entries(&self, origin: Nation, from_seq: u64, max: usize) -> Result<Vec<Entry>, StoreError> {
        self.plan_read(origin, from_seq, max).run_entries()
    }

    fn last_checkpoint(&self, origin: Nation) -> Option<Vec<u8>> {
        self.origins.get(&origin).and_then(|o| o.last_checkpoint.clone())
    }
}
