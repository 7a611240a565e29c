//! A blocking HTTP/1.1 client of one request per connection, over TLS (rustls) when given a
//! client config: what `trilink demo` probes its nodes with, and what the tests talk to nodes
//! with. Not a general client: the node's API is the only server it meets.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A client config trusting only the CA certificates in `ca` (PEM).
pub fn client_config(ca: &Path) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in pki::read_certs(ca)? {
        roots.add(cert)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// One request on its own connection (`Connection: close`); returns the status and the whole
/// response, head and body, as text. `Host` is `addr` unless `headers` give one; over TLS the
/// server's certificate is verified for the Host's name (or address).
pub fn exchange(
    addr: SocketAddr,
    tls: Option<&Arc<rustls::ClientConfig>>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    let tcp = TcpStream::connect_timeout(&addr, timeout.min(Duration::from_secs(5)))?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    let host = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.to_string())
        .unwrap_or_else(|| addr.to_string());
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut raw = Vec::new();
    match tls {
        None => {
            let mut s = tcp;
            s.write_all(head.as_bytes())?;
            s.write_all(body)?;
            s.read_to_end(&mut raw)?;
        }
        Some(config) => {
            let bare = match host.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or(v6),
                None => host.rsplit_once(':').map(|(h, _)| h).unwrap_or(&host),
            };
            let name = rustls::pki_types::ServerName::try_from(bare.to_string())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{bare:?}: {e}")))?;
            let conn = rustls::ClientConnection::new(config.clone(), name).map_err(std::io::Error::other)?;
            let mut s = rustls::StreamOwned::new(conn, tcp);
            s.write_all(head.as_bytes())?;
            s.write_all(body)?;
            s.flush()?;
            match s.read_to_end(&mut raw) {
                Ok(_) => {}
                // A server may close without TLS's close_notify once it has answered.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
                Err(e) => return Err(e),
            }
        }
    }
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((status, text))
}
