//! `trilink cti import FILE` and `trilink cti export`: STIX 2.1 bundles to and from a node's
//! TAXII 2.1 collection (docs/cti.md), as an analyst. The analyst's token comes from the
//! environment (`TRILINK_ANALYST_TOKEN`), never the command line.

use crate::Failure;
use anyhow::{anyhow, Context};
use base64::Engine as _;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

const MEDIA: &str = "application/taxii+json;version=2.1";
const COLLECTION: &str = "/taxii2/api/collections/shared/";
/// Objects per POST (the node takes 8 MiB per body).
const PER_POST: usize = 500;

#[derive(clap::Subcommand, Debug)]
pub enum CtiCommand {
    /// Post the objects of a STIX bundle (or a TAXII envelope) to a node's collection.
    Import(ImportArgs),
    /// Read a node's collection (every object's latest version) into a STIX bundle.
    Export(ExportArgs),
}

#[derive(clap::Args, Debug)]
pub struct Conn {
    /// The node's HTTPS address, e.g. https://127.0.0.1:8082 (http:// for a node serving plain
    /// on loopback).
    #[arg(long)]
    node: String,
    /// With https://: the CA certificate (PEM) the node's certificate is verified against.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// The analyst's name ([[analyst]] of the node's config); the token is read from
    /// TRILINK_ANALYST_TOKEN.
    #[arg(long)]
    analyst: String,
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// A STIX 2.1 bundle or a TAXII envelope, as JSON.
    file: PathBuf,
    #[command(flatten)]
    conn: Conn,
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    conn: Conn,
    /// Only these STIX types (comma-separated).
    #[arg(long)]
    r#type: Option<String>,
    /// Only objects the node added after this TAXII timestamp.
    #[arg(long)]
    added_after: Option<String>,
    /// Write the bundle here (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(cmd: &CtiCommand) -> Result<(), Failure> {
    match cmd {
        CtiCommand::Import(a) => import(a),
        CtiCommand::Export(a) => export(a),
    }
}

struct Client {
    host: String,
    addr: std::net::SocketAddr,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    auth: String,
}

impl Client {
    fn new(c: &Conn) -> Result<Client, Failure> {
        let token = std::env::var("TRILINK_ANALYST_TOKEN")
            .map_err(|_| Failure::Input(anyhow!("set TRILINK_ANALYST_TOKEN to the analyst's token")))?;
        let (host, tls) = if let Some(h) = c.node.strip_prefix("https://") {
            let ca = c
                .ca
                .as_ref()
                .ok_or_else(|| Failure::Input(anyhow!("--node {}: give --ca, the node's CA certificate", c.node)))?;
            (h, Some(crate::https::client_config(ca).map_err(Failure::Input)?))
        } else if let Some(h) = c.node.strip_prefix("http://") {
            (h, None)
        } else {
            return Err(Failure::Input(anyhow!("--node {:?} must be https://host:port", c.node)));
        };
        let host = host.trim_end_matches('/').to_string();
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&host)
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| Failure::Input(anyhow!("--node {}: {host:?} does not resolve to an address", c.node)))?;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{token}", c.analyst));
        Ok(Client { host, addr, tls, auth: format!("Basic {auth}") })
    }

    /// One request on its own connection: the status and the body as JSON.
    fn call(&self, method: &str, path: &str, body: Option<&str>) -> anyhow::Result<(u16, Value)> {
        let body = body.unwrap_or("");
        let mut headers = vec![("Host", self.host.as_str()), ("Accept", MEDIA), ("Authorization", self.auth.as_str())];
        if method == "POST" {
            headers.push(("Content-Type", MEDIA));
        }
        let (_, raw) = crate::https::exchange(
            self.addr,
            self.tls.as_ref(),
            method,
            path,
            &headers,
            body.as_bytes(),
            Duration::from_secs(120),
        )
        .with_context(|| format!("failed to reach {}", self.host))?;
        let text = raw;
        let (head, rest) = text.split_once("\r\n\r\n").ok_or_else(|| anyhow!("no HTTP answer from {}", self.host))?;
        let status: u16 = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            let mut out = String::new();
            let mut b = rest;
            while let Some((size, r)) = b.split_once("\r\n") {
                let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                if n == 0 || r.len() < n {
                    break;
                }
                out.push_str(&r[..n]);
                b = r[n..].trim_start_matches("\r\n");
            }
            out
        } else {
            rest.to_string()
        };
        let v = serde_json::from_str(&body).unwrap_or(Value::String(body));
        Ok((status, v))
    }
}

fn import(a: &ImportArgs) -> Result<(), Failure> {
    let client = Client::new(&a.conn)?;
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("failed to read {}", a.file.display()))
        .map_err(Failure::Input)?;
    let v: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", a.file.display()))
        .map_err(Failure::Input)?;
    let objects = v.get("objects").and_then(Value::as_array).ok_or_else(|| {
        Failure::Input(anyhow!("{}: expected a STIX bundle or a TAXII envelope with \"objects\"", a.file.display()))
    })?;
    let (mut kept, mut refused) = (0u64, Vec::new());
    for chunk in objects.chunks(PER_POST) {
        let body = json!({"objects": chunk}).to_string();
        let (status, st) = client.call("POST", &format!("{COLLECTION}objects/"), Some(&body)).map_err(Failure::Run)?;
        if status != 202 {
            return Err(Failure::Run(anyhow!("the node answered {status}: {st}")));
        }
        kept += st["success_count"].as_u64().unwrap_or(0);
        for f in st["failures"].as_array().into_iter().flatten() {
            refused.push(format!("{}: {}", f["id"], f["message"].as_str().unwrap_or("")));
        }
    }
    println!("{kept} objects kept, {} refused", refused.len());
    for r in &refused {
        println!("  refused {r}");
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(Failure::Run(anyhow!("{} objects were refused", refused.len())))
    }
}

fn export(a: &ExportArgs) -> Result<(), Failure> {
    let client = Client::new(&a.conn)?;
    let mut query = String::from("limit=1000");
    if let Some(t) = &a.r#type {
        query += &format!("&match%5Btype%5D={t}");
    }
    if let Some(t) = &a.added_after {
        query += &format!("&added_after={t}");
    }
    let mut objects = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let path = match &next {
            Some(n) => format!("{COLLECTION}objects/?{query}&next={n}"),
            None => format!("{COLLECTION}objects/?{query}"),
        };
        let (status, page) = client.call("GET", &path, None).map_err(Failure::Run)?;
        if status != 200 {
            return Err(Failure::Run(anyhow!("the node answered {status}: {page}")));
        }
        objects.extend(page["objects"].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(n) if page["more"] == true => next = Some(n.to_string()),
            _ => break,
        }
    }
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| Failure::Run(anyhow!("no randomness: {e}")))?;
    let bundle = json!({
        "type": "bundle",
        "id": format!("bundle--{}", cti::uuid_v4(id)),
        "objects": objects,
    });
    let text = serde_json::to_string_pretty(&bundle).map_err(|e| Failure::Run(e.into()))? + "\n";
    match &a.out {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("failed to write {}", p.display())).map_err(Failure::Run)?
        }
        None => print!("{text}"),
    }
    eprintln!("{} objects exported", bundle["objects"].as_array().map_or(0, Vec::len));
    Ok(())
}
