//! Mutual TLS for federation links (rustls, TLS 1.3 only, ring). A node is known by its
//! certificate: it must chain to the CA configured for the nation it names, be valid now, and
//! name exactly one nation that is a configured partner. Anything else is refused at accept or
//! at dial, logged and counted, before a byte of the protocol is read.

use anyhow::{anyhow, Context};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use vocab::Nation;

/// A dial (TCP connect, then the TLS handshake) to a partner must finish within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a connection that has not yet authenticated may cost the node (docs/federation.md,
/// "Before a peer is known"). The accept loop never waits: a connection over a limit is
/// closed at once and counted (`handshake_busy`, `source_not_allowed`), so a flood from one
/// host leaves every other host's handshakes, the partners' among them, as fast as ever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeLimits {
    /// A peer that has not finished its TLS handshake by then is cut off: a mutual TLS 1.3
    /// handshake is 1.5 round trips, under half a second across the Pacific.
    pub deadline: Duration,
    /// Handshakes in progress at once, from all sources.
    pub total: usize,
    /// Handshakes in progress at once from one source address.
    pub per_source: usize,
    /// When not empty, the only source networks that may connect at all.
    pub allow: Vec<SourceNet>,
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        // 8 per source: a partner's node dials one link (and `trilink recover` one more) at a
        // time; 512 in all bounds the tasks and TLS state a flood from many hosts can hold.
        HandshakeLimits { deadline: Duration::from_secs(2), total: 512, per_source: 8, allow: Vec::new() }
    }
}

impl HandshakeLimits {
    fn allows(&self, ip: std::net::IpAddr) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(ip))
    }
}

/// A network of source addresses: `192.0.2.0/24`, `2001:db8::/32`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceNet {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl SourceNet {
    /// Parses `ADDRESS` or `ADDRESS/PREFIX`.
    pub fn parse(text: &str) -> Result<SourceNet, String> {
        let (a, p) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: std::net::IpAddr =
            a.trim().parse().map_err(|_| format!("{text:?} is not an IP address or network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix must be 0..={max}"))?,
        };
        Ok(SourceNet { addr, prefix })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The identity and trust of one node, loaded from files.
#[derive(Debug, Clone)]
pub struct Tls {
    pub nation: Nation,
    server: Arc<rustls::ServerConfig>,
    /// Per partner: the verifier that trusts only its CA, and the client config to dial it.
    partners: BTreeMap<Nation, (Arc<dyn ClientCertVerifier>, Arc<rustls::ClientConfig>)>,
}

fn roots(ca: &[CertificateDer<'static>]) -> anyhow::Result<Arc<RootCertStore>> {
    let mut store = RootCertStore::empty();
    for c in ca {
        store.add(c.clone()).context("CA certificate refused")?;
    }
    Ok(Arc::new(store))
}

impl Tls {
    /// Loads this node's certificate and key, and each partner's CA.
    pub fn load(nation: Nation, cert: &Path, key: &Path, partner_cas: &[(Nation, &Path)]) -> anyhow::Result<Tls> {
        let certs = pki::read_certs(cert)?;
        let named = pki::nation_of(&certs[0]).with_context(|| format!("in {}", cert.display()))?;
        if named != nation {
            return Err(anyhow!("{} names nation {named}, but this node is {nation}", cert.display()));
        }
        let key: PrivateKeyDer<'static> = pki::read_key(key)?;
        let mut all_roots = RootCertStore::empty();
        let mut partners = BTreeMap::new();
        for (pn, ca_path) in partner_cas {
            let ca = pki::read_certs(ca_path)?;
            for c in &ca {
                all_roots.add(c.clone()).with_context(|| format!("CA certificate in {}", ca_path.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(roots(&ca)?, provider())
                .build()
                .with_context(|| format!("CA of {pn} in {}", ca_path.display()))?;
            let client = rustls::ClientConfig::builder_with_provider(provider())
                .with_protocol_versions(&[&rustls::version::TLS13])?
                .with_root_certificates(roots(&ca)?)
                .with_client_auth_cert(certs.clone(), key.clone_key())
                .context("this node's certificate and key do not match")?;
            let mut client = client;
            client.alpn_protocols = vec![b"h2".to_vec()];
            partners.insert(*pn, (verifier, Arc::new(client)));
        }
        let any_partner = WebPkiClientVerifier::builder_with_provider(Arc::new(all_roots), provider())
            .build()
            .context("no partner CA configured")?;
        let mut server = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(any_partner)
            .with_single_cert(certs, key)
            .context("this node's certificate and key do not match")?;
        server.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Tls { nation, server: Arc::new(server), partners })
    }

    /// The partner a verified peer certificate chain belongs to: it must name a configured
    /// partner and chain to that partner's own CA (a partner's CA cannot vouch for another nation).
    fn peer_nation(&self, chain: &[CertificateDer<'_>]) -> Result<Nation, String> {
        let ee = chain.first().ok_or("no certificate")?;
        let nation = pki::nation_of(ee).map_err(|e| e.to_string())?;
        let (verifier, _) = self.partners.get(&nation).ok_or(format!("{nation} is not a configured partner"))?;
        verifier
            .verify_client_cert(ee, &chain[1..], UnixTime::now())
            .map_err(|e| format!("certificate naming {nation} is not issued by {nation}'s CA: {e}"))?;
        Ok(nation)
    }

    /// Dials `partner` at `addr`: TCP, TLS with this node's certificate, the partner's
    /// certificate checked against its CA and its nation.
    pub async fn connect(
        &self,
        partner: Nation,
        addr: SocketAddr,
    ) -> std::io::Result<PeerStream<tokio_rustls::client::TlsStream<TcpStream>>> {
        let other = |e: String| std::io::Error::other(e);
        let (_, client) = self.partners.get(&partner).ok_or_else(|| other(format!("{partner} is not a partner")))?;
        let tcp = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| other(format!("connecting to {addr} timed out")))??;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from(pki::server_name(partner)).map_err(|e| other(e.to_string()))?;
        let tls = tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            tokio_rustls::TlsConnector::from(client.clone()).connect(name, tcp),
        )
        .await
        .map_err(|_| other(format!("TLS handshake with {addr} timed out")))??;
        let chain = tls.get_ref().1.peer_certificates().unwrap_or_default().to_vec();
        let named = chain.first().map(|c| pki::nation_of(c)).transpose().map_err(|e| other(e.to_string()))?;
        if named != Some(partner) {
            return Err(other(format!("{addr} presented a certificate of {named:?}, not of {partner}")));
        }
        Ok(PeerStream::new(tls, partner, addr))
    }

    /// Accepts federation connections until `stop`; each verified one is sent to `tx` (which
    /// tonic serves). Refusals are logged and counted by reason.
    pub async fn accept_loop(
        self: Arc<Self>,
        listener: TcpListener,
        tx: tokio::sync::mpsc::Sender<std::io::Result<PeerStream<tokio_rustls::server::TlsStream<TcpStream>>>>,
        refused: Arc<dyn Fn(&'static str) + Send + Sync>,
        limits: HandshakeLimits,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.server.clone());
        // Handshakes in progress, in all and per source address.
        let in_progress = access::Places::new(limits.total, limits.per_source);
        loop {
            let (tcp, addr) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "federation accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stop.changed() => return,
            };
            // Closed at once, never queued: a flood is counted, not waited for. Logged at debug
            // only, since a flood would otherwise write a line per connection.
            if !limits.allows(addr.ip()) {
                tracing::debug!(%addr, "federation connection refused: source not allowed");
                refused("source_not_allowed");
                continue;
            }
            let Some(slot) = in_progress.take(addr.ip()) else {
                tracing::debug!(%addr, "federation connection refused: too many handshakes in progress");
                refused("handshake_busy");
                continue;
            };
            let (acceptor, me, tx, refused) = (acceptor.clone(), self.clone(), tx.clone(), refused.clone());
            let deadline = limits.deadline;
            tokio::spawn(async move {
                let _slot = slot;
                let _ = tcp.set_nodelay(true);
                let tls = match tokio::time::timeout(deadline, acceptor.accept(tcp)).await {
                    Err(_) => {
                        tracing::debug!(%addr, "federation peer refused: TLS handshake not finished in time");
                        refused("handshake_timeout");
                        return;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(%addr, error = %e, "federation peer refused: TLS handshake failed");
                        refused("tls");
                        return;
                    }
                    Ok(Ok(t)) => t,
                };
                let chain = tls.get_ref().1.peer_certificates().unwrap_or_default().to_vec();
                match me.peer_nation(&chain) {
                    Ok(nation) => {
                        tracing::info!(%addr, peer = %nation, "federation peer connected");
                        let _ = tx.send(Ok(PeerStream::new(tls, nation, addr))).await;
                    }
                    Err(why) => {
                        tracing::warn!(%addr, why, "federation peer refused");
                        refused("identity");
                    }
                }
            });
        }
    }
}

/// Who is at the other end of a verified link, and the way to cut its connection.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub nation: Nation,
    pub addr: SocketAddr,
    /// Closes the connection (every stream on it), freeing what its buffers hold: for a peer
    /// that stopped reading, whose queued data would otherwise stay until it hangs up.
    pub cut: Cut,
}

/// Cuts one connection: its reads and writes fail from then on, and the server drops it.
#[derive(Debug, Clone)]
pub struct Cut(Arc<tokio::sync::watch::Sender<bool>>);

impl Cut {
    pub fn cut(&self) {
        self.0.send_replace(true);
    }
}

/// A verified TLS stream and its peer, which tonic hands to the service as a request extension.
pub struct PeerStream<S> {
    inner: S,
    pub info: PeerInfo,
    /// Resolves once the connection is cut.
    cut: Option<Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
}

impl<S> std::fmt::Debug for PeerStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerStream").field("info", &self.info).finish()
    }
}

impl<S> PeerStream<S> {
    fn new(inner: S, nation: Nation, addr: SocketAddr) -> PeerStream<S> {
        let (tx, mut rx) = tokio::sync::watch::channel(false);
        let cut = Box::pin(async move {
            let _ = rx.wait_for(|c| *c).await;
        });
        PeerStream { inner, info: PeerInfo { nation, addr, cut: Cut(Arc::new(tx)) }, cut: Some(cut) }
    }

    /// An error once the connection is cut (and registers for the cut otherwise).
    fn was_cut(&mut self, cx: &mut TaskContext<'_>) -> Option<std::io::Error> {
        let cut = self.cut.as_mut()?;
        if cut.as_mut().poll(cx).is_ready() {
            self.cut = None;
        }
        self.cut.is_none().then(|| std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "connection cut"))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for PeerStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(e) = self.was_cut(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PeerStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        if let Some(e) = self.was_cut(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<S> tonic::transport::server::Connected for PeerStream<S> {
    type ConnectInfo = PeerInfo;
    fn connect_info(&self) -> PeerInfo {
        self.info.clone()
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn source_networks_hold_their_addresses_and_no_others() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let net = SourceNet::parse("192.0.2.0/24").unwrap();
        assert!(net.contains(ip("192.0.2.77")));
        assert!(!net.contains(ip("192.0.3.1")));
        assert!(net.contains(ip("::ffff:192.0.2.9")), "an IPv4-mapped IPv6 peer is its IPv4 address");
        assert!(SourceNet::parse("10.1.2.3").unwrap().contains(ip("10.1.2.3")));
        assert!(!SourceNet::parse("10.1.2.3").unwrap().contains(ip("10.1.2.4")));
        assert!(SourceNet::parse("0.0.0.0/0").unwrap().contains(ip("203.0.113.5")));
        assert!(SourceNet::parse("2001:db8::/32").unwrap().contains(ip("2001:db8:1::1")));
        assert!(!SourceNet::parse("2001:db8::/32").unwrap().contains(ip("192.0.2.1")));
        for bad in ["", "host.example", "10.0.0.0/33", "::/129", "10.0.0.0/x"] {
            assert!(SourceNet::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
