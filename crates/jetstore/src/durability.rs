//! What trilink requires of the NATS servers before it keeps a log on them, checked at
//! start-up from each server's monitoring endpoint (`/varz`, `/jsz`):
//!
//! - JetStream on, with `sync_interval: always` (`/varz` `jetstream.config.sync_always`):
//!   each write is fsynced before it is acknowledged. The default (a sync every two minutes)
//!   loses acknowledged writes when machines crash together (Jepsen, NATS 2.12.1, 2025).
//! - Server version 2.12 or later (atomic batches), and not 2.10.20–2.10.22, which could lose
//!   streams on process kills.
//! - `max_payload` at least `ledger::MAX_FRAME_BYTES`, so that any record the node accepts
//!   can be stored.
//!
//! Every server that answers must pass, and more than half of those listed must answer (a node
//! restarts while one server of three is down, as the cluster itself goes on); the cluster size
//! (`/jsz` `meta_cluster`) sets the replica count (three when there are three servers or more).

use ledger::StoreError;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the monitoring endpoints said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// Servers in the JetStream meta group (1 without clustering).
    pub cluster_size: usize,
    /// The lowest server version seen.
    pub version: String,
}

fn refused(url: &str, why: impl std::fmt::Display) -> StoreError {
    StoreError::Misconfigured(format!("NATS server at {url}: {why}"))
}

/// Checks every server named by `monitors` (`http://host:port`).
pub async fn check(monitors: Vec<String>, timeout: Duration) -> Result<Cluster, StoreError> {
    let mut cluster = Cluster { cluster_size: 1, version: String::new() };
    let mut unreachable = Vec::new();
    for url in &monitors {
        let varz = match get_json(url, "/varz", timeout).await {
            Ok(v) => v,
            Err(Fetch::Unreachable(e)) => {
                tracing::warn!(server = %url, error = %e, "NATS server unreachable at start-up");
                unreachable.push(e);
                continue;
            }
            Err(Fetch::Bad(e)) => return Err(e),
        };
        let version = varz["version"].as_str().unwrap_or_default().to_string();
        let (major, minor, patch) =
            parse_version(&version).ok_or_else(|| refused(url, format!("version {version:?}")))?;
        if (major, minor) < (2, 12) {
            return Err(refused(url, format!("version {version}: trilink needs 2.12 or later (atomic batch publish)")));
        }
        if (major, minor) == (2, 10) && (20..=22).contains(&patch) {
            return Err(refused(url, format!("version {version} can lose streams when killed")));
        }
        let js = &varz["jetstream"]["config"];
        if js.is_null() {
            return Err(refused(url, "JetStream is off"));
        }
        if js["sync_always"].as_bool() != Some(true) {
            return Err(refused(
                url,
                "JetStream does not sync every write (set `jetstream { sync_interval: always }`): \
                 acknowledged records could be lost in a crash",
            ));
        }
        let max_payload = varz["max_payload"].as_u64().unwrap_or(0);
        if max_payload < u64::from(ledger::MAX_FRAME_BYTES) {
            return Err(refused(
                url,
                format!(
                    "max_payload is {max_payload} bytes; trilink records can be {} (set `max_payload: 20MB`)",
                    ledger::MAX_FRAME_BYTES
                ),
            ));
        }
        let jsz = get_json(url, "/jsz", timeout).await.map_err(Fetch::into_error)?;
        let size = jsz["meta_cluster"]["cluster_size"].as_u64().unwrap_or(1) as usize;
        cluster.cluster_size = cluster.cluster_size.max(size);
        if cluster.version.is_empty() || parse_version(&version) < parse_version(&cluster.version) {
            cluster.version = version;
        }
    }
    if unreachable.len() * 2 >= monitors.len() {
        return Err(StoreError::Unavailable(format!(
            "{} of {} NATS servers did not answer: {}",
            unreachable.len(),
            monitors.len(),
            unreachable.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
        )));
    }
    Ok(cluster)
}

/// Why a monitoring endpoint gave no usable answer.
enum Fetch {
    /// Nothing answered (connection refused, timed out): the server may be down.
    Unreachable(StoreError),
    /// Something answered, but not a monitoring endpoint's JSON.
    Bad(StoreError),
}

impl Fetch {
    fn into_error(self) -> StoreError {
        match self {
            Fetch::Unreachable(e) | Fetch::Bad(e) => e,
        }
    }
}

fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let mut parts = v.split(['.', '-']).map(|p| p.parse::<u64>());
    Some((parts.next()?.ok()?, parts.next()?.ok()?, parts.next().and_then(|p| p.ok()).unwrap_or(0)))
}

/// GETs `path` from a plain-HTTP monitoring endpoint and parses the JSON body.
async fn get_json(base: &str, path: &str, timeout: Duration) -> Result<serde_json::Value, Fetch> {
    let host = base
        .strip_prefix("http://")
        .ok_or_else(|| Fetch::Bad(refused(base, "monitoring URL must start with http://")))?
        .trim_end_matches('/');
    let fetch = async {
        let mut s = tokio::net::TcpStream::connect(host)
            .await
            .map_err(|e| refused(base, format!("monitoring endpoint: {e}")))?;
        let req = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.map_err(|e| refused(base, e))?;
        let mut body = Vec::new();
        s.take(16 * 1024 * 1024).read_to_end(&mut body).await.map_err(|e| refused(base, e))?;
        Ok::<_, StoreError>(body)
    };
    let body = tokio::time::timeout(timeout, fetch)
        .await
        .map_err(|_| {
            Fetch::Unreachable(refused(base, format!("monitoring endpoint did not answer within {timeout:?}")))
        })?
        .map_err(Fetch::Unreachable)?;
    let text = String::from_utf8_lossy(&body);
    let (head, json) = text.split_once("\r\n\r\n").ok_or_else(|| Fetch::Bad(refused(base, "not an HTTP answer")))?;
    if !head.starts_with("HTTP/1.") || head.split_whitespace().nth(1).is_none_or(|c| c != "200") {
        return Err(Fetch::Bad(refused(base, format!("{path}: {}", head.lines().next().unwrap_or_default()))));
    }
    serde_json::from_str(json).map_err(|e| Fetch::Bad(refused(base, format!("{path}: {e}"))))
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn versions_parse() {
        assert_eq!(parse_version("2.15.1"), Some((2, 15, 1)));
        assert_eq!(parse_version("2.12.0-RC.1"), Some((2, 12, 0)));
        assert_eq!(parse_version("x"), None);
    }
}
