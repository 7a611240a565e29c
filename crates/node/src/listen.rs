//! The node's API listeners, HTTP and gRPC ingest (docs/security.md, "Connections"): TLS
//! (rustls) unless the config asks for plain on loopback; a cap on connections in all and per
//! source address, so that one host cannot take every descriptor; a deadline on the TLS
//! handshake; and an idle timeout that closes a connection on which nothing moved, so that
//! idle and slow-header connections do not hold their place for ever. The accept loop never
//! waits on a client: handshakes run on their own tasks.

use access::Refusal;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// The bounds on one listener's connections.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Open connections, TLS handshakes included.
    pub max_connections: usize,
    /// Open connections from one source address.
    pub per_source: usize,
    /// Longest a TLS handshake may take.
    pub handshake: Duration,
    /// A connection on which nothing was read or written for this long is closed.
    pub idle: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 4096,
            per_source: 256,
            handshake: Duration::from_secs(5),
            idle: Duration::from_secs(120),
        }
    }
}

/// A rustls server config from a PEM certificate chain and key, offering `alpn`.
pub fn tls_config(cert: &Path, key_file: &Path, alpn: &[&[u8]]) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    use anyhow::Context as _;
    let certs = pki::read_certs(cert)?;
    let key = pki::read_key(key_file)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut c = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| format!("{} and {} are not a certificate and its key", cert.display(), key_file.display()))?;
    c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(c))
}

enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// One accepted connection: TLS or plain, holding its place under the caps, closed with an
/// error when idle for `Limits::idle`.
pub struct Conn {
    io: Io,
    remote: SocketAddr,
    _place: access::Place,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("remote", &self.remote).field("tls", &matches!(self.io, Io::Tls(_))).finish()
    }
}

impl Conn {
    fn moved(&mut self) {
        let at = Instant::now() + self.idle;
        self.timer.as_mut().reset(at);
    }

    fn timed_out(&mut self, cx: &mut Context<'_>) -> bool {
        self.timer.as_mut().poll(cx).is_ready()
    }
}

fn idle_error() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "connection idle past the limit")
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        match r {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.moved();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if self.timed_out(cx) => Poll::Ready(Err(idle_error())),
            other => other,
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, data),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
        };
        match r {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.moved();
                }
                Poll::Ready(Ok(n))
            }
            // A client that stops reading is as idle as one that stops writing.
            Poll::Pending if self.timed_out(cx) => Poll::Ready(Err(idle_error())),
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = SocketAddr;

    fn connect_info(&self) -> SocketAddr {
        self.remote
    }
}

/// Accepts connections on `listener` until the receiver is dropped: each within the caps,
/// through its TLS handshake when `tls` is given, is sent on. Refusals are counted.
pub fn accept(
    name: &'static str,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
    refusals: Arc<access::Refusals>,
) -> tokio::sync::mpsc::Receiver<Conn> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let places = access::Places::new(limits.max_connections, limits.per_source);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::spawn(async move {
        let mut last_error_log = None::<Instant>;
        loop {
            let (tcp, remote) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        // EMFILE and its kind: the node is out of descriptors. Said at most
                        // once a second; the accept is retried shortly.
                        if last_error_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                            tracing::warn!(listener = name, error = %e, "accept failed");
                            last_error_log = Some(Instant::now());
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                },
                _ = tx.closed() => return,
            };
            let Some(place) = places.take(remote.ip()) else {
                if let Some(unlogged) = refusals.count(Refusal::TooManyConnections, std::time::Instant::now()) {
                    tracing::warn!(listener = name, %remote, unlogged, "connection refused: the listener's connection cap is reached");
                }
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let (tx, acceptor) = (tx.clone(), acceptor.clone());
            tokio::spawn(async move {
                let io = match acceptor {
                    None => Io::Plain(tcp),
                    Some(a) => match tokio::time::timeout(limits.handshake, a.accept(tcp)).await {
                        Ok(Ok(s)) => Io::Tls(Box::new(s)),
                        Ok(Err(e)) => {
                            tracing::debug!(listener = name, %remote, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(listener = name, %remote, "TLS handshake not finished in time");
                            return;
                        }
                    },
                };
                let timer = Box::pin(tokio::time::sleep(limits.idle));
                let _ = tx.send(Conn { io, remote, _place: place, idle: limits.idle, timer }).await;
            });
        }
    });
    rx
}

/// The accepted connections as an `axum::serve` listener.
#[derive(Debug)]
pub struct Incoming {
    pub rx: tokio::sync::mpsc::Receiver<Conn>,
    pub local: SocketAddr,
}

impl axum::serve::Listener for Incoming {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        match self.rx.recv().await {
            Some(c) => {
                let remote = c.remote;
                (c, remote)
            }
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Raises the soft limit on open descriptors to the hard limit (a service's connections are
/// descriptors; the usual soft 1,024 is far below what the caps allow). Returns the limit now
/// in force.
pub fn raise_descriptor_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let now = getrlimit(Resource::Nofile);
    if let (Some(cur), max) = (now.current, now.maximum) {
        let want = max.unwrap_or(u64::MAX).min(1 << 20);
        if want > cur {
            match setrlimit(Resource::Nofile, Rlimit { current: Some(want), maximum: max }) {
                Ok(()) => return want,
                Err(e) => tracing::warn!(error = %e, from = cur, to = want, "could not raise the descriptor limit"),
            }
        }
        return cur;
    }
    u64::MAX
}
