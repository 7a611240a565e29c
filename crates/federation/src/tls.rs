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

/// A handshake must finish within this (a slow-loris peer is cut off here).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; more connections wait in the kernel's backlog.
const MAX_HANDSHAKES: usize = 64;

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
        Ok(PeerStream { inner: tls, info: PeerInfo { nation: partner, addr } })
    }

    /// Accepts federation connections until `stop`; each verified one is sent to `tx` (which
    /// tonic serves). Refusals are logged and counted by reason.
    pub async fn accept_loop(
        self: Arc<Self>,
        listener: TcpListener,
        tx: tokio::sync::mpsc::Sender<std::io::Result<PeerStream<tokio_rustls::server::TlsStream<TcpStream>>>>,
        refused: Arc<dyn Fn(&'static str) + Send + Sync>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.server.clone());
        let permits = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
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
            let Ok(permit) = permits.clone().acquire_owned().await else { return };
            let (acceptor, me, tx, refused) = (acceptor.clone(), self.clone(), tx.clone(), refused.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let _ = tcp.set_nodelay(true);
                let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Err(_) => {
                        tracing::warn!(%addr, "federation peer refused: TLS handshake not finished in time");
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
                        let _ = tx.send(Ok(PeerStream { inner: tls, info: PeerInfo { nation, addr } })).await;
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

/// Who is at the other end of a verified link.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub nation: Nation,
    pub addr: SocketAddr,
}

/// A verified TLS stream and its peer, which tonic hands to the service as a request extension.
#[derive(Debug)]
pub struct PeerStream<S> {
    inner: S,
    pub info: PeerInfo,
}

impl<S: AsyncRead + Unpin> AsyncRead for PeerStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PeerStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
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
