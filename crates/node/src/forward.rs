//! Several processes of one nation's node on one JetStream store (docs/store.md): one writer
//! process holds the chain and appends; ingest processes authenticate and check what sensors
//! send, as the writer would, and forward each batch to the writer over NATS
//! (`<store_prefix>.append`, request and reply). The sender is acknowledged only when the
//! writer's reply says the record is durable, with its seq — the same promise as a batch sent to
//! the writer itself. When no writer answers, the ingest process refuses with 503 and the
//! sender keeps its data.

use futures::StreamExt;
use jetstore::async_nats;
use journal::Append;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use vocab::Nation;

/// An append as it travels from an ingest process to the writer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Forwarded {
    #[prost(int32, tag = "1")]
    pub kind: i32,
    #[prost(bytes = "vec", tag = "2")]
    pub body: Vec<u8>,
    /// The record's own marking, when `has_marking` (cyber records carry their TLP's reach).
    #[prost(string, repeated, tag = "3")]
    pub marking: Vec<String>,
    #[prost(bool, tag = "4")]
    pub has_marking: bool,
    /// Transformed copies for partners (see `writer::Append::derived`).
    #[prost(message, repeated, tag = "5")]
    pub derived: Vec<DerivedCopy>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DerivedCopy {
    #[prost(string, tag = "1")]
    pub nation: String,
    #[prost(bytes = "vec", tag = "2")]
    pub body: Vec<u8>,
}

/// The writer's reply: the seq, or why not.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Reply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The subject the writer of the store `prefix` takes appends on.
pub fn subject(prefix: &str) -> String {
    format!("{prefix}.append")
}

fn decode(bytes: &[u8]) -> Result<Append, String> {
    let f = <Forwarded as prost::Message>::decode(bytes).map_err(|e| format!("undecodable append: {e}"))?;
    let kind = wire::RecordKind::try_from(f.kind).map_err(|_| format!("unknown record kind {}", f.kind))?;
    let nations =
        |v: &[String]| v.iter().map(|n| Nation::parse(n).map_err(|e| e.to_string())).collect::<Result<Vec<_>, _>>();
    let marking = if f.has_marking { Some(nations(&f.marking)?) } else { None };
    let derived = f
        .derived
        .into_iter()
        .map(|d| Ok((Nation::parse(&d.nation).map_err(|e| e.to_string())?, d.body)))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Append { kind, body: f.body, arrived: Instant::now(), reply: None, derived, marking })
}

fn encode(a: &Append) -> Vec<u8> {
    prost::Message::encode_to_vec(&Forwarded {
        kind: a.kind as i32,
        body: a.body.clone(),
        marking: a.marking.iter().flatten().map(|n| n.as_str().to_string()).collect(),
        has_marking: a.marking.is_some(),
        derived: a
            .derived
            .iter()
            .map(|(n, b)| DerivedCopy { nation: n.as_str().to_string(), body: b.clone() })
            .collect(),
    })
}

/// The writer's side: appends forwarded by ingest processes go into the writer's queue like
/// its own ingest; each is answered once durable. Runs until `stop`.
pub async fn serve(
    client: async_nats::Client,
    subject: String,
    log: mpsc::Sender<Append>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut sub = client.queue_subscribe(subject.clone(), "writer".to_string()).await?;
    tracing::info!(%subject, "taking appends from the nation's ingest processes");
    loop {
        let msg = tokio::select! {
            m = sub.next() => match m { Some(m) => m, None => break },
            _ = stop.changed() => break,
        };
        let Some(reply_to) = msg.reply.clone() else { continue };
        let (client, log) = (client.clone(), log.clone());
        tokio::spawn(async move {
            let reply = match decode(&msg.payload) {
                Err(e) => Reply { seq: None, error: Some(e) },
                Ok(mut append) => {
                    let (tx, rx) = oneshot::channel();
                    append.reply = Some(tx);
                    if log.send(append).await.is_err() {
                        Reply { seq: None, error: Some("the writer is shutting down".into()) }
                    } else {
                        match rx.await {
                            Ok(Ok(seq)) => Reply { seq: Some(seq), error: None },
                            Ok(Err(e)) => Reply { seq: None, error: Some(e) },
                            Err(_) => Reply { seq: None, error: Some("the log writer stopped".into()) },
                        }
                    }
                }
            };
            let body = serde_json::to_vec(&reply).unwrap_or_default();
            if let Err(e) = client.publish(reply_to, body.into()).await {
                tracing::warn!(error = %e, "failed to answer a forwarded append");
            }
        });
    }
    let _ = sub.unsubscribe().await;
    Ok(())
}

/// The ingest process's side: the receiver of its writer queue. Each append goes to the writer
/// and its reply (or the reason there is none) back to the request that made it.
pub async fn forward(client: async_nats::Client, subject: String, mut rx: mpsc::Receiver<Append>, timeout: Duration) {
    while let Some(append) = rx.recv().await {
        let (client, subject) = (client.clone(), subject.clone());
        tokio::spawn(async move {
            let payload = encode(&append);
            let result = match tokio::time::timeout(timeout, client.request(subject, payload.into())).await {
                Err(_) => Err(format!("the nation's writer process did not answer within {timeout:?}")),
                Ok(Err(e)) => Err(format!("the nation's writer process is not reachable ({e})")),
                Ok(Ok(msg)) => match serde_json::from_slice::<Reply>(&msg.payload) {
                    Ok(Reply { seq: Some(seq), .. }) => Ok(seq),
                    Ok(Reply { error: Some(e), .. }) => Err(e),
                    _ => Err("the nation's writer process answered something unreadable".into()),
                },
            };
            if let Some(reply) = append.reply {
                let _ = reply.send(result);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_travel_whole() {
        let a = Append {
            kind: wire::RecordKind::CyberBundle,
            body: vec![1, 2, 3],
            arrived: Instant::now(),
            reply: None,
            derived: vec![(Nation::parse("KOR").unwrap(), vec![9])],
            marking: Some(vec![Nation::parse("USA").unwrap()]),
        };
        let b = decode(&encode(&a)).unwrap();
        assert_eq!((b.kind, &b.body, &b.derived, &b.marking), (a.kind, &a.body, &a.derived, &a.marking));
        let plain = Append { marking: None, derived: vec![], ..b };
        let c = decode(&encode(&plain)).unwrap();
        assert_eq!((c.marking, c.derived, c.body), (None, vec![], vec![1, 2, 3]));
        assert!(decode(&[0xff, 0xff]).is_err());
    }
}
