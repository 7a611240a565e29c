//! The node's one typed config (TOML, docs/node.md): read, every key checked, unknown keys
//! reported, paths resolved against the config file's directory.

use anyhow::{anyhow, bail, Context};
use cot::config::{CotConfig, CotFormat, CotListen, CotPush};
use federation::Partner;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use vocab::Nation;

/// Most records per group commit on a JetStream store (see `max_group_records`).
pub const JETSTREAM_MAX_GROUP_RECORDS: usize = 400;

/// Most sensors one node authenticates.
pub const MAX_SENSORS: usize = 10_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    nation: String,
    data_dir: PathBuf,
    #[serde(default)]
    store: Option<String>,
    #[serde(default)]
    store_monitor: Vec<String>,
    #[serde(default)]
    store_prefix: Option<String>,
    #[serde(default = "default_store_timeout_s")]
    store_timeout_s: f64,
    #[serde(default)]
    store_role: Option<String>,
    signing_key: PathBuf,
    #[serde(default)]
    releasable_to: Vec<String>,
    listen: FileListen,
    #[serde(default)]
    ingest: FileIngest,
    #[serde(default)]
    log: FileLog,
    #[serde(default)]
    fusion: FileFusion,
    #[serde(default, rename = "sensor")]
    sensors: Vec<FileSensor>,
    #[serde(default, rename = "area")]
    areas: Vec<FileArea>,
    federation: Option<FileFederation>,
    #[serde(default, rename = "partner")]
    partners: Vec<FilePartner>,
    #[serde(default, rename = "origin_key")]
    origin_keys: Vec<FileOriginKey>,
    web: Option<FileWeb>,
    cot: Option<FileCot>,
    #[serde(default, rename = "operator")]
    operators: Vec<FileOperator>,
    #[serde(default, rename = "analyst")]
    analysts: Vec<FileOperator>,
    #[serde(default, rename = "user")]
    users: Vec<FileUser>,
    cti: Option<FileCti>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUser {
    name: String,
    roles: Vec<String>,
    token_sha256: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCti {
    #[serde(default)]
    amber_partners: Vec<String>,
    #[serde(default)]
    identities: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCot {
    #[serde(default = "default_stale_s")]
    track_stale_s: f64,
    #[serde(default = "default_min_interval_ms")]
    min_interval_ms: u64,
    #[serde(default)]
    listen: Vec<FileCotListen>,
    #[serde(default)]
    push: Vec<FileCotPush>,
}

fn default_stale_s() -> f64 {
    10.0
}

fn default_min_interval_ms() -> u64 {
    1000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCotListen {
    address: SocketAddr,
    format: String,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
    #[serde(default)]
    plain: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCotPush {
    address: String,
    format: String,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    server_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWeb {
    dir: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOperator {
    name: String,
    token_sha256: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFederation {
    listen: SocketAddr,
    tls_cert: PathBuf,
    tls_key: PathBuf,
    #[serde(default)]
    relay: bool,
    handshake_timeout_ms: Option<u64>,
    max_handshakes: Option<usize>,
    max_handshakes_per_source: Option<usize>,
    #[serde(default)]
    allow_sources: Vec<String>,
}

/// The longest handshake deadline a config may set: past it a silent connection costs a slot
/// for longer than any partner would wait.
const MAX_HANDSHAKE_TIMEOUT_MS: u64 = 30_000;
/// Most handshakes in progress a config may allow, and most allowed source networks.
const MAX_HANDSHAKES: usize = 65_536;
const MAX_ALLOW_SOURCES: usize = 1_024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePartner {
    nation: String,
    address: Option<SocketAddr>,
    ca: PathBuf,
    signing_key: PathBuf,
    #[serde(default)]
    accept_relay: bool,
    release_kinds: Option<Vec<String>>,
    transform: Option<FileTransform>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTransform {
    #[serde(default)]
    pseudonymize_sensors: bool,
    #[serde(default)]
    site_precision_km: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOriginKey {
    nation: String,
    signing_key: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileListen {
    http: SocketAddr,
    grpc: SocketAddr,
    #[serde(default)]
    names: Vec<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    #[serde(default)]
    plain: bool,
    max_connections: Option<usize>,
    max_connections_per_source: Option<usize>,
    idle_timeout_s: Option<u64>,
    handshake_timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileIngest {
    max_future_s: f64,
    max_age_s: f64,
    max_batch_measurements: usize,
    max_body_bytes: usize,
}

impl Default for FileIngest {
    fn default() -> Self {
        let d = IngestLimits::default();
        FileIngest {
            max_future_s: d.max_future_s,
            max_age_s: d.max_age_s,
            max_batch_measurements: d.max_batch_measurements,
            max_body_bytes: d.max_body_bytes,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileLog {
    max_group_records: usize,
    queue_records: usize,
}

impl Default for FileLog {
    fn default() -> Self {
        FileLog { max_group_records: 4096, queue_records: 16_384 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileFusion {
    reorder_window_ms: u64,
    impact_predictions_per_s: f64,
    realtime_priority: u8,
}

impl Default for FileFusion {
    fn default() -> Self {
        FileFusion { reorder_window_ms: 250, impact_predictions_per_s: 50.0, realtime_priority: 0 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSensor {
    id: String,
    nation: Option<String>,
    token_sha256: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileArea {
    file: PathBuf,
}

/// Limits on what sensors send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IngestLimits {
    /// A measurement time further ahead of the node's clock than this is refused (sensor clock
    /// fault): one minute tolerates any NTP-synchronised sensor.
    pub max_future_s: f64,
    /// A measurement older than this is refused: it can no longer change any warning.
    pub max_age_s: f64,
    /// Measurements per batch (a radar's scan of a salvo is a few hundred).
    pub max_batch_measurements: usize,
    /// Bytes per HTTP request body.
    pub max_body_bytes: usize,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_future_s: 60.0,
            max_age_s: 3_600.0,
            max_batch_measurements: 10_000,
            max_body_bytes: 16 * 1024 * 1024,
        }
    }
}

/// A sensor allowed to send: its id, the nation its measurements must carry and the SHA-256
/// of its bearer token (the node never stores the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sensor {
    pub id: String,
    pub nation: Nation,
    pub token_sha256: [u8; 32],
}

fn default_store_timeout_s() -> f64 {
    20.0
}

/// Where the node keeps its log (docs/store.md).
#[derive(Debug, Clone, PartialEq)]
pub enum StoreConfig {
    /// The embedded segment-file store in `data_dir`.
    Files,
    /// A NATS JetStream cluster.
    JetStream { servers: Vec<String>, monitors: Vec<String>, prefix: String, timeout_s: f64, role: Role },
}

/// What a node process does with a JetStream store shared by several processes of its nation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Holds the chain: appends, fuses, alerts, federates (one per nation).
    Writer,
    /// Checks sensors' batches and forwards them to the writer; serves the log from the store.
    Ingest,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub nation: Nation,
    pub data_dir: PathBuf,
    pub store: StoreConfig,
    pub signing_key: PathBuf,
    /// Marking of the node's own records: nations they may be released to.
    pub releasable_to: Vec<Nation>,
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    pub ingest: IngestLimits,
    /// Most records one group commit covers.
    pub max_group_records: usize,
    /// Records queued for the writer before senders wait (backpressure).
    pub queue_records: usize,
    pub reorder_window_s: f64,
    pub impact_predictions_per_s: f64,
    /// SCHED_FIFO priority of the fusion thread (1–99), or 0: normal scheduling.
    pub fusion_realtime_priority: u8,
    /// Sensors by token hash.
    pub sensors: BTreeMap<[u8; 32], Sensor>,
    pub area_files: Vec<PathBuf>,
    pub federation: Option<federation::Settings>,
    /// The built web UI (`web/dist`), served at `/`.
    pub web_dir: Option<PathBuf>,
    pub cot: Option<CotConfig>,
    /// Analysts who may read and post threat intelligence over TAXII: name by token hash.
    pub analysts: BTreeMap<[u8; 32], String>,
    /// Partners TLP:AMBER objects go to (`[cti] amber_partners`).
    pub cti_amber_partners: Vec<Nation>,
    /// The nations' STIX identities (`[cti] identities`, nation → identity id), as identity id
    /// → nation: an object whose `created_by_ref` is one may come only from that nation.
    pub cti_identities: BTreeMap<String, Nation>,
    /// Every credential: `[[user]]`, `[[operator]]` (duty officers), `[[analyst]]` and
    /// `[[sensor]]` (docs/security.md).
    pub directory: access::Directory,
    /// Host names the node answers browsers under (`[listen] names`), besides `localhost` and
    /// address literals.
    pub names: Vec<String>,
    /// The HTTP and gRPC listeners' certificate chain and key (PEM); None only when the config
    /// asks for plain on loopback (`[listen] plain = true`).
    pub api_tls: Option<(PathBuf, PathBuf)>,
    /// The bounds on each API listener's connections.
    pub api_limits: crate::listen::Limits,
}

/// Most CoT listeners and pushes.
const MAX_COT_ENDPOINTS: usize = 16;

/// Longest operator name.
pub const MAX_OPERATOR_NAME: usize = 64;

impl Config {
    /// Parses config text; relative paths are taken from `base`.
    pub fn parse(text: &str, base: &Path) -> anyhow::Result<Config> {
        let f: File = toml::from_str(text).map_err(|e| anyhow!("{e}"))?;
        let nation = Nation::parse(&f.nation).context("key `nation`")?;
        let releasable_to = f
            .releasable_to
            .iter()
            .map(|n| Nation::parse(n).context("key `releasable_to`"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        for (i, n) in releasable_to.iter().enumerate() {
            if *n == nation {
                bail!("key `releasable_to`: {n} is this node's own nation (its records are always its own)");
            }
            if releasable_to[..i].contains(n) {
                bail!("key `releasable_to`: {n} is named twice");
            }
        }
        let i = &f.ingest;
        if !(i.max_future_s >= 0.0 && i.max_future_s <= 86_400.0) {
            bail!("key `ingest.max_future_s`: {} is not between 0 and 86400", i.max_future_s);
        }
        if !(i.max_age_s > 0.0 && i.max_age_s <= 365.0 * 86_400.0) {
            bail!("key `ingest.max_age_s`: {} is not between 0 and a year", i.max_age_s);
        }
        if !(1..=100_000).contains(&i.max_batch_measurements) {
            bail!("key `ingest.max_batch_measurements`: {} is not between 1 and 100000", i.max_batch_measurements);
        }
        if !(1024..=64 * 1024 * 1024).contains(&i.max_body_bytes) {
            bail!("key `ingest.max_body_bytes`: {} is not between 1 KiB and 64 MiB", i.max_body_bytes);
        }
        if !(1..=65_536).contains(&f.log.max_group_records) || !(1..=1_000_000).contains(&f.log.queue_records) {
            bail!("keys `log.max_group_records` (1..=65536) and `log.queue_records` (1..=1000000) are out of range");
        }
        if f.fusion.reorder_window_ms > 60_000 {
            bail!("key `fusion.reorder_window_ms`: {} exceeds a minute", f.fusion.reorder_window_ms);
        }
        if !(f.fusion.impact_predictions_per_s >= 0.0 && f.fusion.impact_predictions_per_s <= 10_000.0) {
            bail!("key `fusion.impact_predictions_per_s` must be between 0 and 10000");
        }
        if f.fusion.realtime_priority > 99 {
            bail!(
                "key `fusion.realtime_priority`: {} is not between 0 (normal scheduling) and 99 (SCHED_FIFO's highest)",
                f.fusion.realtime_priority
            );
        }
        if f.sensors.len() > MAX_SENSORS {
            bail!("{} sensors exceed the limit of {MAX_SENSORS}", f.sensors.len());
        }
        let cot = match &f.cot {
            None => None,
            Some(c) => {
                let resolve = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
                if c.listen.len() + c.push.len() > MAX_COT_ENDPOINTS {
                    bail!("[cot]: more than {MAX_COT_ENDPOINTS} listeners and pushes");
                }
                if !(c.track_stale_s >= 1.0 && c.track_stale_s <= 3600.0) {
                    bail!("key `cot.track_stale_s`: {} is not between 1 and 3600", c.track_stale_s);
                }
                if c.min_interval_ms > 60_000 {
                    bail!("key `cot.min_interval_ms`: {} exceeds a minute", c.min_interval_ms);
                }
                let mut listen = Vec::new();
                for l in &c.listen {
                    let at = || format!("[[cot.listen]] {}", l.address);
                    if l.tls_cert.is_some() != l.tls_key.is_some() {
                        bail!("{}: set both tls_cert and tls_key, or neither", at());
                    }
                    if l.client_ca.is_some() && l.tls_cert.is_none() {
                        bail!("{}: client_ca needs tls_cert and tls_key", at());
                    }
                    // The picture goes only to TAK clients with a certificate of the CA named
                    // here; plain TCP only when asked for, on loopback (a local TAK server or
                    // a proxy that does its own TLS).
                    match (l.tls_cert.is_some() && l.client_ca.is_some(), l.plain) {
                        (true, false) => {}
                        (false, true) if l.address.ip().is_loopback() => {}
                        (false, true) => bail!("{}: plain = true is allowed only on a loopback address", at()),
                        (true, true) => bail!("{}: plain = true and tls_cert: choose one", at()),
                        (false, false) => bail!(
                            "{}: give tls_cert, tls_key and client_ca (TAK clients present certificates of that CA), or plain = true on a loopback address",
                            at()
                        ),
                    }
                    listen.push(CotListen {
                        address: l.address,
                        format: CotFormat::parse(&l.format).with_context(at)?,
                        tls_cert: l.tls_cert.as_ref().map(|p| resolve(p)),
                        tls_key: l.tls_key.as_ref().map(|p| resolve(p)),
                        client_ca: l.client_ca.as_ref().map(|p| resolve(p)),
                    });
                }
                let mut push = Vec::new();
                for p in &c.push {
                    let at = || format!("[[cot.push]] {}", p.address);
                    if p.address.rsplit_once(':').and_then(|(_, port)| port.parse::<u16>().ok()).is_none() {
                        bail!("{}: address must be host:port", at());
                    }
                    if p.cert.is_some() != p.key.is_some() {
                        bail!("{}: set both cert and key, or neither", at());
                    }
                    if (p.cert.is_some() || p.server_name.is_some()) && p.ca.is_none() {
                        bail!("{}: cert, key and server_name need ca (TLS)", at());
                    }
                    push.push(CotPush {
                        address: p.address.clone(),
                        format: CotFormat::parse(&p.format).with_context(at)?,
                        ca: p.ca.as_ref().map(|x| resolve(x)),
                        cert: p.cert.as_ref().map(|x| resolve(x)),
                        key: p.key.as_ref().map(|x| resolve(x)),
                        server_name: p.server_name.clone(),
                    });
                }
                Some(CotConfig {
                    stale_s: c.track_stale_s,
                    min_interval: std::time::Duration::from_millis(c.min_interval_ms),
                    listen,
                    push,
                })
            }
        };
        let mut cti_identities = BTreeMap::new();
        for (n, id) in f.cti.as_ref().map(|c| c.identities.clone()).unwrap_or_default() {
            let nation = Nation::parse(&n).with_context(|| format!("key `cti.identities.{n}`"))?;
            let uuid = id.strip_prefix("identity--").unwrap_or("");
            if uuid.len() != 36 || !uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                bail!("key `cti.identities.{n}`: {id:?} is not a STIX identity id (identity--<uuid>)");
            }
            if cti_identities.insert(id.to_ascii_lowercase(), nation).is_some() {
                bail!("key `cti.identities`: {id} is given to two nations");
            }
        }
        let cti_amber_partners = f
            .cti
            .as_ref()
            .map(|c| c.amber_partners.iter().map(|n| Nation::parse(n).context("key `cti.amber_partners`")).collect())
            .transpose()?
            .unwrap_or_default();
        let mut directory = access::Directory::default();
        let mut analysts = BTreeMap::new();
        let people = f.users.iter().map(|u| ("user", u.name.as_str(), u.roles.clone(), u.token_sha256.as_str()));
        let people = people
            .chain(
                f.operators
                    .iter()
                    .map(|o| ("operator", o.name.as_str(), vec!["duty_officer".into()], o.token_sha256.as_str())),
            )
            .chain(
                f.analysts
                    .iter()
                    .map(|o| ("analyst", o.name.as_str(), vec!["analyst".into()], o.token_sha256.as_str())),
            );
        for (table, name, role_names, token) in people {
            if name.is_empty()
                || name.len() > MAX_OPERATOR_NAME
                || name.contains(':')
                || name.chars().any(char::is_control)
            {
                bail!("{table} {name:?}: name must be 1 to {MAX_OPERATOR_NAME} bytes of printable text without ':'");
            }
            let mut hash = [0u8; 32];
            hex::decode_to_slice(token.trim(), &mut hash)
                .map_err(|e| anyhow!("{table} {name:?}: key `token_sha256`: {e} (expected 64 hex digits)"))?;
            let mut roles = Vec::new();
            for r in &role_names {
                match access::Role::parse(r) {
                    Ok(access::Role::Sensor) => bail!("{table} {name:?}: sensors are [[sensor]] tables, not users"),
                    Ok(role) => roles.push(role),
                    Err(e) => bail!("{table} {name:?}: key `roles`: {e}"),
                }
            }
            if roles.is_empty() {
                bail!("{table} {name:?}: key `roles` is empty: give at least one role");
            }
            let roles = access::Roles::of(&roles);
            if roles.has(access::Role::Analyst) {
                analysts.insert(hash, name.to_string());
            }
            directory
                .add(hash, access::Principal { name: name.to_string(), roles })
                .map_err(|e| anyhow!("{table} {e}"))?;
        }
        let mut sensors = BTreeMap::new();
        for s in &f.sensors {
            if s.id.is_empty() || s.id.len() > ingest::MAX_SENSOR_ID_BYTES {
                bail!("sensor {:?}: id must be 1 to {} bytes", s.id, ingest::MAX_SENSOR_ID_BYTES);
            }
            let mut hash = [0u8; 32];
            hex::decode_to_slice(s.token_sha256.trim(), &mut hash)
                .map_err(|e| anyhow!("sensor {:?}: key `token_sha256`: {e} (expected 64 hex digits)", s.id))?;
            let sensor_nation = match &s.nation {
                Some(n) => Nation::parse(n).with_context(|| format!("sensor {:?}: key `nation`", s.id))?,
                None => nation,
            };
            let sensor = Sensor { id: s.id.clone(), nation: sensor_nation, token_sha256: hash };
            directory
                .add(hash, access::Principal { name: s.id.clone(), roles: access::Roles::of(&[access::Role::Sensor]) })
                .map_err(|e| anyhow!("sensor {e}"))?;
            if sensors.insert(hash, sensor).is_some() {
                bail!("sensor {:?}: its token is also another sensor's", s.id);
            }
        }
        let resolve = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
        let federation = match &f.federation {
            None if !f.partners.is_empty() || !f.origin_keys.is_empty() => {
                bail!("[[partner]] and [[origin_key]] need a [federation] section (listen, tls_cert, tls_key)")
            }
            None => None,
            Some(fed) => {
                let mut partners: Vec<Partner> = Vec::new();
                for p in &f.partners {
                    let pn = Nation::parse(&p.nation).context("[[partner]] key `nation`")?;
                    if pn == nation {
                        bail!("[[partner]] {pn} is this node's own nation");
                    }
                    if partners.iter().any(|q| q.nation == pn) {
                        bail!("[[partner]] {pn} is listed twice");
                    }
                    let kinds = match &p.release_kinds {
                        None => federation::protocol::EgressPolicy::default().kinds,
                        Some(names) => names
                            .iter()
                            .map(|k| {
                                wire::RecordKind::from_str_name(&format!("RECORD_KIND_{}", k.to_uppercase()))
                                    .filter(|k| federation::protocol::shareable_kinds().contains(k))
                                    .ok_or_else(|| {
                                        anyhow!(
                                            "[[partner]] {pn}: key `release_kinds`: {k:?} is not one of {}",
                                            federation::protocol::shareable_kinds()
                                                .iter()
                                                .map(|k| k.as_str_name().trim_start_matches("RECORD_KIND_"))
                                                .collect::<Vec<_>>()
                                                .join(", ")
                                        )
                                    })
                            })
                            .collect::<anyhow::Result<_>>()?,
                    };
                    let transform = match &p.transform {
                        None => None,
                        Some(t) => {
                            if !(0.0..=1000.0).contains(&t.site_precision_km) {
                                bail!("[[partner]] {pn}: key `transform.site_precision_km` must be between 0 and 1000");
                            }
                            if !t.pseudonymize_sensors && t.site_precision_km == 0.0 {
                                bail!("[[partner]] {pn}: `transform` changes nothing (set pseudonymize_sensors or site_precision_km)");
                            }
                            Some(federation::transform::Transform {
                                pseudonymize_sensors: t.pseudonymize_sensors,
                                site_precision_km: t.site_precision_km,
                            })
                        }
                    };
                    partners.push(Partner {
                        nation: pn,
                        address: p.address,
                        ca: resolve(&p.ca),
                        signing_key: resolve(&p.signing_key),
                        accept_relay: p.accept_relay,
                        release: federation::protocol::EgressPolicy {
                            kinds,
                            transformed_for: transform.as_ref().map(|_| nation),
                        },
                        transform,
                    });
                }
                let mut origin_keys = BTreeMap::new();
                for o in &f.origin_keys {
                    let on = Nation::parse(&o.nation).context("[[origin_key]] key `nation`")?;
                    if on == nation || partners.iter().any(|p| p.nation == on) {
                        bail!("[[origin_key]] {on}: its key is already known (own nation or a partner)");
                    }
                    origin_keys.insert(on, resolve(&o.signing_key));
                }
                let defaults = federation::tls::HandshakeLimits::default();
                let timeout_ms = fed.handshake_timeout_ms.unwrap_or(defaults.deadline.as_millis() as u64);
                if !(100..=MAX_HANDSHAKE_TIMEOUT_MS).contains(&timeout_ms) {
                    bail!("key `federation.handshake_timeout_ms`: {timeout_ms} is not between 100 and {MAX_HANDSHAKE_TIMEOUT_MS}");
                }
                let total = fed.max_handshakes.unwrap_or(defaults.total);
                if !(1..=MAX_HANDSHAKES).contains(&total) {
                    bail!("key `federation.max_handshakes`: {total} is not between 1 and {MAX_HANDSHAKES}");
                }
                let per_source = fed.max_handshakes_per_source.unwrap_or(defaults.per_source);
                if !(1..=total).contains(&per_source) {
                    bail!("key `federation.max_handshakes_per_source`: {per_source} is not between 1 and max_handshakes ({total})");
                }
                if fed.allow_sources.len() > MAX_ALLOW_SOURCES {
                    bail!("key `federation.allow_sources`: more than {MAX_ALLOW_SOURCES} networks");
                }
                let allow = fed
                    .allow_sources
                    .iter()
                    .map(|n| federation::tls::SourceNet::parse(n))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| anyhow!("key `federation.allow_sources`: {e}"))?;
                Some(federation::Settings {
                    listen: fed.listen,
                    tls_cert: resolve(&fed.tls_cert),
                    tls_key: resolve(&fed.tls_key),
                    relay: fed.relay,
                    partners,
                    origin_keys,
                    handshake: federation::tls::HandshakeLimits {
                        deadline: std::time::Duration::from_millis(timeout_ms),
                        total,
                        per_source,
                        allow,
                    },
                })
            }
        };
        let store = match f.store.as_deref() {
            None | Some("file") => {
                if !f.store_monitor.is_empty() || f.store_prefix.is_some() || f.store_role.is_some() {
                    bail!(
                        "keys `store_monitor`, `store_prefix` and `store_role` apply only with `store = \"nats://…\"`"
                    );
                }
                StoreConfig::Files
            }
            Some(urls) => {
                let servers: Vec<String> = urls.split(',').map(|u| u.trim().to_string()).collect();
                if let Some(bad) = servers.iter().find(|u| !u.starts_with("nats://") || u.len() <= "nats://".len()) {
                    bail!("key `store`: {bad:?} is not a nats:// URL (give `file`, or nats://host:port[,nats://host:port…])");
                }
                if f.store_monitor.is_empty() {
                    bail!("key `store_monitor`: give each NATS server's monitoring URL (http://host:8222); trilink checks there that JetStream syncs every write");
                }
                if let Some(bad) = f.store_monitor.iter().find(|u| !u.starts_with("http://")) {
                    bail!("key `store_monitor`: {bad:?} is not an http:// URL");
                }
                let prefix = f.store_prefix.clone().unwrap_or_else(|| format!("TRILINK_{nation}"));
                if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                    bail!("key `store_prefix`: {prefix:?} may hold only letters, digits, `_` and `-`");
                }
                if !(f.store_timeout_s.is_finite() && (1.0..=600.0).contains(&f.store_timeout_s)) {
                    bail!("key `store_timeout_s`: {} is not between 1 and 600", f.store_timeout_s);
                }
                let role = match f.store_role.as_deref() {
                    None | Some("writer") => Role::Writer,
                    Some("ingest") => Role::Ingest,
                    Some(other) => bail!("key `store_role`: {other:?} is not \"writer\" or \"ingest\""),
                };
                StoreConfig::JetStream {
                    servers,
                    monitors: f.store_monitor.clone(),
                    prefix,
                    timeout_s: f.store_timeout_s,
                    role,
                }
            }
        };
        let l = &f.listen;
        let api_tls = match (&l.tls_cert, &l.tls_key, l.plain) {
            (Some(c), Some(k), false) => Some((resolve(c), resolve(k))),
            (None, None, true) => {
                if !(l.http.ip().is_loopback() && l.grpc.ip().is_loopback()) {
                    bail!("key `listen.plain`: plain HTTP and gRPC are allowed only on loopback addresses ({} and {} are not); give listen.tls_cert and listen.tls_key", l.http, l.grpc);
                }
                None
            }
            (Some(_), Some(_), true) => bail!("keys `listen.plain` and `listen.tls_cert`: choose one"),
            (None, None, false) => bail!("[listen]: give tls_cert and tls_key (the API's certificate: `trilink pki init --nations` makes api.crt and api.key), or plain = true on loopback addresses"),
            _ => bail!("[listen]: set both tls_cert and tls_key"),
        };
        let d = crate::listen::Limits::default();
        let api_limits = crate::listen::Limits {
            max_connections: l.max_connections.unwrap_or(d.max_connections),
            per_source: l.max_connections_per_source.unwrap_or(d.per_source),
            idle: std::time::Duration::from_secs(l.idle_timeout_s.unwrap_or(d.idle.as_secs())),
            handshake: std::time::Duration::from_millis(
                l.handshake_timeout_ms.unwrap_or(d.handshake.as_millis() as u64),
            ),
        };
        if !(1..=1_000_000).contains(&api_limits.max_connections) {
            bail!("key `listen.max_connections`: {} is not between 1 and 1000000", api_limits.max_connections);
        }
        if !(1..=api_limits.max_connections).contains(&api_limits.per_source) {
            bail!(
                "key `listen.max_connections_per_source`: {} is not between 1 and max_connections",
                api_limits.per_source
            );
        }
        if !(5..=86_400).contains(&api_limits.idle.as_secs()) {
            bail!("key `listen.idle_timeout_s`: {} is not between 5 and 86400", api_limits.idle.as_secs());
        }
        if !(100..=30_000).contains(&api_limits.handshake.as_millis()) {
            bail!(
                "key `listen.handshake_timeout_ms`: {} is not between 100 and 30000",
                api_limits.handshake.as_millis()
            );
        }
        let on_jetstream = matches!(store, StoreConfig::JetStream { .. });
        Ok(Config {
            federation,
            nation,
            store,
            data_dir: resolve(&f.data_dir),
            signing_key: resolve(&f.signing_key),
            releasable_to,
            http: f.listen.http,
            grpc: f.listen.grpc,
            ingest: IngestLimits {
                max_future_s: i.max_future_s,
                max_age_s: i.max_age_s,
                max_batch_measurements: i.max_batch_measurements,
                max_body_bytes: i.max_body_bytes,
            },
            // On JetStream a group and its checkpoint go as one atomic batch (at most 1000
            // messages, derived copies included): docs/store.md.
            max_group_records: if on_jetstream {
                f.log.max_group_records.min(JETSTREAM_MAX_GROUP_RECORDS)
            } else {
                f.log.max_group_records
            },
            queue_records: f.log.queue_records,
            reorder_window_s: f.fusion.reorder_window_ms as f64 / 1000.0,
            impact_predictions_per_s: f.fusion.impact_predictions_per_s,
            fusion_realtime_priority: f.fusion.realtime_priority,
            sensors,
            area_files: f.areas.iter().map(|a| resolve(&a.file)).collect(),
            web_dir: f.web.as_ref().map(|w| resolve(&w.dir)),
            analysts,
            cti_amber_partners,
            cot,
            directory,
            cti_identities,
            names: f.listen.names.clone(),
            api_tls,
            api_limits,
        })
    }

    /// Reads and parses a config file.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("failed to read {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, base).with_context(|| format!("failed to load {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pki::token_hash;

    const GOOD: &str = r#"
nation = "JPN"
data_dir = "data"
signing_key = "keys/node.key"
releasable_to = ["USA", "KOR"]
listen = { http = "127.0.0.1:8080", grpc = "127.0.0.1:50051", plain = true }
[[sensor]]
id = "JPN-FPS5-SADO"
token_sha256 = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
[[area]]
file = "areas/japan.geojson"
"#;

    #[test]
    fn example_configs_load() {
        for nation in ["usa", "jpn", "kor"] {
            let path = PathBuf::from(format!("{}/../../config/{nation}.toml", env!("CARGO_MANIFEST_DIR")));
            let c = Config::load(&path).unwrap();
            assert_eq!(c.nation.as_str(), nation.to_uppercase());
            assert!(!c.sensors.is_empty() && !c.area_files.is_empty());
            for f in &c.area_files {
                assert!(f.exists(), "{}", f.display());
            }
        }
    }

    #[test]
    fn good_config_parses_with_defaults() {
        let c = Config::parse(GOOD, Path::new("/etc/trilink")).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/etc/trilink/data"));
        assert_eq!(c.ingest, IngestLimits::default());
        let s = c.sensors.get(&token_hash("foo")).unwrap();
        assert_eq!((s.id.as_str(), s.nation.as_str()), ("JPN-FPS5-SADO", "JPN"));
    }

    #[test]
    fn a_jetstream_store_is_chosen_by_url_and_caps_the_group() {
        let text = format!(
            "store = \"nats://10.0.0.1:4222, nats://10.0.0.2:4222\"\nstore_monitor = [\"http://10.0.0.1:8222\", \"http://10.0.0.2:8222\"]\n{GOOD}"
        );
        let c = Config::parse(&text, Path::new(".")).unwrap();
        assert_eq!(
            c.store,
            StoreConfig::JetStream {
                servers: vec!["nats://10.0.0.1:4222".into(), "nats://10.0.0.2:4222".into()],
                monitors: vec!["http://10.0.0.1:8222".into(), "http://10.0.0.2:8222".into()],
                prefix: format!("TRILINK_{}", c.nation),
                timeout_s: 20.0,
                role: Role::Writer,
            }
        );
        assert_eq!(c.max_group_records, JETSTREAM_MAX_GROUP_RECORDS);
        assert_eq!(Config::parse(GOOD, Path::new(".")).unwrap().store, StoreConfig::Files);
    }

    #[test]
    fn bad_configs_name_the_key() {
        let cases = [
            (GOOD.replace("nation = \"JPN\"", "nation = \"Japan\""), "nation"),
            (GOOD.replace("data_dir", "dat_dir"), "unknown field `dat_dir`"),
            (GOOD.replace("127.0.0.1:8080", "localhost"), "invalid socket address"),
            (GOOD.replace("127.0.0.1:8080", "0.0.0.0:8080"), "allowed only on loopback"),
            (GOOD.replace("[\"USA\", \"KOR\"]", "[\"USA\", \"JPN\"]"), "is this node's own nation"),
            (GOOD.replace("[\"USA\", \"KOR\"]", "[\"USA\", \"USA\"]"), "is named twice"),
            (GOOD.replace(", plain = true", ""), "give tls_cert and tls_key"),
            (GOOD.replace("plain = true", "tls_cert = \"a.crt\""), "set both tls_cert and tls_key"),
            (GOOD.replace("2c26b46b", "zz26b46b"), "token_sha256"),
            (format!("{GOOD}\n[ingest]\nmax_future_s = -1\n"), "ingest.max_future_s"),
            (format!("{GOOD}\n[[sensor]]\nid = \"X\"\ntoken_sha256 = \"2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae\"\n"), "its token is also \"JPN-FPS5-SADO\"'s"),
            (format!("{GOOD}\n[[user]]\nname = \"x\"\nroles = [\"root\"]\ntoken_sha256 = \"{}\"\n", "0".repeat(64)), "key `roles`: \"root\" is not a role"),
            (format!("{GOOD}\n[[user]]\nname = \"x\"\nroles = []\ntoken_sha256 = \"{}\"\n", "0".repeat(64)), "key `roles` is empty"),
            (format!("{GOOD}\n[[user]]\nname = \"x\"\nroles = [\"sensor\"]\ntoken_sha256 = \"{}\"\n", "0".repeat(64)), "sensors are [[sensor]] tables"),
            (format!("{GOOD}\n[cot]\n[[cot.listen]]\naddress = \"127.0.0.1:8087\"\nformat = \"json\"\nplain = true\n"), "is not \"xml\" or \"protobuf\""),
            (format!("{GOOD}\n[cot]\n[[cot.listen]]\naddress = \"127.0.0.1:8087\"\nformat = \"xml\"\n"), "give tls_cert, tls_key and client_ca"),
            (format!("{GOOD}\n[cot]\n[[cot.listen]]\naddress = \"0.0.0.0:8087\"\nformat = \"xml\"\nplain = true\n"), "plain = true is allowed only on a loopback address"),
            (format!("{GOOD}\n[cot]\n[[cot.listen]]\naddress = \"127.0.0.1:8087\"\nformat = \"xml\"\ntls_cert = \"a.crt\"\n"), "set both tls_cert and tls_key"),
            (format!("{GOOD}\n[cot]\n[[cot.push]]\naddress = \"takserver\"\nformat = \"xml\"\n"), "address must be host:port"),
            (format!("{GOOD}\n[cot]\ntrack_stale_s = 0.0\n"), "cot.track_stale_s"),
            (format!("{GOOD}\n[federation]\nlisten = \"127.0.0.1:9000\"\ntls_cert = \"a\"\ntls_key = \"b\"\nhandshake_timeout_ms = 60000\n"), "federation.handshake_timeout_ms"),
            (format!("{GOOD}\n[federation]\nlisten = \"127.0.0.1:9000\"\ntls_cert = \"a\"\ntls_key = \"b\"\nmax_handshakes = 4\nmax_handshakes_per_source = 5\n"), "federation.max_handshakes_per_source"),
            (format!("{GOOD}\n[federation]\nlisten = \"127.0.0.1:9000\"\ntls_cert = \"a\"\ntls_key = \"b\"\nallow_sources = [\"10.0.0.0/40\"]\n"), "federation.allow_sources"),
            (format!("{GOOD}\n[fusion]\nrealtime_priority = 100\n"), "fusion.realtime_priority`: 100 is not between 0"),
            (format!("{GOOD}\n[fusion]\nrealtime_priority = -1\n"), "realtime_priority"),
            (format!("{GOOD}\n[[operator]]\nname = \"\"\ntoken_sha256 = \"2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae\"\n"), "name must be 1 to 64"),
            (format!("{GOOD}\n[[operator]]\nname = \"duty\"\ntoken_sha256 = \"xyz\"\n"), "operator \"duty\": key `token_sha256`"),
            (format!("{GOOD}\n[web]\npath = \"dist\"\n"), "unknown field `path`"),
            (format!("store = \"http://a:4222\"\n{GOOD}"), "is not a nats:// URL"),
            (format!("store = \"nats://a:4222,\"\n{GOOD}"), "\"\" is not a nats:// URL"),
            (format!("store = \"nats://a:4222\"\n{GOOD}"), "key `store_monitor`: give each NATS server's"),
            (format!("store = \"nats://a:4222\"\nstore_monitor = [\"a:8222\"]\n{GOOD}"), "is not an http:// URL"),
            (
                format!("store = \"nats://a:4222\"\nstore_monitor = [\"http://a:8222\"]\nstore_prefix = \"a.b\"\n{GOOD}"),
                "key `store_prefix`",
            ),
            (
                format!("store = \"nats://a:4222\"\nstore_monitor = [\"http://a:8222\"]\nstore_timeout_s = 0\n{GOOD}"),
                "key `store_timeout_s`",
            ),
            (format!("store_prefix = \"X\"\n{GOOD}"), "apply only with `store"),
            (
                format!("store = \"nats://a:4222\"\nstore_monitor = [\"http://a:8222\"]\nstore_role = \"reader\"\n{GOOD}"),
                "is not \"writer\" or \"ingest\"",
            ),
        ];
        for (text, want) in cases {
            let err = format!("{:#}", Config::parse(&text, Path::new(".")).unwrap_err());
            assert!(err.contains(want), "{want}: {err}");
        }
    }
}
