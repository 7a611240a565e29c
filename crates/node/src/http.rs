//! The HTTP face of the node (docs/api.md, and `/openapi.json` served from `openapi.json`):
//! NDJSON ingest, the products as JSON, GeoJSON and KML, log range queries, status, the
//! WebSocket stream of changes and Prometheus metrics.

use crate::{App, BatchOutcome};
use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::broadcast::error::RecvError;
use vocab::Nation;

/// Largest page of a log range query.
const MAX_LOG_PAGE: usize = 1000;

type Shared = State<Arc<App>>;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .route("/v1/ingest", post(ingest))
        .route("/v1/status", get(status))
        .route("/v1/tracks", get(tracks))
        .route("/v1/tracks/{id}", get(track))
        .route("/v1/tracks/{id}/geojson", get(track_geojson))
        .route("/v1/tracks/{id}/kml", get(track_kml))
        .route("/v1/launches", get(launches))
        .route("/v1/alerts", get(alerts))
        .route("/v1/areas", get(areas))
        .route("/v1/log/{origin}", get(log_range))
        .route("/v1/stream", get(stream))
        // The ingest handler enforces its own limit so that it can count and explain refusals.
        .layer(DefaultBodyLimit::disable())
        .with_state(app)
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
    let sensor = match app.authenticate(auth) {
        Ok(s) => s.clone(),
        Err(e) => return error(StatusCode::UNAUTHORIZED, e),
    };
    let limit = app.config.ingest.max_body_bytes;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            app.metrics.reject(crate::metrics::Reject::Oversized, 1);
            return error(StatusCode::PAYLOAD_TOO_LARGE, format!("body exceeds {limit} bytes; send smaller batches"));
        }
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        app.metrics.reject(crate::metrics::Reject::Malformed, 1);
        return error(StatusCode::BAD_REQUEST, "body is not UTF-8 NDJSON");
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let max = app.config.ingest.max_batch_measurements;
    if lines.len() > max {
        app.metrics.reject(crate::metrics::Reject::Oversized, 1);
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{} measurements exceed the batch limit of {max}", lines.len()),
        );
    }
    if lines.is_empty() {
        return error(StatusCode::BAD_REQUEST, "empty batch: send one JSON measurement per line");
    }
    let items = lines.iter().map(|l| ingest::parse_line(l)).collect();
    match app.ingest_batch(&sensor, items, arrived).await {
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
            let stats = app.sensors.lock().ok().and_then(|m| m.get(&s.id).cloned()).unwrap_or_default();
            json!({
                "id": s.id,
                "nation": s.nation.as_str(),
                "accepted": stats.accepted,
                "rejected": stats.rejected,
                "last_seen": stats.last_seen.map(|t| t.to_string()),
            })
        })
        .collect();
    let heads = app.store.lock().map(|s| ledger::LogStore::heads(&*s)).unwrap_or_default();
    let origins: Vec<Value> = heads.iter().map(|c| json!({"origin": c.origin().as_str(), "seq": c.seq()})).collect();
    let (fused_seq, counters, tracks, alerts) = match app.picture.read() {
        Ok(p) => (p.fused_seq, p.counters.clone(), p.tracks.len(), p.alerts.len()),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "picture lock poisoned"),
    };
    Json(json!({
        "nation": app.config.nation.as_str(),
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": app.started.elapsed().as_secs_f64(),
        "time": crate::wall_clock().to_string(),
        "public_key": app.public_key,
        "log": {"seq": app.head.load(Relaxed), "fused_seq": fused_seq, "dir": app.config.data_dir.display().to_string()},
        "fusion": {"reorder_window_s": app.config.reorder_window_s, "tracks": tracks, "alerts": alerts, "counters": counters},
        "sensors": sensors,
        "origins": origins,
        "federation": app.fed.as_ref().map(|f| {
            let mut v = f.status_json();
            v["latency"] = json!({
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

fn with_track<T>(app: &App, id: &str, f: impl FnOnce(&fusion::TrackView) -> T) -> Result<T, Box<Response>> {
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
    match app.picture.read() {
        Ok(p) => Json(json!({"alerts": p.alerts})).into_response(),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "picture lock poisoned"),
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
        Ok(store) => store.plan_read(origin, from, limit),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "store lock poisoned"),
    };
    // The file reads run on a blocking thread, without the store's lock.
    let read = tokio::task::spawn_blocking(move || plan.run().map_err(|e| e.to_string())).await;
    match read {
        Ok(Ok(records)) => {
            let next = records.last().map(|r| r.seq + 1).unwrap_or(from);
            let records: Vec<Value> = records.iter().map(|r| crate::products::record_json(&r.bytes)).collect();
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
async fn serve_stream(app: Arc<App>, mut socket: WebSocket) {
    let mut rx = app.events.subscribe();
    let mut stop = app.stop.clone();
    app.metrics.ws_clients.fetch_add(1, Relaxed);
    let snapshot = match app.picture.read() {
        Ok(p) => {
            json!({"type": "snapshot", "tracks": p.tracks.values().collect::<Vec<_>>(), "alerts": p.alerts, "launches": p.launches.values().collect::<Vec<_>>()})
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
