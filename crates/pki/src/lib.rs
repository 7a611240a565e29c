//! The federation's identities: a certificate authority per nation, node TLS certificates
//! naming their nation, and reading the nation back from a peer's certificate.
//!
//! Each nation runs its own CA (no nation issues another's identities); a node trusts, per
//! partner, only that partner's CA. A node certificate carries its nation twice: the URI
//! subject alternative name `urn:trilink:nation:JPN` (what is checked) and the DNS name
//! `jpn.node.trilink` (what a dialling node verifies as the server name).

use anyhow::{anyhow, bail, Context};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use std::path::Path;
use vocab::Nation;

/// The URI SAN prefix that names a certificate's nation.
pub const NATION_URI_PREFIX: &str = "urn:trilink:nation:";

/// The DNS name a node of `nation` presents as a server.
pub fn server_name(nation: Nation) -> String {
    format!("{}.node.trilink", nation.as_str().to_lowercase())
}

/// A CA or node certificate and its private key, PEM.
#[derive(Debug, Clone)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

/// Validity of what `pki init` issues: from a day ago (clock skew) for `days`.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub not_before: time::OffsetDateTime,
    pub not_after: time::OffsetDateTime,
}

impl Validity {
    pub fn days_from_now(days: i64) -> Validity {
        let now = time::OffsetDateTime::now_utc();
        Validity { not_before: now - time::Duration::days(1), not_after: now + time::Duration::days(days) }
    }
}

fn nation_dn(params: &mut CertificateParams, nation: Nation, cn: String) {
    params.distinguished_name.push(DnType::OrganizationName, format!("trilink {}", nation.as_str()));
    params.distinguished_name.push(DnType::CountryName, nation.as_str().to_string());
    params.distinguished_name.push(DnType::CommonName, cn);
}

/// A nation's self-signed CA.
pub fn make_ca(nation: Nation, validity: Validity) -> anyhow::Result<Pem> {
    let key = KeyPair::generate().context("failed to make a CA key")?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    nation_dn(&mut params, nation, format!("trilink {} federation CA", nation.as_str()));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    let cert = params.self_signed(&key).context("failed to sign the CA certificate")?;
    Ok(Pem { cert: cert.pem(), key: key.serialize_pem() })
}

/// A node certificate for `nation`, issued by `ca` (usable as TLS server and client). `claim`
/// overrides the nation written into the certificate (tests of a CA that lies).
pub fn make_node_cert(nation: Nation, ca: &Pem, validity: Validity, claim: Option<&str>) -> anyhow::Result<Pem> {
    let ca_key = KeyPair::from_pem(&ca.key).context("failed to read the CA key")?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert, ca_key).context("failed to read the CA certificate")?;
    let key = KeyPair::generate().context("failed to make a node key")?;
    let claimed = claim.unwrap_or(nation.as_str());
    let mut params = CertificateParams::new(vec![server_name(nation)])?;
    params
        .subject_alt_names
        .push(SanType::URI(format!("{NATION_URI_PREFIX}{claimed}").try_into().map_err(|e| anyhow!("{e:?}"))?));
    nation_dn(&mut params, nation, format!("trilink node {claimed}"));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    let cert = params.signed_by(&key, &issuer).context("failed to sign the node certificate")?;
    Ok(Pem { cert: cert.pem(), key: key.serialize_pem() })
}

/// The certificate of a node's API listeners (HTTPS, gRPC ingest), issued by its nation's
/// `ca`: valid for `localhost`, 127.0.0.1 and ::1, and for each of `names` (host names or IP
/// addresses) that browsers, sensors and analysts reach the node under.
pub fn make_api_cert(nation: Nation, ca: &Pem, validity: Validity, names: &[String]) -> anyhow::Result<Pem> {
    let ca_key = KeyPair::from_pem(&ca.key).context("failed to read the CA key")?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert, ca_key).context("failed to read the CA certificate")?;
    let key = KeyPair::generate().context("failed to make an API key")?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
    let addresses = ["127.0.0.1".to_string(), "::1".to_string()];
    for name in addresses.iter().chain(names) {
        let san = match name.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => {
                SanType::DnsName(name.clone().try_into().map_err(|e| anyhow!("{name:?} is not a DNS name: {e:?}"))?)
            }
        };
        if !params.subject_alt_names.contains(&san) {
            params.subject_alt_names.push(san);
        }
    }
    nation_dn(&mut params, nation, format!("trilink {} API", nation.as_str()));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    let cert = params.signed_by(&key, &issuer).context("failed to sign the API certificate")?;
    Ok(Pem { cert: cert.pem(), key: key.serialize_pem() })
}

/// The nation a certificate (DER) names in its `urn:trilink:nation:` URI SAN. Exactly one
/// such name is required.
pub fn nation_of(der: &[u8]) -> anyhow::Result<Nation> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| anyhow!("unreadable certificate: {e}"))?;
    let mut found = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::URI(uri) = name {
                if let Some(n) = uri.strip_prefix(NATION_URI_PREFIX) {
                    found.push(n.to_string());
                }
            }
        }
    }
    match found.as_slice() {
        [one] => Nation::parse(one).map_err(|e| anyhow!("certificate names nation {one:?}: {e}")),
        [] => bail!("certificate names no nation (no {NATION_URI_PREFIX} URI)"),
        _ => bail!("certificate names {} nations", found.len()),
    }
}

/// Every certificate in a PEM file, DER.
pub fn read_certs(path: &Path) -> anyhow::Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(path)
        .with_context(|| format!("failed to read {}", path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("failed to parse certificates in {}", path.display()))?;
    if certs.is_empty() {
        bail!("{} holds no certificate", path.display());
    }
    Ok(certs)
}

/// The private key in a PEM file.
pub fn read_key(path: &Path) -> anyhow::Result<rustls::pki_types::PrivateKeyDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("failed to read a private key from {}", path.display()))
}

/// Writes a whole test PKI for `nations` under `out/<nation lower>/`: `ca.crt`, `ca.key`,
/// `tls.crt`, `tls.key` (the node's federation identity), `api.crt`, `api.key` (its HTTPS and
/// gRPC listeners', for `localhost`, the loopback addresses and `api_names`) and
/// `node.key`/`node.pub` (its Ed25519 log signing key). Secret files are mode 0600.
pub fn init_federation(nations: &[Nation], out: &Path, validity: Validity, api_names: &[String]) -> anyhow::Result<()> {
    for &n in nations {
        let dir = out.join(n.as_str().to_lowercase());
        std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
        let ca = make_ca(n, validity)?;
        let node = make_node_cert(n, &ca, validity, None)?;
        write_file(&dir.join("ca.crt"), &ca.cert, false)?;
        write_file(&dir.join("ca.key"), &ca.key, true)?;
        write_file(&dir.join("tls.crt"), &node.cert, false)?;
        write_file(&dir.join("tls.key"), &node.key, true)?;
        let api = make_api_cert(n, &ca, validity, api_names)?;
        write_file(&dir.join("api.crt"), &api.cert, false)?;
        write_file(&dir.join("api.key"), &api.key, true)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| anyhow!("failed to read the OS random source: {e}"))?;
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        write_file(&dir.join("node.key"), &ledger::keys::signing_key_text(&key), true)?;
        write_file(&dir.join("node.pub"), &ledger::keys::public_key_text(&key.verifying_key()), false)?;
    }
    Ok(())
}

/// The SHA-256 of a bearer token: what a config holds of a credential (never the token).
pub fn token_hash(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// Writes a file durably; `secret` files are created mode 0600.
pub fn write_file(path: &Path, text: &str, secret: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    }
    let mut f = opts.open(path).with_context(|| format!("failed to create {}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("failed to write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_certificates_name_their_nation() {
        let jpn = Nation::parse("JPN").unwrap();
        let ca = make_ca(jpn, Validity::days_from_now(30)).unwrap();
        let node = make_node_cert(jpn, &ca, Validity::days_from_now(30), None).unwrap();
        let der = rustls::pki_types::CertificateDer::from_pem_slice(node.cert.as_bytes()).unwrap();
        assert_eq!(nation_of(&der).unwrap(), jpn);
        let ca_der = rustls::pki_types::CertificateDer::from_pem_slice(ca.cert.as_bytes()).unwrap();
        assert!(nation_of(&ca_der).unwrap_err().to_string().contains("names no nation"));
        let liar = make_node_cert(jpn, &ca, Validity::days_from_now(30), Some("Japan")).unwrap();
        let der = rustls::pki_types::CertificateDer::from_pem_slice(liar.cert.as_bytes()).unwrap();
        assert!(nation_of(&der).is_err());
    }

    use rustls::pki_types::pem::PemObject;
}
