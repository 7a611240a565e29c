//! The HTTP face of the node (docs/api.md, and `/openapi.json` served from `openapi.json`):
//! NDJSON ingest, the products as JSON, GeoJSON and KML, log range queries, status, the
//! WebSocket stream of changes and Prometheus metrics.

use crate::admission::{Admission, BatchOutcome};
use crate::config::Config;
use crate::guard::{Guard, Route};
use crate::picture::{AlertList, Picture};
use access::Need::{self, AnyOf, Authenticated, Public};
use access::Role::{Admin, Analyst, Auditor, DutyOfficer, Sensor, Viewer};
use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, RwLock};
use std::time::Instant;
use tokio::sync::broadcast::error::RecvError;
use vocab::Nation;

/// Largest page of a log range query.
const MAX_LOG_PAGE: usize = 1000;

/// What the HTTP handlers share: the picture they read, the log they page through and append
/// to (alert acknowledgements), ingest's door, and what `/v1/status` reports.
#[derive(Debug)]
pub struct Api {
    pub config: Config,
    pub metrics: Arc<telemetry::Metrics>,
    pub admission: Arc<Admission>,
    pub picture: Arc<RwLock<Picture>>,
    pub alerts: AlertList,
    pub events: tokio::sync::broadcast::Sender<Arc<str>>,
    pub store: journal::Store,
    pub log: journal::LogHandle,
    /// The node's own last durable seq.
    pub head: Arc<AtomicU64>,
    pub started: Instant,
    pub public_key: String,
    pub areas_geojson: Value,
    /// The defended areas (for replays, which run their own alert book).
    pub areas: Vec<alert::Area>,
    /// Turns true when the node shuts down (long-lived streams close on it).
    pub stop: tokio::sync::watch::Receiver<bool>,
    /// Federation state, when configured.
    pub fed: Option<Arc<federation::state::Fed>>,
    /// The door (sessions, rate limits, refusal counts).
    pub guard: Arc<Guard>,
}

type Shared = State<Arc<Api>>;

/// What every route of the HTTP API asks of its caller (docs/security.md): the authorisation
/// decisions, in one place. `router` adds each route with its row and refuses to build if a
/// route has none or a row has no route, so a route cannot be served without a decision.
pub const ROUTES: &[Route] = &[
    Route { method: "GET", path: "/healthz", need: Public },
    Route { method: "GET", path: "/readyz", need: Public },
    Route { method: "GET", path: "/login", need: Public },
    Route { method: "POST", path: "/login", need: Public },
    Route { method: "POST", path: "/logout", need: Public },
    Route { method: "GET", path: "/v1/session", need: Authenticated },
    Route { method: "GET", path: "/openapi.json", need: Authenticated },
    Route { method: "GET", path: "/metrics", need: AnyOf(&[Admin]) },
    Route { method: "POST", path: "/v1/ingest", need: AnyOf(&[Sensor]) },
    Route { method: "GET", path: "/v1/status", need: AnyOf(&[Viewer, Admin]) },
    Route { method: "GET", path: "/v1/tracks", need: AnyOf(&[Viewer]) },
    Route { method: "GET", path: "/v1/tracks/{id}", need: AnyOf(&[Viewer]) },
    Route { method: "GET", path: "/v1/tracks/{id}/geojson", need: AnyOf(&[Viewer]) },
    Route { method: "GET", path: "/v1/tracks/{id}/kml", need: AnyOf(&[Viewer]) },
    Route { method: "GET", path: "/v1/launches", need: AnyOf(&[Viewer]) },
    Route { method: "GET", path: "/v1/alerts", need: AnyOf(&[Viewer]) },
    Route { method: "POST", path: "/v1/alerts/{id}/ack", need: AnyOf(&[DutyOfficer]) },
    Route { method: "GET", path: "/v1/sensors", need: AnyOf(&[Viewer]) },
    Route { method: "GET", path: "/v1/replay", need: AnyOf(&[Auditor]) },
    Route { method: "GET", path: "/", need: AnyOf(&[Viewer]) },
    Route { method: "GET", path: "/ui/{file}", need: AnyOf(&[Viewer]) },
    Route { method: "GET", path: "/v1/areas", need: AnyOf(&[Viewer]) },
    Route { method: "GET", path: "/v1/log/{origin}", need: AnyOf(&[Auditor]) },
    Route { method: "GET", path: "/v1/stream", need: AnyOf(&[Viewer]) },
];

/// What TAXII's routes ask: an analyst.
pub const TAXII_NEED: Need = AnyOf(&[Analyst]);

/// `ROUTES` and TAXII's routes: every route the HTTP listener serves.
pub fn route_table() -> Vec<Route> {
    let taxii = taxii::ROUTES.iter().map(|(method, path)| Route { method, path, need: TAXII_NEED });
    ROUTES.iter().copied().chain(taxii).collect()
}

/// Every route of the node's HTTP API, each added with its row of `route_table`, and TAXII's
/// routes (`taxii::ROUTES`) for analysts. Returns the router and its route table.
pub fn router(app: Arc<Api>, guard: Arc<Guard>, taxii: Router) -> (Router, Vec<crate::guard::Route>) {
    let s = |r: MethodRouter<Arc<Api>>| r.with_state(app.clone());
    let g = |r: MethodRouter<Arc<Guard>>| r.with_state(guard.clone());
    crate::guard::Routes::new(guard.clone(), route_table())
        .add("GET", "/healthz", get(|| async { "ok\n" }))
        .add("GET", "/readyz", s(get(ready)))
        .add("GET", "/login", get(crate::guard::login_page))
        .add("POST", "/login", g(post(crate::guard::login)))
        .add("POST", "/logout", g(post(crate::guard::logout)))
        .add("GET", "/v1/session", get(crate::guard::whoami))
        .add("GET", "/openapi.json", get(openapi))
        .add("GET", "/metrics", s(get(metrics)))
        .add("POST", "/v1/ingest", s(post(ingest)))
        .add("GET", "/v1/status", s(get(status)))
        .add("GET", "/v1/tracks", s(get(tracks)))
        .add("GET", "/v1/tracks/{id}", s(get(track)))
        .add("GET", "/v1/tracks/{id}/geojson", s(get(track_geojson)))
        .add("GET", "/v1/tracks/{id}/kml", s(get(track_kml)))
        .add("GET", "/v1/launches", s(get(launches)))
        .add("GET", "/v1/alerts", s(get(alerts)))
        .add("POST", "/v1/alerts/{id}/ack", s(post(ack_alert)))
        .add("GET", "/v1/sensors", s(get(sensors)))
        .add("GET", "/v1/replay", s(get(replay)))
        .add("GET", "/", s(get(ui_index)))
        .add("GET", "/ui/{file}", s(get(ui_file)))
        .add("GET", "/v1/areas", s(get(areas)))
        .add("GET", "/v1/log/{origin}", s(get(log_range)))
        .add("GET", "/v1/stream", s(get(stream)))
        .merge(taxii::ROUTES, TAXII_NEED, taxii)
        .finish()
}

/// Ready when the log takes input: 200, or 503 with why not (a failed disk or lost NATS).
async fn ready(State(app): Shared) -> Response {
    let failed = match app.store.lock() {
        Ok(s) => s.failure().map(|e| e.to_string()),
        Err(_) => Some("store lock poisoned".into()),
    };
    match failed {
        None => "ready\n".into_response(),
        Some(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("the log takes no input: {e}")),
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], include_str!("openapi.json")).into_response()
}

async fn metrics(State(app): Shared) -> Response {
    let mut text = app.metrics.render(app.head.load(Relaxed));
    if let Some(fed) = &app.fed {
        fed.render_metrics(&mut text);
    }
    app.guard.refusals.render(&mut text);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

fn outcome_json(o: &BatchOutcome, line_numbers: bool) -> Value {
    json!({
        "accepted": o.accepted,
        "rejected": o.refused.len(),
        "seq": o.seq,
        "rejections": o.refused.iter().map(|r| {
            let mut v = json!({"reason": r.reason.as_str(), "error": r.message});
            if line_numbers { v["line"] = json!(r.index + 1); } else { v["index"] = json!(r.index); }
            v
        }).collect::<Vec<_>>(),
    })
}

async fn ingest(State(app): Shared, headers: HeaderMap, body: Body) -> Response {
    let arrived = Instant::now();
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let sensor = match app.admission.authenticate(auth) {
        Ok(s) => s.clone(),
        Err(e) => return error(StatusCode::UNAUTHORIZED, e),
    };
    let limit = app.admission.limits.max_body_bytes;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            app.metrics.reject(telemetry::Reject::Oversized, 1);
            return error(StatusCode::PAYLOAD_TOO_LARGE, format!("body exceeds {limit} bytes; send smaller batches"));
        }
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        app.metrics.reject(telemetry::Reject::Malformed, 1);
        return error(StatusCode::BAD_REQUEST, "body is not UTF-8 NDJSON");
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let max = app.admission.limits.max_batch_measurements;
    if lines.len() > max {
        app.metrics.reject(telemetry::Reject::Oversized, 1);
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{} measurements exceed the batch limit of {max}", lines.len()),
        );
    }
    if lines.is_empty() {
        return error(StatusCode::BAD_REQUEST, "empty batch: send one JSON measurement per line");
    }
    let items = lines.iter().map(|l| ingest::parse_line(l)).collect();
    match app.admission.ingest_batch(&sensor, items, arrived).await {
        Ok(o) => {
            let status = if o.accepted == 0 { StatusCode::BAD_REQUEST } else { StatusCode::OK };
            (status, Json(outcome_json(&o, true))).into_response()
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn status(State(app): Shared) -> Response {
    let sensors: Vec<Value> = app
        .config
        .sensors
        .values()
        .map(|s| {
            let stats = app.admission.stats.lock().ok().and_then(|m| m.get(&s.id).cloned()).unwrap_or_default();
            json!({
                "id": s.id,
                "nation": s.nation.as_str(),
                "accepted": stats.accepted,
                "rejected": stats.rejected,
                "last_seen": stats.last_seen.map(|t| t.to_string()),
            })
        })
        .collect();
    let (heads, failed) = app
        .store
        .lock()
        .map(|s| (ledger::LogStore::heads(&**s), s.failure().map(|e| e.to_string())))
        .unwrap_or_else(|_| (Vec::new(), Some("store lock poisoned".into())));
    let origins: Vec<Value> = heads.iter().map(|c| json!({"origin": c.origin().as_str(), "seq": c.seq()})).collect();
    let (fused_seq, counters, tracks) = match app.picture.read() {
        Ok(p) => (p.fused_seq, p.counters.clone(), p.tracks.len()),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "picture lock poisoned"),
    };
    let Ok(alerts) = app.alerts.read().map(|a| a.len()) else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "alert list lock poisoned");
    };
    Json(json!({
        "nation": app.config.nation.as_str(),
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": app.started.elapsed().as_secs_f64(),
        "time": journal::wall_clock().to_string(),
        "public_key": app.public_key,
        "log": {"seq": app.head.load(Relaxed), "fused_seq": fused_seq, "dir": app.config.data_dir.display().to_string(), "failed": failed},
        "fusion": {"reorder_window_s": app.config.reorder_window_s,
                   "realtime_priority": app.metrics.fusion_realtime_priority.load(Relaxed), "tracks": tracks, "alerts": alerts, "counters": counters,
                   "ingest_to_alert": app.metrics.ingest_to_alert_fine.summary()},
        "sensors": sensors,
        "origins": origins,
        "federation": app.fed.as_ref().map(|f| {
            let mut v = f.status_json();
            v["latency"] = json!({
                "received": app.metrics.partner_received.summary(),
                "applied": app.metrics.partner_applied.summary(),
                "fused": app.metrics.partner_fused.summary(),
            });
            v
        }),
    }))
    .into_response()
}

async fn tracks(State(app): Shared) -> Response {
    match app.picture.read() {
        Ok(p) => Json(json!({"tracks": p.tracks.values().collect::<Vec<_>>()})).into_response(),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "picture lock poisoned"),
    }
}

fn with_track<T>(app: &Api, id: &str, f: impl FnOnce(&fusion::TrackView) -> T) -> Result<T, Box<Response>> {
    let id: u64 =
        id.parse().map_err(|_| Box::new(error(StatusCode::BAD_REQUEST, format!("track id {id:?} is not a number"))))?;
    let p =
        app.picture.read().map_err(|_| Box::new(error(StatusCode::INTERNAL_SERVER_ERROR, "picture lock poisoned")))?;
    p.views.get(&id).map(f).ok_or_else(|| Box::new(error(StatusCode::NOT_FOUND, format!("no confirmed track {id}"))))
}

async fn track(State(app): Shared, Path(id): Path<String>) -> Response {
    match with_track(&app, &id, crate::products::track_json) {
        Ok(v) => Json(v).into_response(),
        Err(r) => *r,
    }
}

async fn track_geojson(State(app): Shared, Path(id): Path<String>) -> Response {
    match with_track(&app, &id, crate::products::track_geojson) {
        Ok(v) => ([(header::CONTENT_TYPE, "application/geo+json")], v.to_string()).into_response(),
        Err(r) => *r,
    }
}

async fn track_kml(State(app): Shared, Path(id): Path<String>) -> Response {
    match with_track(&app, &id, crate::products::track_kml) {
        Ok(v) => ([(header::CONTENT_TYPE, "application/vnd.google-earth.kml+xml")], v).into_response(),
        Err(r) => *r,
    }
}

async fn launches(State(app): Shared) -> Response {
    match app.picture.read() {
        Ok(p) => Json(json!({"launches": p.launches.values().collect::<Vec<_>>()})).into_response(),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "picture lock poisoned"),
    }
}

async fn alerts(State(app): Shared) -> Response {
    match app.alerts.read() {
        Ok(a) => Json(json!({"alerts": *a})).into_response(),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "alert list lock poisoned"),
    }
}

async fn sensors(State(app): Shared) -> Response {
    match app.picture.read() {
        Ok(p) => Json(json!({"sensors": p.sensors})).into_response(),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "picture lock poisoned"),
    }
}

/// Longest note an operator may add to an acknowledgement.
const MAX_ACK_NOTE: usize = 500;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    #[serde(default)]
    note: String,
}

/// An operator acknowledges an alert: logged (ALERT_ACK) before the answer, then shown on the
/// alert by the picture.
async fn ack_alert(
    State(app): Shared,
    Path(id): Path<String>,
    axum::Extension(who): axum::Extension<access::Principal>,
    body: Body,
) -> Response {
    let operator = who.name;
    let Ok(bytes) = axum::body::to_bytes(body, 4096).await else {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "body exceeds 4096 bytes");
    };
    let req: AckBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        AckBody::default()
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(b) => b,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("body: {e} (expected {{\"note\": \"...\"}})")),
        }
    };
    if req.note.chars().count() > MAX_ACK_NOTE || req.note.chars().any(|c| c.is_control() && c != '\n') {
        return error(StatusCode::BAD_REQUEST, format!("note must be at most {MAX_ACK_NOTE} characters of text"));
    }
    let level = match app.alerts.read() {
        Ok(a) => a.iter().find(|a| a["id"] == id.as_str()).map(|a| a["level"].as_str().unwrap_or("").to_string()),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "alert list lock poisoned"),
    };
    let Some(level) = level else {
        return error(StatusCode::NOT_FOUND, format!("no current alert {id:?}"));
    };
    let wire_level = match level.as_str() {
        "impact" => wire::AlertLevel::Impact,
        "warning" => wire::AlertLevel::Warning,
        _ => wire::AlertLevel::Watch,
    };
    let record = wire::AlertAck {
        alert_id: id.clone(),
        operator: operator.clone(),
        time_unix_ns: journal::wall_clock().as_nanos(),
        note: req.note,
        level: wire_level as i32,
    };
    match app.log.append(wire::RecordKind::AlertAck, prost::Message::encode_to_vec(&record), None).await {
        Ok(seq) => Json(json!({"alert": id, "operator": operator, "level": level, "seq": seq})).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayQuery {
    from: Option<String>,
    to: Option<String>,
    minutes: Option<f64>,
    step_s: Option<f64>,
}

/// A past interval rebuilt from the log (see `replay`).
async fn replay(
    State(app): Shared,
    axum::Extension(who): axum::Extension<access::Principal>,
    q: Result<Query<ReplayQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("bad query: {} (expected from=&to= RFC 3339 or minutes=N, and step_s=S)", e.body_text()),
            )
        }
    };
    if let Err(refused) = crate::guard::allow_replay(&app.guard, &who, "/v1/replay") {
        return *refused;
    }
    let parse = |name: &str, v: &Option<String>| -> Result<Option<vocab::UtcNanos>, String> {
        v.as_deref()
            .map(|t| vocab::UtcNanos::parse_rfc3339(t).map_err(|e| format!("`{name}`: {e} (expected RFC 3339 UTC)")))
            .transpose()
    };
    let (from, to) = match (parse("from", &q.from), parse("to", &q.to)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return error(StatusCode::BAD_REQUEST, e),
    };
    let store = app.store.clone();
    let own = app.config.nation;
    let engine_config = fusion::EngineConfig {
        reorder_window_s: app.config.reorder_window_s,
        impact_predictions_per_s: app.config.impact_predictions_per_s,
        ..fusion::EngineConfig::default()
    };
    let areas = app.areas.clone();
    let step_s = q.step_s.unwrap_or(1.0);
    let minutes = q.minutes;
    if let Some(m) = minutes.filter(|m| !(m.is_finite() && *m > 0.0 && *m <= crate::replay::MAX_SPAN_S / 60.0)) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("minutes {m} must be above 0 and at most {}", crate::replay::MAX_SPAN_S / 60.0),
        );
    }
    let work = tokio::task::spawn_blocking(move || {
        let (from, to) = match (from, to) {
            (Some(f), Some(t)) => (f, t),
            _ => {
                let Some((first, newest)) = crate::replay::log_span(&store) else {
                    return Err("the log is empty: nothing to replay".to_string());
                };
                let to = to.unwrap_or(newest);
                let from = from.unwrap_or_else(|| to.add_secs_f64(-60.0 * minutes.unwrap_or(10.0)).max(first));
                (from, to)
            }
        };
        crate::replay::run(&store, own, engine_config, areas, crate::replay::Request { from, to, step_s })
    });
    match work.await {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn ui_index(State(app): Shared) -> Response {
    ui_serve(&app, "index.html").await
}

async fn ui_file(State(app): Shared, Path(file): Path<String>) -> Response {
    ui_serve(&app, &file).await
}

/// Serves one file of the built web UI (a flat directory: names of letters, digits, `.`, `-`
/// and `_` only, so no path leaves it).
async fn ui_serve(app: &Api, name: &str) -> Response {
    let Some(dir) = &app.config.web_dir else {
        return error(StatusCode::NOT_FOUND, "this node serves no web UI (set [web] dir in its config)");
    };
    let safe = !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !safe {
        return error(StatusCode::NOT_FOUND, format!("no file {name:?}"));
    }
    let content_type = match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    };
    match tokio::fs::read(dir.join(name)).await {
        Ok(bytes) => {
            ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], bytes).into_response()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && name == "index.html" => error(
            StatusCode::NOT_FOUND,
            format!("the web UI is not built in {}: run `npm ci && npm run build` in web/", dir.display()),
        ),
        Err(_) => error(StatusCode::NOT_FOUND, format!("no file {name:?}")),
    }
}

async fn areas(State(app): Shared) -> Response {
    ([(header::CONTENT_TYPE, "application/geo+json")], app.areas_geojson.to_string()).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogQuery {
    from: Option<u64>,
    limit: Option<usize>,
}

async fn log_range(
    State(app): Shared,
    Path(origin): Path<String>,
    q: Result<Query<LogQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => {
            return error(StatusCode::BAD_REQUEST, format!("bad query: {} (expected from=SEQ&limit=N)", e.body_text()))
        }
    };
    let origin = match Nation::parse(&origin) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let from = q.from.unwrap_or(1);
    let limit = q.limit.unwrap_or(100);
    if limit > MAX_LOG_PAGE {
        return error(StatusCode::BAD_REQUEST, format!("limit {limit} exceeds {MAX_LOG_PAGE}; page with `next`"));
    }
    let plan = match app.store.lock() {
        Ok(store) => store.reader(origin, from, limit, usize::MAX),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "store lock poisoned"),
    };
    // The file reads run on a blocking thread, without the store's lock. Stubs are entries of
    // the page too: a range held only as stubs still moves `next` on, so paging ends.
    let read = tokio::task::spawn_blocking(move || plan.entries().map_err(|e| e.to_string())).await;
    match read {
        Ok(Ok(entries)) => {
            // A store may read on to the checkpoint that covers the page: the page is `limit`.
            let shown: Vec<&ledger::Entry> =
                entries.iter().filter(|e| !matches!(e, ledger::Entry::Checkpoint { .. })).take(limit).collect();
            let next = shown.last().map(|e| e.seq() + 1).unwrap_or(from);
            let records: Vec<Value> = shown
                .iter()
                .map(|e| match e {
                    ledger::Entry::Record(r) => crate::products::record_json(&r.bytes),
                    ledger::Entry::Withheld { seq, bytes } => {
                        let digest = <wire::Withheld as prost::Message>::decode(bytes.as_slice())
                            .map(|w| hex::encode(w.digest))
                            .unwrap_or_default();
                        json!({"origin": origin.as_str(), "seq": seq, "withheld": true, "digest": digest})
                    }
                    ledger::Entry::Checkpoint { .. } => Value::Null,
                })
                .collect();
            Json(json!({"origin": origin.as_str(), "from": from, "next": next, "records": records})).into_response()
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn stream(State(app): Shared, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| serve_stream(app, socket))
}

/// Sends a snapshot (tracks, alerts), then every change. A client too slow for the stream
/// gets a `lagged` message with how many changes it missed, and should refetch the snapshot.
async fn serve_stream(app: Arc<Api>, mut socket: WebSocket) {
    let mut rx = app.events.subscribe();
    let mut stop = app.stop.clone();
    app.metrics.ws_clients.fetch_add(1, Relaxed);
    let alerts = app.alerts.read().map(|a| a.clone()).unwrap_or_default();
    let snapshot = match app.picture.read() {
        Ok(p) => {
            json!({"type": "snapshot", "tracks": p.tracks.values().collect::<Vec<_>>(), "alerts": alerts,
                   "launches": p.launches.values().collect::<Vec<_>>(), "sensors": p.sensors,
                   "trails": p.trails.iter().map(|(id, t)| (id.to_string(), json!(t))).collect::<serde_json::Map<_, _>>()})
        }
        Err(_) => json!({"type": "error", "error": "picture lock poisoned"}),
    };
    let mut ok = socket.send(Message::Text(snapshot.to_string().into())).await.is_ok();
    while ok {
        tokio::select! {
            msg = rx.recv() => {
                let text: String = match msg {
                    Ok(m) => m.to_string(),
                    Err(RecvError::Lagged(n)) => {
                        app.metrics.ws_dropped_messages.fetch_add(n, Relaxed);
                        json!({"type": "lagged", "missed": n}).to_string()
                    }
                    Err(RecvError::Closed) => break,
                };
                ok = socket.send(Message::Text(text.into())).await.is_ok();
            }
            _ = stop.changed() => {
                let _ = socket.send(Message::Close(None)).await;
                break;
            }
            incoming = socket.recv() => {
                match incoming {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    _ => {}
                }
            }
        }
    }
    app.metrics.ws_clients.fetch_sub(1, Relaxed);
}
