//! The `[cot]` section of a node's configuration, already checked (parsed from TOML by the
//! node's config; docs/cot.md names every key).

use anyhow::bail;
use std::net::SocketAddr;
use std::path::PathBuf;

/// CoT wire format (docs/cot.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CotFormat {
    /// XML CoT events, one after another.
    Xml,
    /// TAK protocol version 1, streaming framing.
    Protobuf,
}

impl CotFormat {
    /// `xml` or `protobuf`, as the config names them.
    pub fn parse(s: &str) -> anyhow::Result<CotFormat> {
        match s {
            "xml" => Ok(CotFormat::Xml),
            "protobuf" => Ok(CotFormat::Protobuf),
            _ => bail!("format {s:?} is not \"xml\" or \"protobuf\""),
        }
    }
}

#[derive(Debug, Clone)]
pub struct CotListen {
    pub address: SocketAddr,
    pub format: CotFormat,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// With it, TAK clients must present a certificate this CA issued.
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct CotPush {
    /// host:port of the TAK server.
    pub address: String,
    pub format: CotFormat,
    /// With it, TLS to the server, whose certificate this CA must have issued.
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub server_name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CotConfig {
    pub stale_s: f64,
    pub min_interval: std::time::Duration,
    pub listen: Vec<CotListen>,
    pub push: Vec<CotPush>,
}
