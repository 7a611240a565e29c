//! The sending side of links: the `trilink.v1.Federation/Subscribe` service. A verified
//! partner subscribes to origins from its cursors; this node streams what the partner may
//! hold (records in full, stubs otherwise), each batch ending on a checkpoint and recorded in
//! the release audit log before it leaves; the partner acknowledges what it made durable.
//! The node's own records are read as soon as they are written and their decision recorded
//! while their sync runs; the batch leaves once they are durable.
//! At most `WINDOW_RECORDS` unacknowledged per origin and `MAX_UNACKED_BYTES` per
//! subscription: a receiver that stops acknowledging stops the flow (explicit backpressure),
//! and one that acknowledges nothing for `ACK_LIMIT` is dropped. A partner has at most
//! `SUBSCRIPTIONS_PER_PARTNER` at a time: a new one ends the oldest.

use crate::ctx::{Ctx, ACK_LIMIT, BATCH_RECORDS, HEARTBEAT, MAX_UNACKED_BYTES, SILENCE_LIMIT, WINDOW_RECORDS};
use crate::protocol::{another_chain, egress, head_at, head_cursor, Sender, MAX_BATCH_BYTES, MAX_SUBSCRIBED};
use crate::tls::PeerInfo;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use vocab::Nation;
use wire::{link_down, link_up, LinkDown, LinkHeartbeat, LinkUp};

#[derive(Debug, Clone)]
pub struct Service {
    pub ctx: Ctx,
    /// Per partner, the generation of its live subscription (a newer one replaces it) and
    /// when it began.
    pub live: Arc<Mutex<BTreeMap<Nation, Latest>>>,
}

/// A partner's subscription counter (bumped by each new one) and when its latest began.
type Latest = (watch::Sender<u64>, tokio::time::Instant);

impl Service {
    pub fn new(ctx: Ctx) -> Service {
        Service { ctx, live: Arc::default() }
    }
}

/// A subscription's place: its generation, and the partner's latest.
#[derive(Debug)]
struct Place {
    generation: u64,
    latest: watch::Receiver<u64>,
    /// How long to wait before the first read.
    settle: std::time::Duration,
}

impl Place {
    fn is_replaced(&self) -> bool {
        *self.latest.borrow() >= self.generation + SUBSCRIPTIONS_PER_PARTNER
    }

    /// Resolves once `SUBSCRIPTIONS_PER_PARTNER` newer subscriptions of the same partner have
    /// arrived.
    async fn replaced(&mut self) {
        let generation = self.generation;
        let _ = self.latest.wait_for(|g| *g >= generation + SUBSCRIPTIONS_PER_PARTNER).await;
    }
}

/// Subscriptions one partner may have at once (its link's, and one more: a link re-dialling
/// before its old connection is known dead, or `trilink recover`); a newer one ends the oldest.
pub const SUBSCRIPTIONS_PER_PARTNER: u64 = 2;

#[tonic::async_trait]
impl wire::federation_server::Federation for Service {
    type SubscribeStream = ReceiverStream<Result<LinkDown, Status>>;

    async fn subscribe(&self, req: Request<Streaming<LinkUp>>) -> Result<Response<Self::SubscribeStream>, Status> {
        let Some(peer) = req.extensions().get::<PeerInfo>().cloned() else {
            return Err(Status::unauthenticated("federation requires a verified partner certificate"));
        };
        let (tx, rx) = mpsc::channel(2);
        let ctx = self.ctx.clone();
        let up = req.into_inner();
        let mut place = {
            let mut live = self.live.lock().map_err(|_| Status::internal("lock poisoned"))?;
            let now = tokio::time::Instant::now();
            let (latest, began) =
                live.entry(peer.nation).or_insert_with(|| (watch::channel(0).0, now - RESUBSCRIBE_AFTER));
            // A subscription that replaces one begun less than a second ago waits out the
            // second before it reads anything: whoever opens subscriptions faster than a link
            // re-dials makes this node read for one of them a second at most.
            let settle = RESUBSCRIBE_AFTER.saturating_sub(now.duration_since(*began));
            *began = now;
            latest.send_modify(|g| *g += 1);
            let generation = *latest.borrow();
            Place { generation, latest: latest.subscribe(), settle }
        };
        tokio::spawn(async move {
            let nation = peer.nation;
            ctx.fed.serve(nation, |s| s.connected = true);
            if let Err(why) = publish(&ctx, &peer, up, &tx, &mut place).await {
                tracing::warn!(peer = %nation, addr = %peer.addr, why, "federation stream to partner closed");
                // The connection is cut, which frees what its buffers hold: at once for a partner
                // that is not reading (or that has a newer subscription), after a moment to read
                // why for one that is.
                let not_reading = why == REPLACED || why.starts_with(NOT_READING);
                let told = tx.try_send(Err(Status::aborted(why))).is_ok();
                if not_reading || !told {
                    peer.cut.cut();
                } else {
                    let cut = peer.cut.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                        cut.cut();
                    });
                }
            }
            // A newer subscription of the partner is the one connected now.
            if *place.latest.borrow() == place.generation {
                ctx.fed.serve(nation, |s| s.connected = false);
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

async fn send(tx: &mpsc::Sender<Result<LinkDown, Status>>, msg: LinkDown, place: &mut Place) -> Result<(), String> {
    tokio::select! {
        sent = tokio::time::timeout(SILENCE_LIMIT, tx.send(Ok(msg))) => match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err("the partner closed the stream".into()),
            Err(_) => Err(format!("{NOT_READING}: it read nothing for {} s", SILENCE_LIMIT.as_secs())),
        },
        _ = place.replaced() => Err(REPLACED.into()),
    }
}

const REPLACED: &str = "replaced by newer subscriptions of the same partner";
/// The least time between the beginnings of two subscriptions of one partner.
const RESUBSCRIBE_AFTER: std::time::Duration = std::time::Duration::from_secs(1);
/// How the ends of a subscription whose partner does not read begin.
const NOT_READING: &str = "the partner is not reading";

/// The batches a subscription has sent and the partner not yet acknowledged: origin, last
/// seq, encoded bytes.
#[derive(Debug, Default)]
struct InFlight {
    batches: VecDeque<(Nation, u64, usize)>,
    bytes: usize,
}

impl InFlight {
    fn sent(&mut self, origin: Nation, last: u64, bytes: usize) {
        self.batches.push_back((origin, last, bytes));
        self.bytes += bytes;
    }

    fn acked(&mut self, origin: Nation, acked: u64) {
        self.batches.retain(|(o, last, _)| !(*o == origin && *last <= acked));
        self.bytes = self.batches.iter().map(|(_, _, b)| b).sum();
    }

    fn clear(&mut self) {
        *self = InFlight::default();
    }
}

async fn publish(
    ctx: &Ctx,
    peer: &PeerInfo,
    mut up: Streaming<LinkUp>,
    tx: &mpsc::Sender<Result<LinkDown, Status>>,
    place: &mut Place,
) -> Result<(), String> {
    let nation = peer.nation;
    let policy = ctx.fed.partners.get(&nation).map(|p| p.release.clone()).ok_or("not a configured partner")?;
    let first = tokio::time::timeout(SILENCE_LIMIT, up.message())
        .await
        .map_err(|_| format!("no subscription within {} s", SILENCE_LIMIT.as_secs()))?
        .map_err(|e| format!("stream failed: {e}"))?
        .ok_or("stream closed before subscribing")?;
    if !place.settle.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(place.settle) => {}
            _ = place.replaced() => return Err(REPLACED.into()),
        }
    }
    let mut sender = Sender::new(ctx.fed.me, ctx.fed.relay, nation);
    // Relayed origins whose cursor this node could not check yet (its log is behind it).
    let mut unchecked = Unchecked::new();
    match first.msg {
        Some(link_up::Msg::Subscribe(s)) => take_subscription(ctx, &mut sender, &mut unchecked, nation, &s)?,
        _ => return Err("the first message must be a subscription".into()),
    }
    tracing::info!(peer = %nation, origins = ?sender.cursors().keys().collect::<Vec<_>>(), "partner subscribed");
    let mut version = ctx.version.subscribe();
    let mut stop = ctx.stop.clone();
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut in_flight = InFlight::default();
    // When the partner last acknowledged something, or had nothing to acknowledge.
    let mut last_progress = tokio::time::Instant::now();
    loop {
        // Send everything there is room for, one batch per origin in turn.
        let mut sent_any = false;
        for (origin, from) in sender.wanted(WINDOW_RECORDS) {
            if in_flight.bytes >= MAX_UNACKED_BYTES {
                break;
            }
            if place.is_replaced() {
                return Err(REPLACED.into());
            }
            if !check_later(ctx, &mut sender, &mut unchecked, nation, origin) {
                continue;
            }
            // Read, decide and record the decision as blocking work (the read and the release
            // log's sync are file I/O: `crate::ctx::blocking`). The node's own records are read as
            // soon as they are written, so that the release log's sync runs alongside the log's
            // own.
            let own = origin == ctx.fed.me;
            let (store, fed, policy) = (ctx.store.clone(), ctx.fed.clone(), policy.clone());
            let step = crate::ctx::blocking(move || -> Result<_, String> {
                let plan = {
                    let store = store.lock().map_err(|_| "store lock poisoned".to_string())?;
                    if own {
                        store.reader_ahead(origin, from, BATCH_RECORDS, MAX_BATCH_BYTES)
                    } else {
                        store.reader(origin, from, BATCH_RECORDS, MAX_BATCH_BYTES)
                    }
                };
                let entries = plan.entries().map_err(|e| format!("failed to read the log: {e}"))?;
                let Some(last) = entries.last().map(|e| e.seq()) else { return Ok(None) };
                let n = entries.iter().filter(|e| !matches!(e, ledger::Entry::Checkpoint { .. })).count() as u64;
                let (batch, decision) = egress(origin, entries, nation, &policy);
                // The decision is durable in the release audit before the batch leaves.
                fed.releases
                    .lock()
                    .map_err(|_| "release log poisoned".to_string())?
                    .record(&decision)
                    .map_err(|e| format!("failed to record the release decision, nothing sent: {e}"))?;
                Ok(Some((batch, last, n, decision.withheld_seqs.len() as u64)))
            })
            .await??;
            let Some((batch, last, n, withheld)) = step else { continue };
            if own {
                // Nothing leaves before it is durable here.
                durable(ctx, last, &mut version).await?;
            }
            let bytes = prost::Message::encoded_len(&batch);
            if !sender.awaiting_ack() {
                last_progress = tokio::time::Instant::now();
            }
            send(tx, LinkDown { msg: Some(link_down::Msg::Batch(batch)) }, place).await?;
            sender.sent(origin, last);
            in_flight.sent(origin, last, bytes);
            sent_any = true;
            ctx.fed.serve(nation, |s| {
                s.batches += 1;
                s.records_sent += n;
                s.withheld += withheld;
                s.sent.insert(origin.to_string(), last);
            });
        }
        // Take whatever the partner said meanwhile without waiting.
        if sent_any {
            while let Some(Some(msg)) = futures::FutureExt::now_or_never(up.message()).map(|r| r.ok().flatten()) {
                if handle_up(ctx, nation, msg, &mut sender, &mut unchecked, &mut in_flight)? {
                    last_progress = tokio::time::Instant::now();
                }
            }
            continue;
        }
        tokio::select! {
            msg = up.message() => match msg {
                Ok(Some(msg)) => {
                    if handle_up(ctx, nation, msg, &mut sender, &mut unchecked, &mut in_flight)? {
                        last_progress = tokio::time::Instant::now();
                    }
                }
                Ok(None) => return Ok(()),
                Err(e) => return Err(format!("stream failed: {e}")),
            },
            _ = version.changed() => {}
            _ = place.replaced() => return Err(REPLACED.into()),
            _ = heartbeat.tick() => {
                if !sender.awaiting_ack() {
                    last_progress = tokio::time::Instant::now();
                } else if last_progress.elapsed() > ACK_LIMIT {
                    return Err(format!(
                        "{NOT_READING}: no acknowledgement for {} s ({} bytes unacknowledged)",
                        ACK_LIMIT.as_secs(),
                        in_flight.bytes
                    ));
                }
                let heads = {
                    let store = ctx.store.lock().map_err(|_| "store lock poisoned")?;
                    store.heads()
                };
                let heads = heads
                    .iter()
                    .filter(|c| sender.cursors().contains_key(&c.origin()))
                    .map(head_cursor)
                    .collect();
                let hb = LinkHeartbeat { time_unix_ns: journal::wall_clock().as_nanos(), heads };
                send(tx, LinkDown { msg: Some(link_down::Msg::Heartbeat(hb)) }, place).await?;
            }
            _ = stop.changed() => return Ok(()),
        }
    }
}

/// Waits until the node's own log is durable through `seq` (its writer publishes each group
/// after its sync). A log that stops committing (a failed disk) stops the stream.
async fn durable(ctx: &Ctx, seq: u64, version: &mut tokio::sync::watch::Receiver<u64>) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + SILENCE_LIMIT;
    let mut stop = ctx.stop.clone();
    while ctx.head.load(std::sync::atomic::Ordering::Acquire) < seq {
        tokio::select! {
            changed = version.changed() => changed.map_err(|_| "the node is stopping")?,
            _ = stop.changed() => return Err("the node is stopping".into()),
            _ = tokio::time::sleep_until(deadline) => {
                return Err(format!("the log did not make seq {seq} durable within {} s", SILENCE_LIMIT.as_secs()));
            }
        }
    }
    Ok(())
}

/// Takes a subscription, and serves no origin whose chain the partner holds differently.
///
/// A cursor of this node's own origin past its log's durable head, or at a seq where the
/// partner's head hash differs from this log's, means the partner holds records this log has
/// lost (restored from an old copy, or a disk that lost acknowledged writes; in the second
/// case the log has since sealed other records under seqs it had used): what this node sends
/// from there on would fork the chain the partner holds, and the partner would refuse it as a
/// broken chain, batch after batch. Its own records are then not sent to that partner, and the
/// operator is told why (`own_log_behind`). A relayed origin whose chain the partner holds
/// with another head than this node does forked the same way at its origin, and the two nodes
/// hold one branch each: it is not relayed to that partner (`forked`). A relayed origin's
/// cursor past this node's head cannot be checked yet: it is kept in `unchecked` and checked
/// before the first batch of that origin is read for the partner (`check_later`).
fn subscribe(ctx: &Ctx, sender: &mut Sender, unchecked: &mut Unchecked, peer: Nation, cursors: &[wire::OriginCursor]) {
    let me = ctx.fed.me;
    for origin in sender.subscribe(cursors) {
        tracing::info!(%peer, origin, "subscription not served (not this node's origin and relay is off, the peer's own, not a nation, or a cursor no log reaches)");
    }
    // Each origin once, as the sender takes it (the last cursor of it), and none from a
    // subscription too large to serve: a partner cannot make this node read its log once for
    // every cursor it sends.
    let named: BTreeMap<Nation, &wire::OriginCursor> = if cursors.len() > MAX_SUBSCRIBED {
        BTreeMap::new()
    } else {
        cursors.iter().filter_map(|c| Some((Nation::parse(&c.origin).ok()?, c))).collect()
    };
    let mut own = None;
    let mut forked = BTreeMap::new();
    for (origin, c) in named {
        // A resubscription replaces what was left to check of the origins it names.
        unchecked.remove(&origin);
        if !sender.cursors().contains_key(&origin) && origin != me {
            continue;
        }
        let why = match chain_differs(ctx, peer, origin, c) {
            Verdict::Same => None,
            Verdict::Later => {
                unchecked.insert(origin, c.clone());
                None
            }
            Verdict::Another(why) => {
                tracing::error!(%peer, %origin, held_by_peer = c.seq, "{why}");
                sender.unsubscribe(origin);
                Some(why)
            }
        };
        if origin == me {
            own = Some(why);
        } else {
            forked.insert(origin.to_string(), why);
        }
    }
    // A resubscription says nothing of the origins it does not name (after a gap, one).
    ctx.fed.serve(peer, |s| {
        if let Some(own) = own {
            s.own_log_behind = own;
        }
        for (origin, why) in forked {
            match why {
                Some(why) => s.forked.insert(origin, why),
                None => s.forked.remove(&origin),
            };
        }
    });
}

/// Relayed origins of one subscription whose cursor is past this node's head, with the cursor.
type Unchecked = BTreeMap<Nation, wire::OriginCursor>;

/// Whether `origin`'s records may be read for `peer` now. A cursor left unchecked at the
/// subscription is checked once this node's log reaches it (before the first batch after it
/// is read: a relay that was behind the partner and has since taken the other branch of a
/// forked origin sends none of it); until then there is nothing past it to send.
fn check_later(ctx: &Ctx, sender: &mut Sender, unchecked: &mut Unchecked, peer: Nation, origin: Nation) -> bool {
    let Some(cursor) = unchecked.get(&origin) else { return true };
    match chain_differs(ctx, peer, origin, cursor) {
        Verdict::Later => false,
        Verdict::Same => {
            unchecked.remove(&origin);
            true
        }
        Verdict::Another(why) => {
            tracing::error!(%peer, %origin, held_by_peer = cursor.seq, "{why}");
            unchecked.remove(&origin);
            sender.unsubscribe(origin);
            ctx.fed.serve(peer, |s| s.forked.insert(origin.to_string(), why));
            false
        }
    }
}

/// What a partner's cursor says of the chain it holds against this node's log.
enum Verdict {
    /// On this log's chain, or nothing to check (no head hash, nothing held).
    Same,
    /// Past this node's head of a relayed origin: checked once the log reaches it.
    Later,
    /// Another chain than this log's, and why.
    Another(String),
}

/// Whether `peer`, subscribing to `origin`'s records from `cursor`, holds a chain of them that
/// this node's log does not.
fn chain_differs(ctx: &Ctx, peer: Nation, origin: Nation, cursor: &wire::OriginCursor) -> Verdict {
    let me = ctx.fed.me;
    let held = cursor.seq;
    let head = if origin == me {
        ctx.head.load(std::sync::atomic::Ordering::Acquire)
    } else {
        let heads = ctx.store.lock().map(|s| s.heads()).unwrap_or_default();
        heads.iter().find(|c| c.origin() == origin).map_or(0, |c| c.seq())
    };
    let lost =
        "it has lost records it had made durable (restored from an old copy, or a disk that lost acknowledged writes)";
    // Made only for a verdict that needs it: a cursor left to check later is judged on every
    // turn of the sender's loop until the log reaches it.
    let kept = || format!("so none are sent to {peer}; the records this log lost are held at {peer}, signed by {me}");
    if origin == me && held > head {
        return Verdict::Another(format!(
            "{peer} holds {me}'s records up to seq {held}, but this node's log ends at {head}: {lost}; its records \
             after {head} would fork the chain {peer} holds, {}. If this node has sealed nothing since its log went \
             back, stop it and run `trilink recover` to take them back (docs/federation.md, \"A log that went back\")",
            kept()
        ));
    }
    if held == 0 || cursor.head_hash.is_empty() {
        return Verdict::Same;
    }
    if held > head {
        return Verdict::Later;
    }
    // Read without holding the store (the record or stub at `held`, to its group's end).
    let plan = ctx.store.lock().map(|store| store.reader(origin, held, 1, MAX_BATCH_BYTES));
    let ours = plan
        .map_err(|_| "store lock poisoned".to_string())
        .and_then(|plan| plan.entries().map_err(|e| e.to_string()))
        .and_then(|entries| head_at(&entries, held));
    match ours {
        Ok(ours) if !another_chain(cursor, ours) => Verdict::Same,
        Ok(_) if origin == me => Verdict::Another(format!(
            "{peer} holds {me}'s records up to seq {held}, but with another chain than this node's log has there: {lost}, \
             and has since sealed other records under seqs it had used; its records after {held} would fork the chain \
             {peer} holds, {}",
            kept()
        )),
        Ok(_) if origin == peer => Verdict::Another(format!(
            "{peer} asks for its own records back from seq {held}, but with another chain than this node holds: its \
             log went back and has since sealed other records under seqs it had used; nothing is given back"
        )),
        Ok(_) => Verdict::Another(format!(
            "{peer} holds {origin}'s records up to seq {held}, but with another chain than this node holds: {origin}'s \
             log forked (it went back and sealed other records under seqs it had used), and each node holds one branch, \
             both signed by {origin}; {origin}'s records are not relayed to {peer}"
        )),
        Err(e) => {
            // Not known to differ: served as before, and a fork is still refused by the partner.
            tracing::warn!(%peer, %origin, seq = held, error = %e, "could not read the log to check a partner's cursor");
            Verdict::Same
        }
    }
}

/// Takes one message of the partner; returns whether it acknowledged something new.
fn handle_up(
    ctx: &Ctx,
    nation: Nation,
    msg: LinkUp,
    sender: &mut Sender,
    unchecked: &mut Unchecked,
    in_flight: &mut InFlight,
) -> Result<bool, String> {
    match msg.msg {
        Some(link_up::Msg::Ack(a)) => {
            let before = Nation::parse(&a.origin).ok().and_then(|o| sender.cursors().get(&o).map(|c| c.acked));
            if let Some((origin, acked)) = sender.ack(&a.origin, a.seq) {
                in_flight.acked(origin, acked);
                ctx.fed.serve(nation, |s| {
                    s.acked.insert(origin.to_string(), acked);
                });
                return Ok(before.is_some_and(|b| acked > b));
            }
        }
        // A resubscription restarts those origins from the receiver's cursor (after a gap):
        // what was in flight will not be acknowledged.
        Some(link_up::Msg::Subscribe(s)) => {
            in_flight.clear();
            take_subscription(ctx, sender, unchecked, nation, &s)?;
            return Ok(true);
        }
        None => {}
    }
    Ok(false)
}

fn take_subscription(
    ctx: &Ctx,
    sender: &mut Sender,
    unchecked: &mut Unchecked,
    peer: Nation,
    s: &wire::Subscription,
) -> Result<(), String> {
    if s.give_back {
        give_back(ctx, sender, peer, &s.cursors)
    } else {
        subscribe(ctx, sender, unchecked, peer, &s.cursors);
        Ok(())
    }
}

/// Takes a give-back subscription (`trilink recover` at a partner whose log lost records it had
/// made durable): the partner's own records from its cursor, as this node holds them. A cursor
/// whose head hash differs from this node's chain of the partner's origin means the partner's
/// log has since sealed other records under seqs it had used: nothing is given back, and the
/// stream ends saying so.
fn give_back(ctx: &Ctx, sender: &mut Sender, peer: Nation, cursors: &[wire::OriginCursor]) -> Result<(), String> {
    sender.give_back(cursors)?;
    if let [c] = cursors {
        if let Verdict::Another(why) = chain_differs(ctx, peer, peer, c) {
            tracing::error!(%peer, held_by_peer = c.seq, "{why}");
            return Err(why);
        }
    }
    tracing::info!(%peer, from = cursors.first().map_or(0, |c| c.seq), "giving the partner its own records back");
    Ok(())
}
