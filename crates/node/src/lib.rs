//! One nation's trilink server (`trilink node --config node.toml`).
//!
//! The shell around the sans-IO cores: it authenticates sensors and checks their input
//! (`ingest_batch`), appends every accepted batch to the nation's signed log before it
//! acknowledges it (`writer`, one OS thread, group commit), runs the fusion engine over the log
//! in order and keeps the alert book (`picture`, one OS thread), and serves HTTP/JSON,
//! WebSocket, Prometheus metrics (`http`) and gRPC ingest (`grpc`) on tokio. At start it opens
//! the log (cutting any torn tail) and replays it through fusion, so the picture after a
//! restart is rebuilt from the log alone.
//!
//! Only this crate (and the binary) knows tokio.

pub mod admission;
pub mod config;
mod forward;
mod grpc;
mod guard;
mod http;
mod listen;
mod picture;
pub mod products;

pub use guard::Route;
pub use http::route_table;
mod replay;

use admission::Admission;
use anyhow::{anyhow, Context};
use config::Config;
use fusion::{Engine, EngineConfig};
use journal::{wall_clock, LogHandle, Store};
use ledger::{Chain, FileStore, LogStore};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;
use telemetry::Metrics;
use tokio::sync::{broadcast, mpsc};
use vocab::{Nation, UtcNanos};

/// Stream messages buffered per WebSocket client; a client further behind loses the oldest
/// (counted) and is told so, rather than hold the node's memory.
const EVENT_BUFFER: usize = 4096;

fn load_areas(config: &Config) -> anyhow::Result<(Vec<alert::Area>, serde_json::Value)> {
    let mut areas = Vec::new();
    let mut features = Vec::new();
    for path in &config.area_files {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("failed to read area file {}", path.display()))?;
        let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        let parsed = alert::parse_areas(&text, &stem).with_context(|| format!("failed to load {}", path.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)?;
        match v.get("features").and_then(|f| f.as_array()) {
            Some(f) => features.extend(f.iter().cloned()),
            None => features.push(serde_json::json!({"type": "Feature", "properties": {"name": stem}, "geometry": v})),
        }
        areas.extend(parsed);
    }
    if areas.len() > alert::MAX_AREAS {
        return Err(anyhow!("{} defended areas exceed the limit of {}", areas.len(), alert::MAX_AREAS));
    }
    Ok((areas, serde_json::json!({"type": "FeatureCollection", "features": features})))
}

/// The keys each origin's checkpoints must verify against: the node's own and its partners'.
fn trusted_keys(
    config: &Config,
    key: &ed25519_dalek::SigningKey,
) -> anyhow::Result<BTreeMap<Nation, ed25519_dalek::VerifyingKey>> {
    let own = (config.nation, key.verifying_key());
    match &config.federation {
        Some(f) => f.trusted_keys(own),
        None => Ok(BTreeMap::from([own])),
    }
}

/// An ingest process of a nation whose node runs as several processes on one JetStream store
/// (docs/store.md): it authenticates and checks sensors' batches exactly as the writer would,
/// forwards them to the writer process and acknowledges each once the writer says it is
/// durable. It serves the read API from its own fusion over the log as the writer extends it;
/// what it is asked to write (alert acknowledgements, threat intelligence) goes to the writer
/// too. Federation and CoT run in the writer process only.
async fn run_ingest(mut config: Config, key: ed25519_dalek::SigningKey) -> anyhow::Result<()> {
    let config::StoreConfig::JetStream { servers, monitors, prefix, timeout_s, .. } = config.store.clone() else {
        return Err(anyhow!("an ingest process needs `store = \"nats://…\"`"));
    };
    let (areas, areas_geojson) = load_areas(&config)?;
    let (http_listener, grpc_listener) = bind_api(&mut config).await?;
    let timeout = std::time::Duration::from_secs_f64(timeout_s);
    let settings = jetstore::Settings { servers: servers.clone(), monitors, prefix: prefix.clone(), timeout };
    let trusted = trusted_keys(&config, &key)?;
    let (store, _) = tokio::task::spawn_blocking(move || jetstore::JetStore::open_follower(&settings, &trusted))
        .await
        .context("failed to open the log on NATS")?
        .with_context(|| format!("failed to open the log on NATS ({})", servers.join(",")))?;
    let client = jetstore::async_nats::ConnectOptions::new()
        .name("trilink-ingest")
        .connect(servers.clone())
        .await
        .context("failed to connect to NATS")?;
    let (log_tx, log_rx) = mpsc::channel(config.queue_records);
    let forwarder = tokio::spawn(forward::forward(client, forward::subject(&prefix), log_rx, timeout));
    let (stop_watch, stop) = tokio::sync::watch::channel(false);
    // The picture: this process's own fusion over the log as the writer extends it (a poller
    // reads the stream ends); its products are not logged here — the writer logs its own.
    let store: Store = Arc::new(Mutex::new(Box::new(store)));
    let (metrics, head) = (Arc::new(Metrics::default()), Arc::new(AtomicU64::new(0)));
    let alerts = picture::AlertList::default();
    let (picture, events, cti) =
        (Arc::new(RwLock::new(picture::Picture::default())), broadcast::channel(EVENT_BUFFER).0, shared_cti(&config));
    let (unlogged, _) = mpsc::channel::<journal::Append>(1);
    let links = FusionLinks {
        picture: picture.clone(),
        alerts: alerts.clone(),
        events: events.clone(),
        metrics: metrics.clone(),
        log: unlogged.downgrade(),
        store: store.clone(),
        head: head.clone(),
        cti: cti.clone(),
    };
    let fusion = new_fusion(&config, &areas, links, 0);
    // Nothing is handed to fusion directly: it reads the log up to `head`. The sender lives
    // as long as the process, so fusion runs until exit.
    let (fusion_tx, fusion_rx) = std::sync::mpsc::sync_channel::<journal::Committed>(1);
    let _fusion_thread = std::thread::Builder::new().name("fusion".into()).spawn(move || fusion.run(fusion_rx))?;
    let poll = (store.clone(), head.clone(), config.nation, stop.clone());
    let _poller = std::thread::Builder::new().name("log-follower".into()).spawn(move || follow_log(poll))?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("failed to create {}", config.data_dir.display()))?;
    let audit = guard::Audit::open(&config.data_dir.join("access-audit.jsonl"))?;
    let app = api(Parts {
        audit: Some(audit),
        config: &config,
        key: &key,
        metrics,
        picture,
        alerts,
        events,
        store,
        log: LogHandle::new(log_tx),
        head,
        areas,
        areas_geojson,
        cti,
        fed: None,
        stop,
    });
    let (stop_tx, _) = broadcast::channel::<()>(1);
    tracing::info!(http = %http_listener.local_addr()?, grpc = %grpc_listener.local_addr()?, writer = %forward::subject(&prefix), "ingest process listening");
    let (http_task, grpc_task) = serve_api(&app, &config, http_listener, grpc_listener, &stop_tx)?;
    shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    let _ = stop_tx.send(());
    let _ = stop_watch.send(true);
    drain("HTTP", http_task).await;
    drain("gRPC", grpc_task).await;
    drop(app);
    let _ = forwarder.await;
    drop(fusion_tx);
    tracing::info!("stopped");
    Ok(())
}

/// How often an ingest process looks for what the writer appended.
const FOLLOW_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// An ingest process's view of the log: reads the stream ends every `FOLLOW_INTERVAL` and moves
/// `head` (which fusion reads up to) until the process stops.
fn follow_log((store, head, nation, stop): (Store, Arc<AtomicU64>, Nation, tokio::sync::watch::Receiver<bool>)) {
    let mut warned = false;
    // The read goes to the cluster without the store's lock: a cluster slow to answer (or
    // down, until the store's timeout) must not hold up the API and fusion, which read the
    // store meanwhile.
    let reader = store.lock().ok().and_then(|s| s.ends_reader());
    while !*stop.borrow() {
        // A store without a reader is its own writer: its heads are already current.
        let ends = reader.as_ref().map(|r| r.read()).transpose().map_err(|e| e.to_string());
        let refreshed = ends.and_then(|ends| {
            let mut s = store.lock().map_err(|_| "store lock poisoned".to_string())?;
            if let Some(ends) = ends {
                s.apply_ends(ends).map_err(|e| e.to_string())?;
            }
            Ok(s.heads().into_iter().find(|c| c.origin() == nation).map(|c| c.covered()).unwrap_or(0))
        });
        match refreshed {
            Ok(seq) => {
                head.fetch_max(seq, Relaxed);
                warned = false;
            }
            Err(e) if !warned => {
                tracing::warn!(error = %e, "failed to follow the log; the picture here is behind until the cluster answers");
                warned = true;
            }
            Err(_) => {}
        }
        std::thread::sleep(FOLLOW_INTERVAL);
    }
}

/// The node's Ed25519 signing key, from a file only its owner may read: a key others can read
/// is refused, since whoever reads it can sign records as this nation.
pub fn signing_key(path: &std::path::Path) -> anyhow::Result<ed25519_dalek::SigningKey> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).with_context(|| {
            format!("failed to read signing key {} (make one with `trilink pki init`)", path.display())
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            anyhow::bail!(
                "signing key {} may be read by others (mode {mode:o}): whoever reads it signs as this nation; `chmod 600` it",
                path.display()
            );
        }
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read signing key {} (make one with `trilink pki init`)", path.display()))?;
    ledger::keys::parse_signing_key(&text).with_context(|| format!("in {}", path.display()))
}

/// Runs the node until SIGINT or SIGTERM, then shuts down gracefully: stops taking requests,
/// makes every accepted record durable, and returns.
pub async fn run(mut config: Config) -> anyhow::Result<()> {
    let key = signing_key(&config.signing_key)?;
    if matches!(config.store, config::StoreConfig::JetStream { role: config::Role::Ingest, .. }) {
        return run_ingest(config, key).await;
    }
    let (areas, areas_geojson) = load_areas(&config)?;
    // Listen before anything else starts, so a taken port fails fast and touches nothing.
    let (http_listener, grpc_listener) = bind_api(&mut config).await?;
    let fed_listener = match &config.federation {
        Some(f) => Some(
            tokio::net::TcpListener::bind(f.listen)
                .await
                .with_context(|| format!("failed to listen for partners on {}", f.listen))?,
        ),
        None => None,
    };
    let cot_bound = match config.cot.clone() {
        Some(c) => Some(cot::bind(c).await?),
        None => None,
    };
    let trusted = trusted_keys(&config, &key)?;
    let mut reopen: Option<journal::Reopen> = None;
    let (store, recovery): (Box<dyn LogStore>, _) = match &config.store {
        config::StoreConfig::Files => {
            let (s, r) = FileStore::open_for(&config.data_dir, &trusted, Some(config.nation))
                .with_context(|| format!("failed to open the log in {}", config.data_dir.display()))?;
            (Box::new(s), r)
        }
        config::StoreConfig::JetStream { servers, monitors, prefix, timeout_s, .. } => {
            let settings = jetstore::Settings {
                servers: servers.clone(),
                monitors: monitors.clone(),
                prefix: prefix.clone(),
                timeout: std::time::Duration::from_secs_f64(*timeout_s),
            };
            // Connecting and reading the streams block: off the async runtime.
            let (keys, nation) = (trusted.clone(), config.nation);
            let (again, again_keys) = (settings.clone(), keys.clone());
            reopen = Some(Arc::new(move || {
                jetstore::JetStore::open(&again, &again_keys, Some(nation))
                    .map(|(s, _)| Box::new(s) as Box<dyn LogStore>)
            }));
            let opened = tokio::task::spawn_blocking(move || jetstore::JetStore::open(&settings, &keys, Some(nation)))
                .await
                .context("failed to open the log on NATS")?;
            let (s, r) = opened.with_context(|| format!("failed to open the log on NATS ({})", servers.join(",")))?;
            tracing::info!(replicas = s.replicas(), prefix = %prefix, "log on JetStream");
            (Box::new(s), r)
        }
    };
    if recovery.uncovered_records_kept > 0 {
        tracing::warn!(
            records = recovery.uncovered_records_kept,
            "kept records after the last checkpoint (a group split over batches); the next checkpoint covers them"
        );
    }
    if recovery.torn_bytes_cut > 0 {
        tracing::warn!(
            bytes = recovery.torn_bytes_cut,
            records = recovery.uncovered_records_cut,
            "cut an unacknowledged torn tail from the log"
        );
    }
    let chain =
        store.heads().into_iter().find(|c| c.origin() == config.nation).unwrap_or_else(|| Chain::new(config.nation));
    let start_seq = chain.seq();
    tracing::info!(nation = %config.nation, seq = start_seq, dir = %config.data_dir.display(), "log opened");
    let store = Arc::new(Mutex::new(store));
    let version = Arc::new(tokio::sync::watch::channel(0u64).0);
    let metrics = Arc::new(Metrics::default());
    let head = Arc::new(AtomicU64::new(start_seq));
    let (log_tx, log_rx) = mpsc::channel(config.queue_records);
    let (fusion_tx, fusion_rx) = std::sync::mpsc::sync_channel(config.queue_records);
    let (events, _) = broadcast::channel(EVENT_BUFFER);
    let picture = Arc::new(RwLock::new(picture::Picture::default()));
    let alerts = picture::AlertList::default();
    let cti_state = shared_cti(&config);
    let fusion = new_fusion(
        &config,
        &areas,
        FusionLinks {
            picture: picture.clone(),
            alerts: alerts.clone(),
            events: events.clone(),
            metrics: metrics.clone(),
            log: log_tx.downgrade(),
            store: store.clone(),
            head: head.clone(),
            cti: cti_state.clone(),
        },
        start_seq,
    );
    let fusion_thread = std::thread::Builder::new().name("fusion".into()).spawn(move || fusion.run(fusion_rx))?;
    // Fusion starts behind the log's head and reads the log up to it (the replay) before it
    // takes new records, so the picture after a restart is rebuilt from the log alone.

    let writer = journal::Writer {
        store: store.clone(),
        chain,
        key: key.clone(),
        releasable_to: config.releasable_to.clone(),
        max_group_records: config.max_group_records,
        metrics: metrics.clone(),
        head: head.clone(),
        version: version.clone(),
        reopen,
    };
    let to_fusion = fusion_tx.clone();
    let writer_thread =
        std::thread::Builder::new().name("log-writer".into()).spawn(move || writer.run(log_rx, fusion_tx))?;

    let (stop_watch, stop) = tokio::sync::watch::channel(false);
    let fed = match &config.federation {
        None => None,
        Some(f) => {
            let cas: Vec<_> = f.partners.iter().map(|p| (p.nation, p.ca.as_path())).collect();
            let tls = federation::tls::Tls::load(config.nation, &f.tls_cert, &f.tls_key, &cas)
                .context("failed to load the federation TLS identity")?;
            let releases_dir = config.data_dir.join("releases");
            let releases = federation::state::ReleaseLog::open(&releases_dir, key.clone(), config.nation)
                .with_context(|| format!("failed to open the release audit log in {}", releases_dir.display()))?;
            Some(Arc::new(federation::state::Fed {
                me: config.nation,
                relay: f.relay,
                partners: f.partners.iter().map(|p| (p.nation, p.clone())).collect(),
                trusted: trusted.clone(),
                tls: Arc::new(tls),
                handshake: f.handshake.clone(),
                releases: Mutex::new(releases),
                links: Mutex::new(BTreeMap::new()),
                serving: Mutex::new(BTreeMap::new()),
                refused: Mutex::new(BTreeMap::new()),
                batches_refused: Mutex::new(BTreeMap::new()),
            }))
        }
    };
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("failed to create {}", config.data_dir.display()))?;
    let audit = guard::Audit::open(&config.data_dir.join("access-audit.jsonl"))?;
    let app = api(Parts {
        audit: Some(audit),
        config: &config,
        key: &key,
        metrics,
        picture,
        alerts,
        events,
        store,
        log: LogHandle::new(log_tx),
        head,
        areas,
        areas_geojson,
        cti: cti_state,
        fed: fed.clone(),
        stop,
    });
    // On a shared JetStream store, the nation's ingest processes forward their batches here.
    let forward_task = match &config.store {
        config::StoreConfig::JetStream { servers, prefix, .. } => {
            let client = jetstore::async_nats::ConnectOptions::new()
                .name("trilink-writer")
                .connect(servers.clone())
                .await
                .context("failed to connect to NATS to take the ingest processes' appends")?;
            let (subject, log, stop) = (forward::subject(prefix), app.http.log.sender().clone(), app.http.stop.clone());
            Some(tokio::spawn(async move {
                if let Err(e) = forward::serve(client, subject, log, stop).await {
                    tracing::error!(error = %e, "stopped taking the ingest processes' appends");
                }
            }))
        }
        config::StoreConfig::Files => None,
    };

    if let Some(cot) = cot_bound {
        let view = app.http.picture.clone();
        let source = cot::Source {
            nation: config.nation,
            tracks: Box::new(move || view.read().map(|p| p.tracks.values().cloned().collect()).unwrap_or_default()),
            events: app.http.events.clone(),
            stop: app.http.stop.clone(),
            metrics: app.http.metrics.clone(),
        };
        cot::start(Arc::new(source), cot);
    }
    let (stop_tx, _) = broadcast::channel::<()>(1);
    tracing::info!(http = %http_listener.local_addr()?, grpc = %grpc_listener.local_addr()?, "node listening");
    let (http_task, grpc_task) = serve_api(&app, &config, http_listener, grpc_listener, &stop_tx)?;
    let mut fed_tasks = Vec::new();
    if let (Some(fed), Some(listener)) = (fed, fed_listener) {
        let ctx = federation::Ctx {
            fed: fed.clone(),
            store: app.http.store.clone(),
            version,
            head: app.http.head.clone(),
            stop: app.http.stop.clone(),
            to_fusion,
            metrics: app.http.metrics.clone(),
        };
        tracing::info!(federation = %listener.local_addr()?, partners = fed.partners.len(), relay = fed.relay, "federation listening");
        fed_tasks.extend(federation::start(ctx, listener));
    }
    shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    let _ = stop_tx.send(());
    let _ = stop_watch.send(true);
    drain("HTTP", http_task).await;
    drain("gRPC", grpc_task).await;
    for t in fed_tasks {
        drain("federation", t).await;
    }
    if let Some(t) = forward_task {
        let _ = t.await;
    }
    // Dropping the last senders lets the writer drain its queue, commit and stop. Only the
    // writer is waited for — durability is its job; fusion's state is rebuilt from the log at
    // the next start, so a fusion step still running does not hold up the exit. A connection
    // the drain gave up on still holds a sender: then the writer is given the same limit to
    // commit what it has, and the node exits (whatever that connection had not had
    // acknowledged is not logged — its sender sees the connection drop, as after a crash).
    drop(app);
    let deadline = std::time::Instant::now() + DRAIN_LIMIT;
    while !writer_thread.is_finished() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    if writer_thread.is_finished() {
        let _ = writer_thread.join();
    } else {
        tracing::warn!("connections still open after the drain; exiting without their unacknowledged batches");
    }
    drop(fusion_thread);
    tracing::info!("stopped");
    Ok(())
}

/// How long a graceful shutdown waits for each server's clients to finish their requests.
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits for a server to finish its requests in flight after the stop signal — at most
/// `DRAIN_LIMIT`: an HTTP/2 client that stops reading never answers the shutdown's GOAWAY and
/// PING, and would otherwise hold the node up forever. The server is then dropped (its
/// connections close when the runtime does).
async fn drain<T>(server: &str, task: tokio::task::JoinHandle<T>) {
    let abort = task.abort_handle();
    if tokio::time::timeout(DRAIN_LIMIT, task).await.is_err() {
        tracing::warn!(
            server,
            limit_s = DRAIN_LIMIT.as_secs(),
            "clients still connected after the drain limit; closing"
        );
        abort.abort();
    }
}

/// What the fusion thread shares with the rest of the process.
struct FusionLinks {
    picture: Arc<RwLock<picture::Picture>>,
    alerts: picture::AlertList,
    events: broadcast::Sender<Arc<str>>,
    metrics: Arc<Metrics>,
    /// Where its products (alerts, track updates) are logged: the writer's queue, or a queue
    /// nobody holds (an ingest process's picture, whose products the writer logs).
    log: mpsc::WeakSender<journal::Append>,
    store: Store,
    head: Arc<AtomicU64>,
    cti: taxii::SharedCti,
}

fn new_fusion(config: &Config, areas: &[alert::Area], links: FusionLinks, replay_until: u64) -> picture::Fusion {
    picture::Fusion {
        engine: Engine::new(EngineConfig {
            reorder_window_s: config.reorder_window_s,
            impact_predictions_per_s: config.impact_predictions_per_s,
            ..EngineConfig::default()
        }),
        alerts: alert::AlertBook::new(areas.to_vec()),
        picture: links.picture,
        alert_list: links.alerts,
        events: links.events,
        metrics: links.metrics,
        log: links.log,
        replay_until,
        reorder_window_s: config.reorder_window_s,
        realtime_priority: config.fusion_realtime_priority,
        store: links.store,
        origin: config.nation,
        head: links.head,
        arrivals: std::collections::VecDeque::new(),
        waited_until: UtcNanos::from_nanos(i64::MIN),
        unfused: std::collections::VecDeque::new(),
        partner_seq: BTreeMap::new(),
        started: wall_clock(),
        federated: config.federation.is_some(),
        acks: BTreeMap::new(),
        cti: links.cti,
        track_nations: BTreeMap::new(),
        sensors: BTreeMap::new(),
    }
}

/// What the API's pieces are built from (`api`).
struct Parts<'a> {
    /// The access audit of reads of raw records and TAXII.
    audit: Option<guard::Audit>,
    config: &'a Config,
    key: &'a ed25519_dalek::SigningKey,
    metrics: Arc<Metrics>,
    picture: Arc<RwLock<picture::Picture>>,
    alerts: picture::AlertList,
    events: broadcast::Sender<Arc<str>>,
    store: Store,
    log: LogHandle,
    head: Arc<AtomicU64>,
    areas: Vec<alert::Area>,
    areas_geojson: serde_json::Value,
    cti: taxii::SharedCti,
    fed: Option<Arc<federation::state::Fed>>,
    stop: tokio::sync::watch::Receiver<bool>,
}

/// The API's state: ingest's door, the TAXII server and what the HTTP handlers share, each
/// given only its part of the config.
fn api(p: Parts<'_>) -> Api {
    let config = p.config;
    let admission = Arc::new(Admission {
        sensors_by_token: config.sensors.clone(),
        limits: config.ingest,
        transforms: config
            .federation
            .iter()
            .flat_map(|f| f.partners.iter().filter_map(|p| Some((p.nation, p.transform.clone()?))))
            .collect(),
        pseudonym_salt: federation::transform::salt(p.key),
        log: p.log.clone(),
        metrics: p.metrics.clone(),
        stats: Mutex::new(BTreeMap::new()),
    });
    let taxii = Arc::new(taxii::Server {
        nation: config.nation,
        analysts: config.analysts.clone(),
        amber_partners: config.cti_amber_partners.clone(),
        federation: config
            .federation
            .iter()
            .flat_map(|f| f.partners.iter().map(|p| p.nation).chain(f.origin_keys.keys().copied()))
            .collect(),
        cti: p.cti,
        log: p.log.clone(),
    });
    let http = Arc::new(http::Api {
        config: config.clone(),
        metrics: p.metrics,
        admission: admission.clone(),
        picture: p.picture,
        alerts: p.alerts,
        events: p.events,
        store: p.store,
        log: p.log,
        head: p.head,
        started: Instant::now(),
        public_key: hex::encode(p.key.verifying_key().to_bytes()),
        areas_geojson: p.areas_geojson,
        areas: p.areas,
        stop: p.stop,
        fed: p.fed,
        guard: Arc::new(guard::Guard::new(config.directory.clone(), &config.names, config.api_tls.is_some(), p.audit)),
    });
    Api { http, admission, taxii }
}

/// The API's state, built by `api`.
struct Api {
    http: Arc<http::Api>,
    admission: Arc<Admission>,
    taxii: Arc<taxii::Server>,
}

/// A server running until the stop signal, and how it ended.
type ServerTask<E> = tokio::task::JoinHandle<Result<(), E>>;

/// Serves the HTTP API and gRPC ingest until `stop` fires: over TLS unless the config asks
/// for plain on loopback, each listener within its connection caps (`listen`).
fn serve_api(
    app: &Api,
    config: &Config,
    http_listener: tokio::net::TcpListener,
    grpc_listener: tokio::net::TcpListener,
    stop: &broadcast::Sender<()>,
) -> anyhow::Result<(ServerTask<std::io::Error>, ServerTask<tonic::transport::Error>)> {
    let (http_tls, grpc_tls) = match &config.api_tls {
        Some((cert, key)) => (
            Some(listen::tls_config(cert, key, &[b"h2", b"http/1.1"])?),
            Some(listen::tls_config(cert, key, &[b"h2"])?),
        ),
        None => {
            tracing::warn!(http = %config.http, grpc = %config.grpc, "the API is served WITHOUT TLS (listen.plain = true): tokens cross the loopback interface in clear; use TLS on any other network");
            (None, None)
        }
    };
    let refusals = app.http.guard.refusals.clone();
    let http_local = http_listener.local_addr()?;
    let http_incoming = listen::Incoming {
        rx: listen::accept("http", http_listener, http_tls, config.api_limits, refusals.clone()),
        local: http_local,
    };
    use tokio_stream::StreamExt;
    let grpc_incoming = tokio_stream::wrappers::ReceiverStream::new(listen::accept(
        "grpc",
        grpc_listener,
        grpc_tls,
        config.api_limits,
        refusals,
    ))
    .map(Ok::<_, std::io::Error>);
    let mut stop_http = stop.subscribe();
    let (router, _) = http::router(app.http.clone(), app.http.guard.clone(), taxii::router(app.taxii.clone()));
    let http_server = axum::serve(http_incoming, router).with_graceful_shutdown(async move {
        let _ = stop_http.recv().await;
    });
    let mut stop_grpc = stop.subscribe();
    let grpc_server = tonic::transport::Server::builder()
        .add_service(grpc::service(app.admission.clone()))
        .serve_with_incoming_shutdown(grpc_incoming, async move {
            let _ = stop_grpc.recv().await;
        });
    Ok((tokio::spawn(async move { http_server.await }), tokio::spawn(grpc_server)))
}

/// The CTI state, knowing the nations' STIX identities before any record is taken.
fn shared_cti(config: &Config) -> taxii::SharedCti {
    let mut cti = taxii::Cti::default();
    cti.identities = config.cti_identities.clone();
    Arc::new(Mutex::new(cti))
}

/// Descriptors kept back from the API listeners' caps: the log's files, NATS, the federation's
/// links, CoT clients.
const RESERVED_DESCRIPTORS: u64 = 256;

/// Binds the HTTP and gRPC listeners (first, so a taken port fails fast and touches nothing),
/// after raising the descriptor limit; the listeners' connection caps are cut to fit under it
/// (each gets half of what the reserve leaves), so that accept never runs out of descriptors.
async fn bind_api(config: &mut Config) -> anyhow::Result<(tokio::net::TcpListener, tokio::net::TcpListener)> {
    let limit = listen::raise_descriptor_limit();
    let fits = (limit.saturating_sub(RESERVED_DESCRIPTORS) / 2).max(1) as usize;
    let l = &mut config.api_limits;
    if l.max_connections > fits {
        tracing::warn!(
            descriptors = limit,
            configured = l.max_connections,
            cap = fits,
            "listen.max_connections cut to fit the descriptor limit (raise the hard limit, e.g. LimitNOFILE=)"
        );
        l.max_connections = fits;
        l.per_source = l.per_source.min(fits);
    }
    tracing::info!(
        descriptors = limit,
        max_connections = l.max_connections,
        per_source = l.per_source,
        "API connection caps"
    );
    let http = tokio::net::TcpListener::bind(config.http)
        .await
        .with_context(|| format!("failed to listen on {}", config.http))?;
    let grpc = tokio::net::TcpListener::bind(config.grpc)
        .await
        .with_context(|| format!("failed to listen on {}", config.grpc))?;
    Ok((http, grpc))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// `trilink recover`: takes this node's own records back from its partners into its log in
/// files (`federation::recover`), with the node stopped.
pub async fn recover(config: &Config, accept_stubs: bool) -> anyhow::Result<federation::recover::Recovered> {
    if !matches!(config.store, config::StoreConfig::Files) {
        anyhow::bail!(
            "`trilink recover` takes records back into a log in files (data_dir); a log on JetStream is kept by its own replicas"
        );
    }
    let Some(settings) = &config.federation else {
        anyhow::bail!("no [federation] in the config: there is no partner to take records back from");
    };
    let key = signing_key(&config.signing_key)?;
    let trusted = trusted_keys(config, &key)?;
    federation::recover::recover(federation::recover::Request {
        nation: config.nation,
        data_dir: &config.data_dir,
        trusted: &trusted,
        settings,
        accept_stubs,
    })
    .await
}
