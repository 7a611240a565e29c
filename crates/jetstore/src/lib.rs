//! The node's log on a NATS JetStream cluster: a [`ledger::LogStore`] whose origins are
//! streams, for a nation that outgrows one machine (docs/store.md).
//!
//! # Layout
//!
//! A store is named by a prefix `P` (letters, digits, `_`, `-`; by default `TRILINK_<OWNER>`).
//! Each origin `O` has two streams, both file-backed, replicated `min(3, cluster size)` times,
//! with deletes and purges denied:
//!
//! - `P_O` (subjects `P.O.log.*`): the origin's log exactly as a segment file holds it, one
//!   message per frame, in chain order. The subject names the frame's kind — `r` a record,
//!   `w` a withheld stub, `o` a stub whose marking names the owner (owed until filled), `c` a
//!   signed checkpoint — and the header `Trilink-Seq` the record's seq (for a checkpoint, the
//!   seq it covers).
//! - `P_O_FILLS` (subject `P.O.fill`): records that filled owed stubs, header `Trilink-Seq`.
//!
//! # Commit
//!
//! A commit publishes each origin's buffered frames as JetStream *atomic batches* (ADR-50):
//! the records of a group and the checkpoint over them become visible together or not at all,
//! so, as in the segment files, a crash never leaves records no checkpoint covers. The first
//! message of every batch carries `Nats-Expected-Last-Sequence`: the stream must end where this
//! writer last saw it. That both fences a second writer (its batch is refused, never
//! interleaved) and de-duplicates a retried batch forever, not only within a duplicate window:
//! when an acknowledgement is lost, the retry is refused and the store reads the stream's tail
//! to learn whether its batch landed. Each record and stub also carries `Nats-Msg-Id` =
//! `<origin>.<seq>`, its identity, which the server de-duplicates within its duplicate window;
//! the expected sequence is the stronger, permanent guard. A group of more than 999 frames cannot be one
//! batch; it goes as several, and a crash between them leaves records after the last
//! checkpoint, which reopening verifies and keeps (`Recovery::uncovered_records_kept`) and the
//! next checkpoint covers. The store answers only after the cluster acknowledged every batch:
//! the node acknowledges its sender only after that.
//!
//! # Open
//!
//! Opening lists the prefix's streams, checks each one's configuration (file storage, replicas,
//! atomic publish, no deletes) and that it has no gaps, and verifies the last checkpoint
//! against the trusted key by resuming the chain from the record it covers. Unlike
//! `FileStore`, it does not re-read the whole chain on every start; `trilink audit` does that.
//! Owed stubs are found through their subject, fills are read and matched to them. A writer
//! then fences each stream with a copy of its last checkpoint (`JetStore::recover_fenced`), so
//! no batch a previous writer left in flight can land after it.
//!
//! # Reads
//!
//! A record's stream seq is its seq plus the checkpoints before it, found by binary search over
//! stream seqs (narrowed by points this process has seen) and then read forward, many
//! messages in flight at once. Gets go to the stream leader, so a read sees every
//! acknowledged batch.

pub use async_nats;
mod bridge;
pub mod durability;
pub mod local;

use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;
use bridge::Bridge;
use bytes::Bytes;
use ed25519_dalek::VerifyingKey;
use futures::StreamExt;
use ledger::store::{Recovery, MAX_READ_RECORDS};
use ledger::{Chain, EndsReader, Entry, LogEnd, LogStore, Reader, StoreError, StoredRecord};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vocab::Nation;

/// The header naming a frame's record seq (or, on a checkpoint, the seq it covers).
pub const SEQ_HEADER: &str = "Trilink-Seq";
/// Most messages in one atomic batch (the server's default `batch.max_msgs`).
pub const MAX_BATCH_MESSAGES: usize = 1000;
/// Messages read concurrently by a range read.
const READ_AHEAD: usize = 64;
/// How long a writer's open waits for an uncovered tail to stand still before it takes it as
/// a split group's remnant rather than a batch being applied.
const SETTLE: Duration = Duration::from_millis(200);
/// A point of the record seq → stream seq map is kept every this many records.
const INDEX_STRIDE: u64 = 256;

/// Where the store lives and how it is named.
#[derive(Debug, Clone)]
pub struct Settings {
    /// NATS URLs of the cluster's servers (`nats://127.0.0.1:4222`, …).
    pub servers: Vec<String>,
    /// The servers' monitoring URLs (`http://127.0.0.1:8222`), read at start-up to check
    /// durability (see [`durability`]).
    pub monitors: Vec<String>,
    /// Stream-name prefix (`[A-Za-z0-9_-]+`).
    pub prefix: String,
    /// How long one operation may take before the store reports the cluster unavailable. A
    /// commit retries within this time (a server restarting, a leader election).
    pub timeout: Duration,
}

impl Settings {
    /// The default prefix of `owner`'s store.
    pub fn default_prefix(owner: Nation) -> String {
        format!("TRILINK_{owner}")
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.prefix.is_empty() || !self.prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(StoreError::Misconfigured(format!(
                "prefix {:?}: use letters, digits, `_` and `-` only",
                self.prefix
            )));
        }
        if self.servers.is_empty() {
            return Err(StoreError::Misconfigured("no NATS server URL given".into()));
        }
        if self.monitors.is_empty() {
            return Err(StoreError::Misconfigured(
                "no monitoring URL given: trilink reads each server's /varz to check that JetStream syncs every write"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// The kind of a frame, as its subject's last token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Record,
    Withheld,
    /// A stub whose marking names the owner.
    Owed,
    Checkpoint,
}

impl Kind {
    fn token(self) -> &'static str {
        match self {
            Kind::Record => "r",
            Kind::Withheld => "w",
            Kind::Owed => "o",
            Kind::Checkpoint => "c",
        }
    }

    fn of_subject(subject: &str) -> Option<Kind> {
        match subject.rsplit('.').next()? {
            "r" => Some(Kind::Record),
            "w" => Some(Kind::Withheld),
            "o" => Some(Kind::Owed),
            "c" => Some(Kind::Checkpoint),
            _ => None,
        }
    }
}

/// One frame as stored: kind, record seq, bytes.
#[derive(Debug, Clone)]
struct Frame {
    kind: Kind,
    seq: u64,
    bytes: Bytes,
}

/// Names of an origin's streams and subjects.
#[derive(Debug, Clone)]
struct Names {
    log: String,
    fills: String,
    subject_base: String,
    fill_subject: String,
}

impl Names {
    fn new(prefix: &str, origin: Nation) -> Names {
        Names {
            log: format!("{prefix}_{origin}"),
            fills: format!("{prefix}_{origin}_FILLS"),
            subject_base: format!("{prefix}.{origin}.log"),
            fill_subject: format!("{prefix}.{origin}.fill"),
        }
    }

    fn subject(&self, kind: Kind) -> String {
        format!("{}.{}", self.subject_base, kind.token())
    }
}

/// What the store and its readers share: the connection and the runtime driving it.
struct Shared {
    bridge: Bridge,
    client: async_nats::Client,
    js: jetstream::Context,
    timeout: Duration,
    replicas: usize,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("{what}: {e}"))
}

impl Shared {
    /// Runs `f` on the store's runtime, within the store's timeout.
    fn run<T: Send + 'static>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let timeout = self.timeout;
        let what_owned = what.to_string();
        self.bridge
            .run(async move {
                tokio::time::timeout(timeout, f)
                    .await
                    .unwrap_or_else(|_| Err(unavailable(&what_owned, format!("no answer within {timeout:?}"))))
            })
            .unwrap_or_else(|e| Err(unavailable(what, e)))
    }
}

/// A follower's read of every origin's stream end, run without holding the store.
struct FollowEnds {
    shared: Arc<Shared>,
    prefix: String,
}

impl EndsReader for FollowEnds {
    fn read(&self) -> Result<Vec<LogEnd>, StoreError> {
        let js = self.shared.js.clone();
        let prefix = self.prefix.clone();
        self.shared.run("read the streams' ends", async move {
            let mut ends = Vec::new();
            for origin in origins_on(&js, &prefix).await? {
                let (covers, position, cp) = readable_end(&js, &Names::new(&prefix, origin), origin).await?;
                if let Some(cp) = cp {
                    ends.push(LogEnd { origin, covers, position, checkpoint: cp.to_vec() });
                }
            }
            Ok(ends)
        })
    }
}

/// The origins whose log streams carry `prefix`, asking again when a request is lost (a server
/// restarting, a meta-leader election).
async fn origins_on(js: &jetstream::Context, prefix: &str) -> Result<Vec<Nation>, StoreError> {
    let names = again(
        || async {
            let mut out = Vec::new();
            let mut list = js.stream_names();
            while let Some(n) = list.next().await {
                out.push(n.map_err(|e| e.to_string())?);
            }
            Ok::<_, String>(out)
        },
        |_| true,
    )
    .await
    .map_err(|e| unavailable("list streams", e))?;
    let mut origins: Vec<Nation> = names
        .iter()
        .filter_map(|n| n.strip_prefix(&format!("{prefix}_")))
        .filter_map(|rest| Nation::parse(rest).ok())
        .collect();
    origins.sort();
    Ok(origins)
}

/// Reads stream message `seq`. A request lost to a server restarting or a leader election is
/// asked again (each try times out after the context's request timeout); the caller's
/// deadline (`Shared::run`) bounds the whole.
async fn get_frame(stream: &stream::Stream<()>, names: &Names, origin: Nation, seq: u64) -> Result<Frame, StoreError> {
    let m =
        again(|| stream.get_raw_message(seq), |e| !matches!(e.kind(), stream::LastRawMessageErrorKind::NoMessageFound))
            .await
            .map_err(|e| unavailable(&format!("read {origin}'s stream at {seq}"), e))?;
    frame_of(&m, &names.log, origin)
}

/// Runs `f` until it succeeds or fails with an error `transient` does not accept, pausing
/// between tries (the caller bounds the time).
async fn again<T, E, Fut: std::future::Future<Output = Result<T, E>>>(
    mut f: impl FnMut() -> Fut,
    transient: impl Fn(&E) -> bool,
) -> Result<T, E> {
    let mut pause = Duration::from_millis(50);
    loop {
        match f().await {
            Err(e) if transient(&e) => {
                tracing::debug!("NATS request failed; asking again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

fn frame_of(m: &jetstream::message::StreamMessage, stream: &str, origin: Nation) -> Result<Frame, StoreError> {
    let corrupt = |why: String| StoreError::CorruptStream { stream: stream.to_string(), origin, seq: m.sequence, why };
    let kind = Kind::of_subject(m.subject.as_str())
        .ok_or_else(|| corrupt(format!("a message on subject {}, not a log frame", m.subject)))?;
    let seq = m
        .headers
        .get(SEQ_HEADER)
        .and_then(|v| v.as_str().parse::<u64>().ok())
        .ok_or_else(|| corrupt(format!("no {SEQ_HEADER} header")))?;
    Ok(Frame { kind, seq, bytes: m.payload.clone() })
}

/// One origin's state in this process.
#[derive(Debug)]
struct OriginLog {
    names: Names,
    /// Chain over everything appended (buffered included).
    chain: Chain,
    /// Chain as of the last commit: what readers see (`covered()` bounds reads).
    durable: Chain,
    /// Chain at the last buffered checkpoint.
    checkpointed: Chain,
    /// Frames appended, not yet committed.
    buf: Vec<Frame>,
    last_checkpoint: Option<Vec<u8>>,
    /// The last checkpoint buffered: `last_checkpoint` once committed.
    pending_checkpoint: Option<Vec<u8>>,
    /// Stream seq of the log stream's last message, as of the last commit.
    stream_last: u64,
    /// Stream seq of the fills stream's last message.
    fills_last: u64,
    /// Record seq → stream seq, every `INDEX_STRIDE` records and wherever a read or commit saw.
    index: Arc<Mutex<BTreeMap<u64, u64>>>,
    /// Owed stubs: seq → digest.
    owed: BTreeMap<u64, ledger::Hash>,
    /// Filled stubs: seq → stream seq in the fills stream.
    fills: BTreeMap<u64, u64>,
    pending_fills: Vec<(u64, Vec<u8>)>,
    /// The streams exist (checked or created).
    streams_ready: bool,
}

impl OriginLog {
    /// Buffers a checkpoint the chain has just taken.
    fn buffer_checkpoint(&mut self, bytes: &[u8]) {
        self.buf.push(Frame { kind: Kind::Checkpoint, seq: self.chain.seq(), bytes: Bytes::copy_from_slice(bytes) });
        self.checkpointed = self.chain.clone();
        self.pending_checkpoint = Some(bytes.to_vec());
    }

    fn empty(prefix: &str, origin: Nation) -> OriginLog {
        OriginLog {
            names: Names::new(prefix, origin),
            chain: Chain::new(origin),
            durable: Chain::new(origin),
            checkpointed: Chain::new(origin),
            buf: Vec::new(),
            last_checkpoint: None,
            pending_checkpoint: None,
            stream_last: 0,
            fills_last: 0,
            index: Arc::new(Mutex::new(BTreeMap::new())),
            owed: BTreeMap::new(),
            fills: BTreeMap::new(),
            pending_fills: Vec::new(),
            streams_ready: false,
        }
    }
}

/// What `JetStore::audit` found for one origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamAudit {
    pub origin: Nation,
    pub stream: String,
    pub records: u64,
    pub checkpoints: u64,
    pub covered: u64,
    /// The checkpoints' key, hex.
    pub signer: Option<String>,
    pub key_trusted: bool,
    /// The first bad record's seq and why.
    pub fault: Option<(u64, String)>,
}

/// The JetStream store.
pub struct JetStore {
    shared: Arc<Shared>,
    prefix: String,
    owner: Option<Nation>,
    origins: BTreeMap<Nation, OriginLog>,
    failed: Option<String>,
    /// The failure was another writer taking the log (`StoreError::Superseded`), which every
    /// later call says again, so that nothing reopens the log and takes it back.
    superseded: bool,
    /// Opened to read what another process writes (`open_follower`).
    follow: bool,
}

impl std::fmt::Debug for JetStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStore").field("prefix", &self.prefix).field("owner", &self.owner).finish()
    }
}

impl JetStore {
    /// Connects, checks that every server syncs each write and that the cluster is big enough,
    /// and opens the store named by `settings.prefix`, verifying each origin's last checkpoint
    /// against `trusted`.
    pub fn open(
        settings: &Settings,
        trusted: &BTreeMap<Nation, VerifyingKey>,
        owner: Option<Nation>,
    ) -> Result<(JetStore, Recovery), StoreError> {
        settings.check()?;
        let bridge = Bridge::start().map_err(|e| unavailable("start the NATS client runtime", e))?;
        let cluster = bridge
            .run(durability::check(settings.monitors.clone(), settings.timeout))
            .map_err(|e| unavailable("check durability", e))??;
        let servers = settings.servers.clone();
        let timeout = settings.timeout;
        let client = bridge
            .run(async move {
                tokio::time::timeout(
                    timeout,
                    async_nats::ConnectOptions::new()
                        .name("trilink")
                        .connection_timeout(timeout)
                        .request_timeout(Some(timeout))
                        .connect(servers),
                )
                .await
            })
            .map_err(|e| unavailable("connect", e))?
            .map_err(|_| unavailable("connect to NATS", format!("no answer within {timeout:?}")))?
            .map_err(|e| unavailable("connect to NATS", e))?;
        let c = client.clone();
        let js = bridge
            .run(async move {
                let mut js = jetstream::new(c);
                // One request's wait; operations ask again within `timeout`.
                js.set_timeout(timeout.min(Duration::from_secs(4)));
                js
            })
            .map_err(|e| unavailable("connect", e))?;
        let shared = Arc::new(Shared { bridge, client, js, timeout, replicas: cluster.cluster_size.clamp(1, 3) });
        let mut store = JetStore {
            shared,
            prefix: settings.prefix.clone(),
            owner,
            origins: BTreeMap::new(),
            failed: None,
            superseded: false,
            follow: false,
        };
        let recovery = store.recover(trusted)?;
        Ok((store, recovery))
    }

    /// Opens the store to read what another process (the nation's writer) appends: every read
    /// looks up the stream's current end (its last checkpoint), so it sees every batch
    /// acknowledged before it started. Appends fail: this process never writes.
    pub fn open_follower(
        settings: &Settings,
        trusted: &BTreeMap<Nation, VerifyingKey>,
    ) -> Result<(JetStore, Recovery), StoreError> {
        let (mut store, recovery) = JetStore::open(settings, trusted, None)?;
        store.follow = true;
        store.failed = Some("this process only reads the log; the nation's writer process appends".into());
        Ok((store, recovery))
    }

    /// A follower's heads, read again from the cluster: each origin's stream end (its last
    /// checkpoint, whose head hash the chain takes). The writer verified every checkpoint
    /// before publishing it; a follower does not verify again. A writer's store is its own
    /// truth and does nothing here. (`LogStore::ends_reader` does the read without the store.)
    pub fn refresh_heads(&mut self) -> Result<(), StoreError> {
        LogStore::refresh(self)
    }

    /// Re-reads every origin's whole log from seq 1 and verifies it as `trilink audit verify`
    /// does a directory: each record's link, each stub, each checkpoint's signature (against
    /// `trusted` where given, else the key the first checkpoint names — consistency only).
    /// Opening already verified the last checkpoint; this checks everything before it.
    pub fn audit(&self, trusted: &BTreeMap<Nation, VerifyingKey>) -> Vec<StreamAudit> {
        let mut out = Vec::new();
        for head in self.heads() {
            let origin = head.origin();
            let mut a = StreamAudit {
                origin,
                stream: Names::new(&self.prefix, origin).log,
                records: 0,
                checkpoints: 0,
                covered: 0,
                signer: None,
                key_trusted: trusted.contains_key(&origin),
                fault: None,
            };
            let mut chain = Chain::new(origin);
            let mut pinned = trusted.get(&origin).copied();
            'read: loop {
                let entries = match self.read_entries(origin, chain.seq() + 1, MAX_READ_RECORDS) {
                    Ok(e) if e.is_empty() => break,
                    Ok(e) => e,
                    Err(e) => {
                        a.fault = Some((chain.seq() + 1, e.to_string()));
                        break;
                    }
                };
                for e in entries {
                    let checked = match &e {
                        Entry::Record(r) => chain.verify_next(&r.bytes).map(|_| ()),
                        Entry::Withheld { bytes, .. } => chain.verify_withheld(bytes).map(|_| ()),
                        Entry::Checkpoint { bytes, .. } => {
                            chain.verify_checkpoint(bytes, pinned.as_ref()).map(|proof| {
                                pinned.get_or_insert(proof.key());
                                a.checkpoints += 1;
                            })
                        }
                    };
                    if let Err(err) = checked {
                        a.fault = Some((e.seq(), err.to_string()));
                        break 'read;
                    }
                    if !matches!(e, Entry::Checkpoint { .. }) {
                        a.records += 1;
                    }
                }
            }
            a.covered = chain.covered();
            a.signer = pinned.map(|k| k.to_bytes().iter().map(|b| format!("{b:02x}")).collect());
            out.push(a);
        }
        out
    }

    /// Replicas each stream is created with.
    pub fn replicas(&self) -> usize {
        self.shared.replicas
    }

    fn recover(&mut self, trusted: &BTreeMap<Nation, VerifyingKey>) -> Result<Recovery, StoreError> {
        let js = self.shared.js.clone();
        let prefix = self.prefix.clone();
        let origins = self.shared.run("list streams", async move { origins_on(&js, &prefix).await })?;
        let mut recovery = Recovery::default();
        for origin in origins {
            let trusted = trusted.get(&origin).copied();
            let log = if self.owner.is_some() {
                self.recover_fenced(origin, trusted, &mut recovery)?
            } else {
                self.recover_origin(origin, trusted, &mut recovery)?
            };
            self.origins.insert(origin, log);
        }
        Ok(recovery)
    }

    /// A writer's open of one origin: recovers it, then fences off any batch a previous writer
    /// (this node before a crash) still had in flight. Such a batch carries the expected last
    /// sequence this open just read, and the cluster may apply it after the read — its commit
    /// still in the server's socket buffer or in the stream's Raft log. Publishing a copy of the
    /// last checkpoint (a no-op in the log: duplicate checkpoints over one head may stand
    /// between groups) with that same expected last sequence settles it: either the fence lands
    /// and every older batch is refused from then on, or an older batch landed first and the
    /// origin is read again, from the new tail, and fenced there. A mistaken second writer is
    /// fenced the same way: the newest writer takes the log, the older one's next batch is
    /// refused and it stops acknowledging. A tail of records after the last checkpoint is read
    /// again until it stands still (a batch being applied as the open read it). One that does
    /// is not fenced — no checkpoint over that head exists to copy: a stream with no
    /// checkpoint yet, or what a crash left between the batches of one oversized group.
    fn recover_fenced(
        &self,
        origin: Nation,
        trusted: Option<VerifyingKey>,
        recovery: &mut Recovery,
    ) -> Result<OriginLog, StoreError> {
        let deadline = Instant::now() + self.shared.timeout;
        // An uncovered tail, and since when it has stood unchanged.
        let mut uncovered: Option<(u64, Instant)> = None;
        // What an earlier origin's recovery found; each read of this one starts from it.
        let before = recovery.clone();
        loop {
            *recovery = before.clone();
            let mut log = self.recover_origin(origin, trusted, recovery)?;
            let covered = log.chain.covered() == log.chain.seq();
            if !covered && Instant::now() < deadline {
                // Records after the last checkpoint: either a batch being applied as this open
                // read it (a server stores an atomic batch's messages one by one, and a read
                // can fall between them) or what a crash left between the batches of a split
                // group. The first completes within milliseconds: read again until the end
                // has stood still for `SETTLE`.
                let settled = match uncovered {
                    Some((at, since)) if at == log.stream_last => since.elapsed() >= SETTLE,
                    _ => {
                        uncovered = Some((log.stream_last, Instant::now()));
                        false
                    }
                };
                if !settled {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            }
            let Some(cp) = log.last_checkpoint.clone().filter(|_| covered) else { return Ok(log) };
            let mut headers = HeaderMap::new();
            headers.insert(SEQ_HEADER, log.chain.seq().to_string());
            let fence = vec![(log.names.subject(Kind::Checkpoint), headers, Bytes::from(cp))];
            match publish_batch(&self.shared, &log.names.log, origin, log.stream_last, fence) {
                Ok(at) => {
                    log.stream_last = at;
                    return Ok(log);
                }
                // The stream moved since it was read: a batch in flight landed. Read it again.
                Err(StoreError::Superseded(why)) if Instant::now() < deadline => {
                    tracing::info!(%origin, %why, "a previous writer's batch landed during open; reading the log again");
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn recover_origin(
        &self,
        origin: Nation,
        trusted: Option<VerifyingKey>,
        recovery: &mut Recovery,
    ) -> Result<OriginLog, StoreError> {
        let mut log = OriginLog::empty(&self.prefix, origin);
        let names = log.names.clone();
        let js = self.shared.js.clone();
        let replicas = self.shared.replicas;
        let owner = self.owner;
        let found = self.shared.run("open the log", async move {
            let info = ensure_stream(&js, log_config(&names, replicas), replicas).await?;
            let fills_info = ensure_stream(&js, fills_config(&names, replicas), replicas).await?;
            let corrupt =
                |seq: u64, why: String| StoreError::CorruptStream { stream: names.log.clone(), origin, seq, why };
            let state = &info.state;
            if state.last_sequence > 0 && (state.first_sequence != 1 || state.messages != state.last_sequence) {
                return Err(corrupt(
                    state.first_sequence,
                    format!(
                        "{} messages in seqs {}..={}: messages were deleted",
                        state.messages, state.first_sequence, state.last_sequence
                    ),
                ));
            }
            let stream = js.get_stream_no_info(&names.log).await.map_err(|e| unavailable("open stream", e))?;
            // Back from the end to the last checkpoint: what follows it is an uncovered tail.
            let last = state.last_sequence;
            let mut at = last;
            let mut tail = Vec::new();
            let mut checkpoint = None;
            while at > 0 {
                let f = get_frame(&stream, &names, origin, at).await?;
                if f.kind == Kind::Checkpoint {
                    checkpoint = Some((at, f));
                    break;
                }
                tail.push(f);
                at -= 1;
            }
            tail.reverse();
            // The record the checkpoint covers (duplicate checkpoints may stand between).
            let mut covered_frame = None;
            if let Some((cp_at, _)) = &checkpoint {
                let mut j = *cp_at - 1;
                while j > 0 {
                    let f = get_frame(&stream, &names, origin, j).await?;
                    if f.kind != Kind::Checkpoint {
                        covered_frame = Some((j, f));
                        break;
                    }
                    j -= 1;
                }
            }
            // Owed stubs, by their subject; fills, all of them.
            let mut owed = Vec::new();
            if owner.is_some() {
                let subject = names.subject(Kind::Owed);
                let mut from = 1;
                loop {
                    let not_found = |e: &stream::LastRawMessageError| {
                        matches!(e.kind(), stream::LastRawMessageErrorKind::NoMessageFound)
                    };
                    match again(|| stream.get_first_raw_message_by_subject(&subject, from), |e| !not_found(e)).await {
                        Ok(m) => {
                            from = m.sequence + 1;
                            owed.push(frame_of(&m, &names.log, origin)?);
                        }
                        Err(e) if not_found(&e) => break,
                        Err(e) => return Err(unavailable("read owed stubs", e)),
                    }
                }
            }
            let fills_stream = js.get_stream_no_info(&names.fills).await.map_err(|e| unavailable("open stream", e))?;
            let mut fills = Vec::new();
            for s in 1..=fills_info.state.last_sequence {
                let m = again(|| fills_stream.get_raw_message(s), |_| true)
                    .await
                    .map_err(|e| unavailable(&format!("read {origin}'s fills at {s}"), e))?;
                fills.push((s, m.payload.clone()));
            }
            Ok((last, checkpoint, covered_frame, tail, owed, fills, fills_info.state.last_sequence))
        })?;
        let (last, checkpoint, covered_frame, tail, owed, fills, fills_last) = found;
        let stream_name = log.names.log.clone();
        let corrupt =
            |seq: u64, why: String| StoreError::CorruptStream { stream: stream_name.clone(), origin, seq, why };
        let reject = |seq: u64| move |e: ledger::ChainError| corrupt(seq, e.to_string());
        let mut chain = Chain::new(origin);
        if let Some((cp_at, cp)) = &checkpoint {
            if let Some((at, f)) = &covered_frame {
                let prev = prev_hash(f).map_err(reject(*at))?;
                chain = Chain::resume(origin, f.seq.saturating_sub(1), prev, 0);
                match f.kind {
                    Kind::Record => chain.verify_next(&f.bytes).map(|_| ()),
                    _ => chain.verify_withheld(&f.bytes).map(|_| ()),
                }
                .map_err(reject(*at))?;
                log.index.lock().map_err(|_| poisoned())?.insert(f.seq, *at);
            }
            chain.verify_checkpoint(&cp.bytes, trusted.as_ref()).map_err(reject(*cp_at))?;
            log.last_checkpoint = Some(cp.bytes.to_vec());
        }
        for (i, f) in tail.iter().enumerate() {
            let at = last - (tail.len() - 1 - i) as u64;
            match f.kind {
                Kind::Record => chain.verify_next(&f.bytes).map(|_| ()),
                Kind::Withheld | Kind::Owed => chain.verify_withheld(&f.bytes).map(|_| ()),
                // The tail was read back to the last checkpoint, so none is in it.
                Kind::Checkpoint => Err(ledger::ChainError::BadCheckpoint {
                    seq: f.seq,
                    why: "a checkpoint after the last checkpoint".into(),
                }),
            }
            .map_err(reject(at))?;
            recovery.uncovered_records_kept += 1;
        }
        log.chain = chain.clone();
        log.durable = chain.clone();
        log.checkpointed = chain;
        log.stream_last = last;
        log.fills_last = fills_last;
        log.streams_ready = true;
        if self.owner.is_some() {
            for f in owed {
                let stub = <wire::Withheld as prost::Message>::decode(f.bytes.as_ref())
                    .map_err(|e| corrupt(f.seq, format!("owed stub: {e}")))?;
                if let Ok(d) = <ledger::Hash>::try_from(stub.digest.as_slice()) {
                    log.owed.insert(stub.seq, d);
                }
            }
            for (at, bytes) in fills {
                let seq = <wire::Record as prost::Message>::decode(bytes.as_ref()).map(|r| r.seq).unwrap_or(0);
                if log.owed.get(&seq) == Some(&ledger::record_digest(&bytes)) {
                    log.owed.remove(&seq);
                    log.fills.insert(seq, at);
                } else {
                    // Only a fill that matched its stub is ever published; one that does not
                    // is left unread and the record is owed again.
                    recovery.fills_cut += 1;
                }
            }
        }
        Ok(log)
    }

    /// Why the store accepts nothing more (it failed, or it only follows), if it does not.
    fn refusal(&self) -> Option<StoreError> {
        let f = self.failed.clone()?;
        Some(if self.superseded { StoreError::Superseded(f) } else { StoreError::Failed(f) })
    }

    fn origin_mut(&mut self, origin: Nation) -> Result<&mut OriginLog, StoreError> {
        if let Some(e) = self.refusal() {
            return Err(e);
        }
        let prefix = &self.prefix;
        Ok(self.origins.entry(origin).or_insert_with(|| OriginLog::empty(prefix, origin)))
    }

    fn commit_origin(&mut self, origin: Nation) -> Result<(), StoreError> {
        let shared = self.shared.clone();
        let Some(log) = self.origins.get_mut(&origin) else { return Ok(()) };
        if !log.streams_ready {
            let (js, replicas, names) = (shared.js.clone(), shared.replicas, log.names.clone());
            shared.run("create the log's streams", async move {
                ensure_stream(&js, log_config(&names, replicas), replicas).await?;
                ensure_stream(&js, fills_config(&names, replicas), replicas).await?;
                Ok(())
            })?;
            log.streams_ready = true;
        }
        // Fills: each its own message, in order; a lost ack is retried and the fills stream's
        // expected last sequence refuses a second copy.
        for (seq, bytes) in std::mem::take(&mut log.pending_fills) {
            let mut headers = HeaderMap::new();
            headers.insert(SEQ_HEADER, seq.to_string());
            headers.insert("Nats-Msg-Id", format!("{origin}.{seq}.fill"));
            let frames = vec![(log.names.fill_subject.clone(), headers, Bytes::from(bytes))];
            let at = publish_batch(&shared, &log.names.fills, origin, log.fills_last, frames)?;
            log.fills_last = at;
            log.fills.insert(seq, at);
        }
        if log.buf.is_empty() {
            return Ok(());
        }
        // Whole groups (ending on a checkpoint) per batch, as many as fit.
        let frames = std::mem::take(&mut log.buf);
        let mut batches: Vec<Vec<Frame>> = Vec::new();
        let mut current: Vec<Frame> = Vec::new();
        let mut group: Vec<Frame> = Vec::new();
        for f in frames {
            let is_cp = f.kind == Kind::Checkpoint;
            group.push(f);
            if is_cp {
                if current.len() + group.len() > MAX_BATCH_MESSAGES && !current.is_empty() {
                    batches.push(std::mem::take(&mut current));
                }
                if group.len() > MAX_BATCH_MESSAGES {
                    // Too big for one batch: split; see the crate docs.
                    for chunk in group.chunks(MAX_BATCH_MESSAGES) {
                        batches.push(chunk.to_vec());
                    }
                    group.clear();
                } else {
                    current.append(&mut group);
                }
            }
        }
        if !current.is_empty() {
            batches.push(current);
        }
        for batch in batches {
            let first_seq = batch.iter().find(|f| f.kind != Kind::Checkpoint).map(|f| f.seq);
            let messages: Vec<(String, HeaderMap, Bytes)> = batch
                .iter()
                .map(|f| {
                    let mut h = HeaderMap::new();
                    h.insert(SEQ_HEADER, f.seq.to_string());
                    if f.kind != Kind::Checkpoint {
                        // A record's identity (origin, seq): the server's de-duplication too.
                        h.insert("Nats-Msg-Id", format!("{origin}.{}", f.seq));
                    }
                    (log.names.subject(f.kind), h, f.bytes.clone())
                })
                .collect();
            let before = log.stream_last;
            log.stream_last = publish_batch(&shared, &log.names.log, origin, before, messages)?;
            if let Some(first) = first_seq {
                let mut index = log.index.lock().map_err(|_| poisoned())?;
                let due = index.last_key_value().is_none_or(|(&k, _)| first / INDEX_STRIDE != k / INDEX_STRIDE);
                if due {
                    index.insert(first, before + 1);
                }
            }
        }
        Ok(())
    }
}

fn poisoned() -> StoreError {
    StoreError::Failed("the store's index lock was poisoned".into())
}

/// The `prev_hash` a record or stub carries.
fn prev_hash(f: &Frame) -> Result<ledger::Hash, ledger::ChainError> {
    let prev = match f.kind {
        Kind::Record => {
            <wire::Record as prost::Message>::decode(f.bytes.as_ref())
                .map_err(|e| ledger::ChainError::DecodeRecord(e.to_string()))?
                .prev_hash
        }
        _ => {
            <wire::Withheld as prost::Message>::decode(f.bytes.as_ref())
                .map_err(|e| ledger::ChainError::DecodeWithheld(e.to_string()))?
                .prev_hash
        }
    };
    prev.as_slice().try_into().map_err(|_| ledger::ChainError::BrokenLink { seq: f.seq })
}

fn log_config(names: &Names, replicas: usize) -> stream::Config {
    stream::Config {
        name: names.log.clone(),
        subjects: vec![format!("{}.*", names.subject_base)],
        ..durable_config(replicas)
    }
}

fn fills_config(names: &Names, replicas: usize) -> stream::Config {
    stream::Config { name: names.fills.clone(), subjects: vec![names.fill_subject.clone()], ..durable_config(replicas) }
}

/// What every trilink stream must be: on disk, replicated, append-only, atomic batches on.
fn durable_config(replicas: usize) -> stream::Config {
    stream::Config {
        storage: stream::StorageType::File,
        num_replicas: replicas,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::New,
        deny_delete: true,
        deny_purge: true,
        allow_atomic_publish: true,
        max_message_size: ledger::MAX_FRAME_BYTES as i32,
        ..Default::default()
    }
}

/// Gets the stream, creating it if missing, and refuses one not configured as trilink needs.
async fn ensure_stream(
    js: &jetstream::Context,
    config: stream::Config,
    replicas: usize,
) -> Result<stream::Info, StoreError> {
    let name = config.name.clone();
    let info = again(
        || async {
            let mut stream = js.get_or_create_stream(config.clone()).await.map_err(|e| e.to_string())?;
            stream.info().await.cloned().map_err(|e| e.to_string())
        },
        |_| true,
    )
    .await
    .map_err(|e| unavailable(&format!("create or get stream {name}"), e))?;
    let c = &info.config;
    let mut wrong = Vec::new();
    if c.storage != stream::StorageType::File {
        wrong.push("storage is not file".to_string());
    }
    if c.num_replicas < replicas {
        wrong.push(format!("{} replicas where the cluster allows {replicas}", c.num_replicas));
    }
    if !c.allow_atomic_publish {
        wrong.push("atomic publish is off".into());
    }
    if !c.deny_delete || !c.deny_purge {
        wrong.push("deletes or purges are allowed".into());
    }
    if c.max_messages > 0 || c.max_bytes > 0 || c.max_age > Duration::ZERO {
        wrong.push("it has limits that would drop messages".into());
    }
    if !wrong.is_empty() {
        return Err(StoreError::Misconfigured(format!("stream {name}: {}", wrong.join("; "))));
    }
    Ok(info)
}

#[derive(serde::Deserialize)]
struct ApiError {
    #[serde(default)]
    err_code: u64,
    #[serde(default)]
    description: String,
}

#[derive(serde::Deserialize)]
struct BatchAck {
    #[serde(default)]
    error: Option<ApiError>,
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    count: u64,
}

/// What one attempt at a batch came to.
enum Attempt {
    /// Acknowledged: the stream seq of the batch's last message.
    Stored(u64),
    /// Refused before anything was stored (or not known): look at the stream.
    Unknown(String),
}

/// Publishes `messages` as one atomic batch after stream seq `last` of `stream_name`; returns
/// the stream seq of the last one. Retries until the store's timeout when the cluster does
/// not answer; when a retry is refused because the stream moved, reads the tail to learn
/// whether the first attempt landed.
fn publish_batch(
    shared: &Arc<Shared>,
    stream_name: &str,
    origin: Nation,
    last: u64,
    messages: Vec<(String, HeaderMap, Bytes)>,
) -> Result<u64, StoreError> {
    let deadline = Instant::now() + shared.timeout;
    let n = messages.len() as u64;
    let mut why = String::new();
    while Instant::now() < deadline {
        let client = shared.client.clone();
        let msgs = messages.clone();
        let per_try = shared.timeout.min(Duration::from_secs(5));
        let attempt = shared
            .bridge
            .run(async move {
                tokio::time::timeout(per_try, attempt_batch(&client, last, msgs))
                    .await
                    .unwrap_or_else(|_| Attempt::Unknown(format!("no acknowledgement within {per_try:?}")))
            })
            .map_err(|e| unavailable("publish", e))?;
        match attempt {
            Attempt::Stored(seq) if seq == last + n => return Ok(seq),
            Attempt::Stored(seq) => {
                return Err(StoreError::Superseded(format!(
                    "stream {stream_name} acknowledged a batch of {n} after seq {last} at {seq}: another writer?"
                )))
            }
            Attempt::Unknown(w) => why = w,
        }
        // Did it land? The stream's tail tells.
        let js = shared.js.clone();
        let name = stream_name.to_string();
        let tail = messages.last().map(|m| m.2.clone()).unwrap_or_default();
        let landed = shared.bridge.run(async move {
            let probe = async {
                let mut s = js.get_stream(&name).await.map_err(|e| e.to_string())?;
                let at = s.info().await.map_err(|e| e.to_string())?.state.last_sequence;
                if at == last {
                    return Ok(None);
                }
                if at != last + n {
                    // Moved, and not by this batch alone.
                    return Ok(Some((at, false)));
                }
                let m = s.get_raw_message(last + n).await.map_err(|e| e.to_string())?;
                Ok::<_, String>(Some((at, m.payload == tail)))
            };
            tokio::time::timeout(Duration::from_secs(2), probe).await.unwrap_or_else(|_| Err("timed out".into()))
        });
        match landed {
            Ok(Ok(None)) => {}
            Ok(Ok(Some((at, true)))) if at == last + n => return Ok(at),
            Ok(Ok(Some((at, _)))) => {
                return Err(StoreError::Superseded(format!(
                    "{origin}'s stream {stream_name} is at seq {at}, not {last} as this writer left it: another \
                     process writes this log ({why})"
                )))
            }
            Ok(Err(e)) => why = format!("{why}; then {e}"),
            Err(e) => return Err(unavailable("publish", e)),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(StoreError::Unavailable(format!(
        "{origin}'s stream {stream_name}: batch of {n} after seq {last} not acknowledged within {:?}: {why}",
        shared.timeout
    )))
}

/// A batch id unique across processes and time (the server allows 64 characters).
fn batch_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("tl-{}-{t}-{n}", std::process::id())
}

async fn attempt_batch(client: &async_nats::Client, last: u64, messages: Vec<(String, HeaderMap, Bytes)>) -> Attempt {
    let id = batch_id();
    let n = messages.len();
    for (i, (subject, mut headers, payload)) in messages.into_iter().enumerate() {
        headers.insert("Nats-Batch-Id", id.as_str());
        headers.insert("Nats-Batch-Sequence", (i + 1).to_string());
        if i == 0 {
            headers.insert("Nats-Expected-Last-Sequence", last.to_string());
        }
        let commit = i + 1 == n;
        if commit {
            headers.insert("Nats-Batch-Commit", "1");
        }
        if commit {
            let reply = match client.request_with_headers(subject, headers, payload).await {
                Ok(r) => r,
                Err(e) => return Attempt::Unknown(format!("request: {e}")),
            };
            if reply.payload.is_empty() && !commit {
                continue;
            }
            let ack: BatchAck = match serde_json::from_slice(&reply.payload) {
                Ok(a) => a,
                Err(e) => return Attempt::Unknown(format!("unreadable acknowledgement: {e}")),
            };
            if let Some(err) = ack.error {
                return Attempt::Unknown(format!("refused ({}): {}", err.err_code, err.description));
            }
            if commit {
                if ack.count != n as u64 {
                    return Attempt::Unknown(format!("acknowledged {} of {n} messages", ack.count));
                }
                return Attempt::Stored(ack.seq);
            }
        } else if let Err(e) = client.publish_with_headers(subject, headers, payload).await {
            return Attempt::Unknown(format!("publish: {e}"));
        }
    }
    Attempt::Unknown("empty batch".into())
}

impl LogStore for JetStore {
    fn heads(&self) -> Vec<Chain> {
        self.origins
            .values()
            .filter(|o| o.durable.seq() > 0 || o.last_checkpoint.is_some())
            .map(|o| o.durable.clone())
            .collect()
    }

    fn append_record(&mut self, origin: Nation, bytes: &[u8]) -> Result<(), StoreError> {
        let log = self.origin_mut(origin)?;
        let r = log.chain.verify_next(bytes).map_err(|source| StoreError::Rejected { origin, source })?;
        log.buf.push(Frame { kind: Kind::Record, seq: r.seq, bytes: Bytes::copy_from_slice(bytes) });
        Ok(())
    }

    fn append_withheld(&mut self, origin: Nation, bytes: &[u8]) -> Result<(), StoreError> {
        let owner = self.owner;
        let log = self.origin_mut(origin)?;
        let stub = log.chain.verify_withheld(bytes).map_err(|source| StoreError::Rejected { origin, source })?;
        let owed = owner.is_some_and(|o| ledger::chain::owed_to(o, &stub));
        if owed {
            if let Ok(d) = <ledger::Hash>::try_from(stub.digest.as_slice()) {
                log.owed.insert(stub.seq, d);
            }
        }
        let kind = if owed { Kind::Owed } else { Kind::Withheld };
        log.buf.push(Frame { kind, seq: stub.seq, bytes: Bytes::copy_from_slice(bytes) });
        Ok(())
    }

    fn append_fill(&mut self, origin: Nation, bytes: &[u8]) -> Result<u64, StoreError> {
        let log = self.origin_mut(origin)?;
        let seq = ledger::store::take_owed(&mut log.owed, origin, bytes)?;
        log.pending_fills.push((seq, bytes.to_vec()));
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
        proof: &ledger::Proven,
        trusted: Option<&VerifyingKey>,
    ) -> Result<(), StoreError> {
        let log = self.origin_mut(origin)?;
        log.chain.accept_proven(bytes, proof, trusted).map_err(|source| StoreError::Rejected { origin, source })?;
        log.buffer_checkpoint(bytes);
        Ok(())
    }

    fn failure(&self) -> Option<StoreError> {
        // A follower never writes: that is not a failure anything should mend.
        self.refusal().filter(|_| !self.follow)
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        if let Some(e) = self.refusal() {
            return Err(e);
        }
        for log in self.origins.values() {
            if log.checkpointed.seq() != log.chain.seq() {
                let why = format!(
                    "{} records of {} lack a checkpoint",
                    log.chain.seq() - log.checkpointed.seq(),
                    log.chain.origin()
                );
                self.failed = Some(why.clone());
                return Err(StoreError::Failed(why));
            }
        }
        let origins: Vec<Nation> = self.origins.keys().copied().collect();
        for origin in origins {
            if let Err(e) = self.commit_origin(origin) {
                // What the cluster holds is now unknown to this process: stop, and let the
                // next open read it.
                self.superseded = matches!(e, StoreError::Superseded(_));
                self.failed = Some(match &e {
                    StoreError::Superseded(why) => why.clone(),
                    e => e.to_string(),
                });
                return Err(e);
            }
            if let Some(log) = self.origins.get_mut(&origin) {
                if let Some(cp) = log.pending_checkpoint.take() {
                    log.last_checkpoint = Some(cp);
                }
                log.durable = log.checkpointed.clone();
            }
        }
        Ok(())
    }

    fn ends_reader(&self) -> Option<Box<dyn EndsReader>> {
        self.follow.then(|| {
            Box::new(FollowEnds { shared: self.shared.clone(), prefix: self.prefix.clone() }) as Box<dyn EndsReader>
        })
    }

    fn apply_ends(&mut self, ends: Vec<LogEnd>) -> Result<(), StoreError> {
        if !self.follow {
            return Ok(());
        }
        for LogEnd { origin, covers, position, checkpoint } in ends {
            let head = <wire::SignedCheckpoint as prost::Message>::decode(checkpoint.as_slice())
                .ok()
                .and_then(|s| <wire::Checkpoint as prost::Message>::decode(s.checkpoint.as_slice()).ok())
                .and_then(|c| <ledger::Hash>::try_from(c.head_hash.as_slice()).ok())
                .ok_or_else(|| StoreError::CorruptStream {
                    stream: Names::new(&self.prefix, origin).log,
                    origin,
                    seq: position,
                    why: "the last checkpoint does not decode".into(),
                })?;
            let prefix = &self.prefix;
            let log = self.origins.entry(origin).or_insert_with(|| OriginLog::empty(prefix, origin));
            let chain = Chain::resume(origin, covers, head, covers);
            log.chain = chain.clone();
            log.checkpointed = chain.clone();
            log.durable = chain;
            log.stream_last = position;
            log.last_checkpoint = Some(checkpoint);
        }
        Ok(())
    }

    fn read(&self, origin: Nation, from_seq: u64, max: usize) -> Result<Vec<StoredRecord>, StoreError> {
        self.reader(origin, from_seq, max, usize::MAX).records()
    }

    fn read_entries(&self, origin: Nation, from_seq: u64, max: usize) -> Result<Vec<Entry>, StoreError> {
        self.reader(origin, from_seq, max, usize::MAX).entries()
    }

    fn last_checkpoint(&self, origin: Nation) -> Option<Vec<u8>> {
        self.origins.get(&origin).and_then(|o| o.last_checkpoint.clone())
    }

    fn reader(&self, origin: Nation, from_seq: u64, max: usize, max_bytes: usize) -> Box<dyn Reader> {
        let mut plan = Plan {
            shared: self.shared.clone(),
            origin,
            names: Names::new(&self.prefix, origin),
            from_seq: from_seq.max(1),
            last: 0,
            stream_last: 0,
            max: max.min(MAX_READ_RECORDS),
            max_bytes,
            fills: BTreeMap::new(),
            index: Arc::new(Mutex::new(BTreeMap::new())),
            follow: self.follow,
        };
        if let Some(log) = self.origins.get(&origin) {
            plan.last = log.durable.covered().min(log.durable.seq());
            plan.stream_last = log.stream_last;
            plan.fills = log.fills.range(plan.from_seq..=plan.last).map(|(&s, &a)| (s, a)).collect();
            plan.index = log.index.clone();
        }
        Box::new(plan)
    }
}

/// A read planned under the store's lock and run without it.
struct Plan {
    shared: Arc<Shared>,
    origin: Nation,
    names: Names,
    from_seq: u64,
    /// Last readable record seq (covered and committed).
    last: u64,
    /// Stream seq of the last committed message.
    stream_last: u64,
    max: usize,
    max_bytes: usize,
    fills: BTreeMap<u64, u64>,
    index: Arc<Mutex<BTreeMap<u64, u64>>>,
    /// Look up `last` and `stream_last` when the read runs (a follower's store).
    follow: bool,
}

/// The end of what is readable in a stream now: (last covered record seq, stream seq of the
/// checkpoint covering it, that checkpoint).
async fn readable_end(
    js: &jetstream::Context,
    names: &Names,
    origin: Nation,
) -> Result<(u64, u64, Option<Bytes>), StoreError> {
    let info = again(
        || async {
            let mut s = js.get_stream(&names.log).await.map_err(|e| e.to_string())?;
            s.info().await.map(|i| i.state.last_sequence).map_err(|e| e.to_string())
        },
        |e: &String| !e.contains("not found"),
    )
    .await;
    let mut at = match info {
        Ok(at) => at,
        Err(e) if e.contains("not found") => return Ok((0, 0, None)),
        Err(e) => return Err(unavailable("read the stream's end", e)),
    };
    let stream = js.get_stream_no_info(&names.log).await.map_err(|e| unavailable("open stream", e))?;
    while at > 0 {
        let f = get_frame(&stream, names, origin, at).await?;
        if f.kind == Kind::Checkpoint {
            return Ok((f.seq, at, Some(f.bytes)));
        }
        at -= 1;
    }
    Ok((0, 0, None))
}

impl Plan {
    fn scan(&self, with_checkpoints: bool) -> Result<Vec<Entry>, StoreError> {
        if (self.from_seq > self.last && !self.follow) || self.max == 0 {
            return Ok(Vec::new());
        }
        let follow = self.follow;
        let (origin, from_seq, last, max, max_bytes) =
            (self.origin, self.from_seq, self.last, self.max, self.max_bytes);
        let stream_last = self.stream_last;
        let names = self.names.clone();
        let fills = self.fills.clone();
        let index = self.index.clone();
        let js = self.shared.js.clone();
        self.shared.run("read the log", async move {
            let (last, stream_last) = if follow {
                let (last, at, _) = readable_end(&js, &names, origin).await?;
                (last, at)
            } else {
                (last, stream_last)
            };
            if from_seq > last {
                return Ok(Vec::new());
            }
            let stream = js.get_stream_no_info(&names.log).await.map_err(|e| unavailable("open stream", e))?;
            let fills_stream = js.get_stream_no_info(&names.fills).await.map_err(|e| unavailable("open stream", e))?;
            let start = locate(&stream, &names, origin, from_seq, stream_last, &index).await?;
            let mut out = Vec::new();
            let (mut count, mut bytes_read, mut done) = (0usize, 0usize, false);
            let mut at = start;
            while !done && at <= stream_last {
                let window = (READ_AHEAD as u64 * 4).min(stream_last - at + 1);
                let frames: Vec<Result<Frame, StoreError>> = futures::stream::iter(at..at + window)
                    .map(|s| {
                        let (stream, names) = (&stream, &names);
                        async move { get_frame(stream, names, origin, s).await }
                    })
                    .buffered(READ_AHEAD)
                    .collect()
                    .await;
                for f in frames {
                    let f = f?;
                    at += 1;
                    match f.kind {
                        Kind::Checkpoint => {
                            // A copy over the same head (a writer's open fences with one) is
                            // given once.
                            let again = matches!(out.last(), Some(Entry::Checkpoint { seq, .. }) if *seq == f.seq);
                            if with_checkpoints && count > 0 && !again {
                                out.push(Entry::Checkpoint { seq: f.seq, bytes: f.bytes.to_vec() });
                                if count >= max || bytes_read >= max_bytes || f.seq >= last {
                                    done = true;
                                }
                            }
                        }
                        kind => {
                            if f.seq > last {
                                done = true;
                            } else if f.seq >= from_seq {
                                let entry = match (kind, fills.get(&f.seq)) {
                                    (Kind::Record, _) => {
                                        Entry::Record(StoredRecord { seq: f.seq, bytes: f.bytes.to_vec() })
                                    }
                                    (_, Some(&fill_at)) => {
                                        let m = fills_stream
                                            .get_raw_message(fill_at)
                                            .await
                                            .map_err(|e| unavailable("read a fill", e))?;
                                        Entry::Record(StoredRecord { seq: f.seq, bytes: m.payload.to_vec() })
                                    }
                                    _ => Entry::Withheld { seq: f.seq, bytes: f.bytes.to_vec() },
                                };
                                bytes_read += match &entry {
                                    Entry::Record(r) => r.bytes.len(),
                                    Entry::Withheld { bytes, .. } | Entry::Checkpoint { bytes, .. } => bytes.len(),
                                };
                                out.push(entry);
                                count += 1;
                                if !with_checkpoints && (count >= max || f.seq >= last) {
                                    done = true;
                                }
                            }
                        }
                    }
                    if done {
                        break;
                    }
                }
            }
            if with_checkpoints {
                while out.last().is_some_and(|e| !matches!(e, Entry::Checkpoint { .. })) {
                    out.pop();
                }
            }
            Ok(out)
        })
    }
}

/// The stream seq of record `seq`: the first message that is a record or stub with seq ≥
/// `seq`, or a checkpoint covering ≥ `seq` (monotone in stream seq), by binary search between
/// the nearest known points.
async fn locate(
    stream: &stream::Stream<()>,
    names: &Names,
    origin: Nation,
    seq: u64,
    stream_last: u64,
    index: &Arc<Mutex<BTreeMap<u64, u64>>>,
) -> Result<u64, StoreError> {
    // Record `seq` is at stream seq ≥ seq (checkpoints only add), and before the stream seq of
    // any known later record.
    let (mut lo, mut hi) = (seq, stream_last + 1);
    {
        let index = index.lock().map_err(|_| poisoned())?;
        if let Some((&s, &at)) = index.range(..=seq).next_back() {
            lo = lo.max(at + (seq - s));
            if s == seq {
                return Ok(at);
            }
        }
        if let Some((_, &at)) = index.range(seq + 1..).next() {
            hi = hi.min(at);
        }
    }
    let mut hi = hi.max(lo);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let f = get_frame(stream, names, origin, mid).await?;
        // A checkpoint carries the seq it covers, which sits before it: the same test holds.
        if f.seq >= seq {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    if let Ok(mut index) = index.lock() {
        let due = index.range(..=seq).next_back().is_none_or(|(&k, _)| seq / INDEX_STRIDE != k / INDEX_STRIDE);
        if due && lo <= stream_last {
            index.insert(seq, lo);
        }
    }
    Ok(lo)
}

impl Reader for Plan {
    fn records(&self) -> Result<Vec<StoredRecord>, StoreError> {
        Ok(self
            .scan(false)?
            .into_iter()
            .filter_map(|e| match e {
                Entry::Record(r) => Some(r),
                _ => None,
            })
            .collect())
    }

    fn entries(&self) -> Result<Vec<Entry>, StoreError> {
        self.scan(true)
    }
}
