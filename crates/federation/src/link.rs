//! The receiving side of a link: one task per partner with an `address`. It dials, subscribes
//! to the origins this node wants from that partner from its own cursors (the partner's own
//! origin, and every other trusted origin if relay from it is accepted), applies each batch
//! (`protocol::apply`: verified whole, appended, synced) and acknowledges it, hands new records
//! to fusion, and measures lag from heartbeats. A dropped link is redialled with backoff and
//! resumes from the log's cursors: nothing is lost, nothing applied twice.

use crate::ctx::{Ctx, SILENCE_LIMIT};
use crate::protocol::{apply_buffered, wanted_cursors, Applied, Ingress, Outcome, Refusal, MAX_MESSAGE_BYTES};
use journal::Committed;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use vocab::Nation;
use wire::{link_down, link_up, LinkAck, LinkDown, LinkUp, OriginCursor, Subscription};

const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// HTTP/2 receive window of a link, per stream and per connection (one stream a link).
const RECEIVE_WINDOW_BYTES: u32 = 32 << 20;

/// Origins wanted from `partner`, with this node's cursors (`only`: just that origin).
fn cursors(ctx: &Ctx, partner: Nation, only: Option<Nation>) -> Vec<OriginCursor> {
    let accept_relay = ctx.fed.partners.get(&partner).is_some_and(|p| p.accept_relay);
    let Ok(store) = ctx.store.lock() else { return Vec::new() };
    let mut v = wanted_cursors(ctx.fed.me, partner, accept_relay, &ctx.fed.trusted, &**store);
    v.retain(|c| only.is_none_or(|o| c.origin == o.as_str()));
    v
}

/// Runs the link to `partner` until the node stops.
pub async fn run(ctx: Ctx, partner: Nation, addr: SocketAddr) {
    let mut stop = ctx.stop.clone();
    let mut backoff = BACKOFF_MIN;
    loop {
        ctx.fed.link(partner, |l| l.state = "connecting".into());
        let mut was_up = false;
        let result = tokio::select! {
            r = session(&ctx, partner, addr, &mut was_up) => r,
            _ = stop.changed() => return,
        };
        if was_up {
            // A link that came up and then dropped is redialled promptly.
            backoff = BACKOFF_MIN;
        }
        let why = match result {
            Ok(()) => "the partner closed the stream".to_string(),
            Err(e) => e,
        };
        tracing::warn!(%partner, %addr, why, "federation link down; redialling");
        ctx.fed.link(partner, |l| {
            l.state = "down".into();
            l.last_error = Some(why);
        });
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Connects to `partner` at `addr` over mutual TLS as this node (`tls`): the federation
/// client of a link, and of `trilink recover`.
pub async fn dial(
    tls: std::sync::Arc<crate::tls::Tls>,
    partner: Nation,
    addr: SocketAddr,
) -> Result<wire::federation_client::FederationClient<tonic::transport::Channel>, String> {
    let connector = tower::service_fn(move |_: tonic::transport::Uri| {
        let tls = tls.clone();
        async move { tls.connect(partner, addr).await.map(hyper_util::rt::TokioIo::new) }
    });
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(10))
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(10))
        // What the partner may send before this side reads it: enough for the link's window of
        // unacknowledged records over a long-haul round trip (HTTP/2's own default, 2 MiB a
        // stream, held a catch-up over 100 ms each way to 10 MB/s).
        .initial_stream_window_size(RECEIVE_WINDOW_BYTES)
        .initial_connection_window_size(RECEIVE_WINDOW_BYTES)
        .connect_with_connector(connector)
        .await
        .map_err(|e| {
            format!(
                "failed to connect: {e}: {}",
                std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default()
            )
        })?;
    Ok(wire::federation_client::FederationClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
}

async fn session(ctx: &Ctx, partner: Nation, addr: SocketAddr, was_up: &mut bool) -> Result<(), String> {
    let mut client = dial(ctx.fed.tls.clone(), partner, addr).await?;
    let (up, up_rx) = mpsc::channel::<LinkUp>(64);
    let wanted = cursors(ctx, partner, None);
    tracing::info!(%partner, %addr, cursors = ?wanted.iter().map(|c| (c.origin.clone(), c.seq)).collect::<Vec<_>>(), "subscribing");
    up.send(LinkUp { msg: Some(link_up::Msg::Subscribe(Subscription { cursors: wanted, give_back: false })) })
        .await
        .map_err(|_| "subscription not sent")?;
    let mut down = client
        .subscribe(ReceiverStream::new(up_rx))
        .await
        .map_err(|e| format!("subscription refused: {e}"))?
        .into_inner();
    *was_up = true;
    ctx.fed.link(partner, |l| {
        l.state = "up".into();
        l.connects += 1;
        l.last_error = None;
    });
    let accept_relay = ctx.fed.partners.get(&partner).is_some_and(|p| p.accept_relay);
    // The newest owed record of this partner already asked for (the subscription asked for all).
    let mut asked_owed = ctx.store.lock().map(|s| s.owed(partner).last().copied().unwrap_or(0)).unwrap_or(0);
    loop {
        let msg = tokio::time::timeout(SILENCE_LIMIT, down.message())
            .await
            .map_err(|_| format!("nothing heard for {} s", SILENCE_LIMIT.as_secs()))?
            .map_err(|e| format!("stream failed: {e}"))?;
        let Some(msg) = msg else { return Ok(()) };
        let batch = match msg.msg {
            Some(link_down::Msg::Batch(batch)) => batch,
            Some(link_down::Msg::Heartbeat(hb)) => {
                heartbeat(ctx, partner, &hb, &mut asked_owed, &up).await?;
                continue;
            }
            None => continue,
        };
        // Batches already here are applied together and made durable by one sync: a receiver
        // that falls behind catches up in fewer syncs, not more.
        let mut batches = vec![batch];
        let mut next = None;
        while batches.len() < MAX_GATHERED {
            match futures::FutureExt::now_or_never(down.message()) {
                Some(Ok(Some(LinkDown { msg: Some(link_down::Msg::Batch(b)) }))) => batches.push(b),
                Some(other) => {
                    next = Some(other);
                    break;
                }
                None => break,
            }
        }
        let received = journal::wall_clock();
        let c = ctx.clone();
        let Gathered { outs, gaps, refusal, handed } =
            crate::ctx::blocking(move || apply_all(&c, partner, accept_relay, batches)).await?;
        if !outs.is_empty() {
            ctx.fed.link(partner, |l| l.commits += 1);
        }
        for out in outs {
            applied(ctx, partner, out, handed, received, &up).await?;
        }
        for (origin, held, first) in gaps {
            // Another path delivered past this stream's position, or this one skipped: restart
            // the origin from what is held.
            tracing::info!(%partner, %origin, held, first, "gap in a batch; resubscribing from the log's cursor");
            up.send(LinkUp {
                msg: Some(link_up::Msg::Subscribe(Subscription {
                    cursors: cursors(ctx, partner, Some(origin)),
                    give_back: false,
                })),
            })
            .await
            .map_err(|_| "stream closed")?;
        }
        match refusal {
            None => {}
            Some(refusal) => {
                if let Ok(mut m) = ctx.fed.batches_refused.lock() {
                    *m.entry(refusal.reason()).or_default() += 1;
                }
                ctx.fed.link(partner, |l| l.refused += 1);
                tracing::error!(%partner, reason = refusal.reason(), error = %refusal, "batch from partner refused; dropping the link");
                return Err(format!("batch refused: {refusal}"));
            }
        }
        // What ended the gathering: a heartbeat, or the stream's end.
        match next {
            None => {}
            Some(Ok(Some(LinkDown { msg: Some(link_down::Msg::Heartbeat(hb)) }))) => {
                heartbeat(ctx, partner, &hb, &mut asked_owed, &up).await?;
            }
            Some(Ok(Some(_))) => {}
            Some(Ok(None)) => return Ok(()),
            Some(Err(e)) => return Err(format!("stream failed: {e}")),
        }
    }
}

/// At most this many batches already received are applied under one sync.
const MAX_GATHERED: usize = 16;

/// What `apply_all` made of the batches gathered.
struct Gathered {
    /// Each batch kept, durable.
    outs: Vec<Outcome>,
    /// Origins whose stream skipped ahead (origin, held, first seq sent): to resubscribe.
    gaps: Vec<(Nation, u64, u64)>,
    /// A batch refused for anything but a gap: the link is dropped.
    refusal: Option<Refusal>,
    /// The batches' new records went to fusion once written, before their sync.
    handed: bool,
}

/// Verifies and appends each batch in turn, then makes all of them durable with one commit
/// whose sync runs without the store's lock. A gap keeps the rest of that origin's batches out
/// (they follow it) and lets the other origins' through; any other refusal keeps it and
/// everything after it out.
///
/// The new records go to fusion as soon as they are written, while the sync runs: they are
/// verified, and durable at their origin already (a sender lets nothing out before that), so
/// the picture does not wait for this node's disk. A crash before the sync loses them from
/// this log only; the link asks for them again from its cursor, and fusion, rebuilt from the
/// log, takes them again. A commit that fails drops the link the same way, and fusion skips
/// what it already has. Batches that fill owed records go after the sync, as before: a fill
/// may fall behind what fusion has passed, and fusion takes a fill whenever it comes.
fn apply_all(ctx: &Ctx, partner: Nation, accept_relay: bool, batches: Vec<wire::LinkBatch>) -> Gathered {
    let rules = Ingress { me: ctx.fed.me, peer: partner, accept_relay, trusted: &ctx.fed.trusted, own_back: false };
    let failed = |e: Refusal| Gathered { outs: Vec::new(), gaps: Vec::new(), refusal: Some(e), handed: false };
    let mut done = Gathered { outs: Vec::with_capacity(batches.len()), gaps: Vec::new(), refusal: None, handed: false };
    let pending = {
        let Ok(mut store) = ctx.store.lock() else { return failed(Refusal::Store("store lock poisoned".into())) };
        for batch in batches {
            if done.gaps.iter().any(|(o, _, _)| o.as_str() == batch.origin) {
                continue;
            }
            match apply_buffered(&mut **store, &rules, batch) {
                Ok(out) => done.outs.push(out),
                Err(Refusal::Gap { origin, held, first }) => done.gaps.push((origin, held, first)),
                Err(e) => {
                    done.refusal = Some(e);
                    break;
                }
            }
        }
        match store.commit_start() {
            Ok(pending) => pending,
            // Nothing of the batches is durable: none is acknowledged.
            Err(e) => return failed(Refusal::Store(e.to_string())),
        }
    };
    done.handed = hand_early(&mut done.outs, |origin, a| to_fusion(ctx, origin, a, false));
    match journal::finish_commit(&ctx.store, pending) {
        Ok(()) => done,
        Err(e) => failed(Refusal::Store(e.to_string())),
    }
}

/// Hands the new records of batches written but not yet synced to `fusion`, in order, and
/// says whether it did: not when any batch fills owed records (those go after the sync). Each
/// record's body goes; its seq and origin time stay for `applied`, which then hands nothing.
fn hand_early(outs: &mut [Outcome], mut fusion: impl FnMut(Nation, Applied)) -> bool {
    if outs.iter().any(|o| !o.filled.is_empty()) {
        return false;
    }
    for out in outs {
        for a in &mut out.applied {
            let body = std::mem::take(&mut a.body);
            fusion(out.origin, Applied { body, ..*a });
        }
    }
    true
}

/// Hands a partner's record to fusion, without waiting: when fusion is behind and its queue is
/// full, it reads the record from the log itself.
fn to_fusion(ctx: &Ctx, origin: Nation, a: Applied, fill: bool) {
    let origin_time = (!fill).then(|| vocab::UtcNanos::from_nanos(a.origin_time));
    let c = Committed { origin, seq: a.seq, kind: a.kind, body: a.body, arrived: None, fill, origin_time };
    let _ = ctx.to_fusion.try_send(c);
}

/// After a batch is durable: acknowledges it, counts it, measures its latency and hands its
/// new records to fusion (unless `handed`: they went before the sync).
async fn applied(
    ctx: &Ctx,
    partner: Nation,
    out: Outcome,
    handed: bool,
    received: vocab::UtcNanos,
    up: &mpsc::Sender<LinkUp>,
) -> Result<(), String> {
    let origin = out.origin;
    up.send(LinkUp { msg: Some(link_up::Msg::Ack(LinkAck { origin: origin.to_string(), seq: out.head })) })
        .await
        .map_err(|_| "stream closed")?;
    if out.applied.is_empty() && out.stubs == 0 && out.filled.is_empty() {
        return Ok(());
    }
    ctx.version.send_modify(|v| *v += 1);
    let n = out.applied.len() as u64;
    let filled = out.filled.len() as u64;
    for a in out.filled {
        tracing::info!(%partner, %origin, seq = a.seq, "owed record filled");
        to_fusion(ctx, origin, a, true);
    }
    ctx.fed.link(partner, |l| {
        l.batches += 1;
        l.records += n;
        l.filled += filled;
        l.stubs += out.stubs;
        let lag = l.lag.entry(origin.to_string()).or_default();
        let partner_head = lag.held + lag.records;
        lag.update(out.head, partner_head.max(out.head));
    });
    let now = journal::wall_clock();
    for a in out.applied {
        let t = vocab::UtcNanos::from_nanos(a.origin_time);
        ctx.metrics.partner_received.observe(received.secs_since(t));
        ctx.metrics.partner_applied.observe(now.secs_since(t));
        if !handed {
            to_fusion(ctx, origin, a, false);
        }
    }
    Ok(())
}

/// A heartbeat: the partner's heads give this node's lag; records of this partner owed since
/// the last ask (stubs a relay brought) are asked of the partner itself again.
async fn heartbeat(
    ctx: &Ctx,
    partner: Nation,
    hb: &wire::LinkHeartbeat,
    asked_owed: &mut u64,
    up: &mpsc::Sender<LinkUp>,
) -> Result<(), String> {
    let (heads, owed) = ctx.store.lock().map(|s| (s.heads(), s.owed(partner))).unwrap_or_default();
    if let Some(&newest) = owed.last() {
        if newest > *asked_owed {
            // From the first owed, not the first new one: the ask restarts the stream, so it
            // must cover what an earlier ask may not have reached.
            let first = owed[0];
            *asked_owed = newest;
            let cursor = OriginCursor { origin: partner.to_string(), seq: first - 1, head_hash: Vec::new() };
            tracing::info!(%partner, from = first, owed = owed.len(), "asking the origin for records a relay could not carry");
            up.send(LinkUp {
                msg: Some(link_up::Msg::Subscribe(Subscription { cursors: vec![cursor], give_back: false })),
            })
            .await
            .map_err(|_| "stream closed")?;
        }
    }
    let now = journal::wall_clock().to_string();
    ctx.fed.link(partner, |l| {
        l.owed = owed.len() as u64;
        l.last_heartbeat = Some(now);
        for h in &hb.heads {
            let Ok(o) = Nation::parse(&h.origin) else { continue };
            let held = heads.iter().find(|c| c.origin() == o).map_or(0, |c| c.seq());
            l.lag.entry(o.to_string()).or_default().update(held, h.seq);
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::RecordKind;

    fn out(origin: &str, seqs: std::ops::RangeInclusive<u64>, filled: &[u64]) -> Outcome {
        let rec = |seq| Applied {
            seq,
            kind: RecordKind::MeasurementBatch,
            body: vec![seq as u8; 3],
            origin_time: seq as i64,
        };
        Outcome {
            origin: Nation::parse(origin).unwrap(),
            head: *seqs.end(),
            applied: seqs.map(rec).collect(),
            stubs: 0,
            filled: filled.iter().copied().map(rec).collect(),
        }
    }

    /// Records written ahead of their sync go to fusion once each, in order, and keep what the
    /// acknowledgement's latency needs; a gathering that fills owed records waits for the sync.
    #[test]
    fn new_records_go_to_fusion_once_before_the_sync_unless_something_is_filled() {
        let mut outs = vec![out("JPN", 1..=3, &[]), out("KOR", 7..=8, &[])];
        let mut got = Vec::new();
        assert!(hand_early(&mut outs, |o, a| got.push((o.to_string(), a.seq, a.body))));
        let want: Vec<(String, u64, Vec<u8>)> = [("JPN", 1), ("JPN", 2), ("JPN", 3), ("KOR", 7), ("KOR", 8)]
            .into_iter()
            .map(|(o, s)| (o.to_string(), s, vec![s as u8; 3]))
            .collect();
        assert_eq!(got, want);
        let left: Vec<(u64, i64, usize)> =
            outs.iter().flat_map(|o| &o.applied).map(|a| (a.seq, a.origin_time, a.body.len())).collect();
        assert_eq!(left, vec![(1, 1, 0), (2, 2, 0), (3, 3, 0), (7, 7, 0), (8, 8, 0)]);

        let mut outs = vec![out("JPN", 1..=3, &[]), out("JPN", 4..=5, &[2])];
        let mut got = 0;
        assert!(!hand_early(&mut outs, |_, _| got += 1));
        assert_eq!(got, 0);
        assert!(outs.iter().flat_map(|o| &o.applied).all(|a| a.body.len() == 3));
    }
}
