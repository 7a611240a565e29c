//! The TAXII 2.1 server of a node (docs/cti.md): discovery at `/taxii2/`, one API root
//! (`/taxii2/api/`) with one collection, `shared`, holding every STIX object this nation holds —
//! its own analysts' and what partners released to it over the federation. Objects posted here
//! are checked (`cti::check`), kept in the nation's log as CYBER_BUNDLE records marked by their
//! TLP, and indexed in `date_added` order for reading.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use cti::{Index, Query, Versions};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use vocab::{Nation, UtcNanos};

pub const MEDIA_TYPE: &str = "application/taxii+json;version=2.1";
/// The one collection's id (a fixed UUIDv4: the same at every node, so an analyst's client
/// configuration works at any of them) and alias.
pub const COLLECTION_ID: &str = "6a1f0c52-7d2e-4b8a-9c3d-5e4f6a7b8c9d";
pub const COLLECTION_ALIAS: &str = "shared";
/// Largest POST body.
pub const MAX_CONTENT_LENGTH: usize = 8 * 1024 * 1024;
/// Largest page; `limit` above it gets this many.
pub const MAX_PAGE: usize = 1000;
/// Bytes of objects one CYBER_BUNDLE record holds at most: the log's record limit less room
/// for the analyst's name and the record's framing.
const RECORD_BUDGET: usize = ledger::MAX_RECORD_BODY_BYTES - 64 * 1024;
/// Statuses kept (the oldest go first), and for how long at most.
const MAX_STATUSES: usize = 10_000;

/// The CTI state a node shares between its handlers and its fusion thread.
#[derive(Debug, Default)]
pub struct Cti {
    pub index: Index,
    pub correlations: cti::Correlations,
    /// The nations' STIX identities (`[cti] identities`): identity id → nation, which binds an
    /// object's `created_by_ref` to the one nation that may publish it.
    pub identities: BTreeMap<String, Nation>,
    /// Objects of partners' records not taken (their publisher may not version them).
    pub refused: u64,
    /// Status resources by id.
    statuses: BTreeMap<String, Value>,
    status_order: std::collections::VecDeque<String>,
}

impl Cti {
    /// Indexes the objects of a CYBER_BUNDLE record (own or a partner's) as read from the log.
    pub fn take_record(&mut self, origin: Nation, body: &[u8]) {
        let Ok(b) = <wire::CyberBundle as prost::Message>::decode(body) else {
            tracing::error!(%origin, "undecodable cyber bundle in the log; skipped");
            return;
        };
        for text in b.objects {
            let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
            match cti::check(&v) {
                Ok(meta) => match self.index.creator(&meta, origin, &self.identities) {
                    Ok(creator) => {
                        if self.index.add(meta, text.into(), origin, creator, journal::wall_clock()) {
                            self.correlations.add(origin, &v);
                        }
                    }
                    Err(why) => {
                        self.refused += 1;
                        tracing::warn!(%origin, why, "a logged STIX object is not taken into the collection");
                    }
                },
                Err(e) => tracing::warn!(%origin, error = %e, "a logged STIX object fails the checks; not served"),
            }
        }
    }
}

/// What the TAXII server needs of its node: who it is, who its analysts and partners are, the
/// CTI it holds and the way in to the log (objects are logged before they are acknowledged).
#[derive(Debug)]
pub struct Server {
    pub nation: Nation,
    /// Analysts by the SHA-256 of their token (`pki::token_hash`).
    pub analysts: BTreeMap<[u8; 32], String>,
    /// Partners TLP:AMBER objects go to.
    pub amber_partners: Vec<Nation>,
    /// Every nation of the federation: linked partners and those reached through a relay.
    pub federation: Vec<Nation>,
    pub cti: SharedCti,
    pub log: journal::LogHandle,
}

/// Every route `router` serves (method, path), for the node's route table.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/taxii2/"),
    ("GET", "/taxii2/api/"),
    ("GET", "/taxii2/api/status/{id}/"),
    ("GET", "/taxii2/api/collections/"),
    ("GET", "/taxii2/api/collections/{id}/"),
    ("GET", "/taxii2/api/collections/{id}/manifest/"),
    ("GET", "/taxii2/api/collections/{id}/objects/"),
    ("POST", "/taxii2/api/collections/{id}/objects/"),
    ("GET", "/taxii2/api/collections/{id}/objects/{object}/"),
    ("GET", "/taxii2/api/collections/{id}/objects/{object}/versions/"),
    ("GET", "/v1/cti/correlations"),
];

/// The TAXII 2.1 routes and `/v1/cti/correlations`, each authenticating its analyst.
pub fn router(server: Arc<Server>) -> Router {
    Router::new()
        .route("/taxii2/", get(discovery))
        .route("/taxii2/api/", get(api_root))
        .route("/taxii2/api/status/{id}/", get(status))
        .route("/taxii2/api/collections/", get(collections))
        .route("/taxii2/api/collections/{id}/", get(collection))
        .route("/taxii2/api/collections/{id}/manifest/", get(manifest))
        .route("/taxii2/api/collections/{id}/objects/", get(get_objects).post(post_objects))
        .route("/taxii2/api/collections/{id}/objects/{object}/", get(get_object))
        .route("/taxii2/api/collections/{id}/objects/{object}/versions/", get(versions))
        .route("/v1/cti/correlations", get(correlations))
        .with_state(server)
}

/// Observables and objects that objects of two or more nations name (JSON, not TAXII).
async fn correlations(State(app): Shared, headers: HeaderMap) -> Response {
    if analyst(&app, &headers).is_err() {
        let mut r = (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "send the analyst's token (HTTP Basic: name and token, or Bearer)"})),
        )
            .into_response();
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"trilink TAXII\""));
        return r;
    }
    let Ok(c) = app.cti.lock() else {
        return taxii_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Error", "lock poisoned");
    };
    let list: Vec<Value> = c
        .correlations
        .across_nations()
        .into_iter()
        .map(|(key, objs)| {
            json!({
                "key": key,
                "nations": objs.iter().map(|(n, _, _)| n.as_str()).collect::<std::collections::BTreeSet<_>>(),
                "objects": objs.iter().map(|(n, id, kind)| json!({"origin": n.as_str(), "id": id, "type": kind})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut r = axum::Json(json!({"correlations": list})).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

type Shared = State<Arc<Server>>;

fn taxii(status: StatusCode, body: Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    r
}

fn taxii_error(status: StatusCode, title: &str, description: impl Into<String>) -> Response {
    let mut r = taxii(
        status,
        json!({"title": title, "description": description.into(), "http_status": status.as_u16().to_string()}),
    );
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"trilink TAXII\""));
    }
    r
}

/// The analyst a request comes from: HTTP Basic (user = analyst name, password = token) or
/// `Authorization: Bearer <token>`.
fn analyst(app: &Server, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let deny = || {
        Box::new(taxii_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "send the analyst's token (HTTP Basic: name and token, or Bearer)",
        ))
    };
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or_else(deny)?;
    let (name, token) = if let Some(b) = value.strip_prefix("Basic ") {
        let raw = base64::engine::general_purpose::STANDARD.decode(b.trim()).map_err(|_| deny())?;
        let text = String::from_utf8(raw).map_err(|_| deny())?;
        let (n, t) = text.split_once(':').ok_or_else(deny)?;
        (Some(n.to_string()), t.to_string())
    } else if let Some(t) = value.strip_prefix("Bearer ") {
        (None, t.trim().to_string())
    } else {
        return Err(deny());
    };
    if token.is_empty() {
        return Err(deny());
    }
    match app.analysts.get(&pki::token_hash(&token)) {
        Some(a) if name.as_deref().is_none_or(|n| n == a) => Ok(a.clone()),
        _ => Err(deny()),
    }
}

/// Every request must accept the TAXII 2.1 media type.
fn accepts(headers: &HeaderMap) -> Result<(), Box<Response>> {
    let ok = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| {
        a.split(',').any(|m| {
            let m: String = m.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
            let mut parts = m.split(';');
            parts.next() == Some("application/taxii+json") && parts.all(|p| p == "version=2.1" || p.starts_with("q="))
        })
    });
    if ok {
        Ok(())
    } else {
        Err(Box::new(taxii_error(StatusCode::NOT_ACCEPTABLE, "Not Acceptable", format!("send Accept: {MEDIA_TYPE}"))))
    }
}

fn gate(app: &Server, headers: &HeaderMap) -> Result<String, Box<Response>> {
    accepts(headers)?;
    analyst(app, headers)
}

fn collection_of(id: &str) -> Result<(), Box<Response>> {
    if id == COLLECTION_ID || id == COLLECTION_ALIAS {
        Ok(())
    } else {
        Err(Box::new(taxii_error(StatusCode::NOT_FOUND, "Not Found", format!("no collection {id:?}"))))
    }
}

macro_rules! gated {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return *r,
        }
    };
}

async fn discovery(State(app): Shared, headers: HeaderMap) -> Response {
    gated!(gate(&app, &headers));
    taxii(
        StatusCode::OK,
        json!({
            "title": format!("trilink {}", app.nation),
            "description": "Cyber threat intelligence shared across the trilink federation",
            "default": "/taxii2/api/",
            "api_roots": ["/taxii2/api/"],
        }),
    )
}

async fn api_root(State(app): Shared, headers: HeaderMap) -> Response {
    gated!(gate(&app, &headers));
    taxii(
        StatusCode::OK,
        json!({
            "title": format!("trilink {} threat intelligence", app.nation),
            "versions": [MEDIA_TYPE],
            "max_content_length": MAX_CONTENT_LENGTH,
        }),
    )
}

fn collection_json(app: &Server) -> Value {
    json!({
        "id": COLLECTION_ID,
        "alias": COLLECTION_ALIAS,
        "title": "Shared threat intelligence",
        "description": format!("Every STIX object {} holds: its analysts' and what partners released to it", app.nation),
        "can_read": true,
        "can_write": true,
        "media_types": ["application/stix+json;version=2.1"],
    })
}

async fn collections(State(app): Shared, headers: HeaderMap) -> Response {
    gated!(gate(&app, &headers));
    taxii(StatusCode::OK, json!({"collections": [collection_json(&app)]}))
}

async fn collection(State(app): Shared, Path(id): Path<String>, headers: HeaderMap) -> Response {
    gated!(gate(&app, &headers));
    gated!(collection_of(&id));
    taxii(StatusCode::OK, collection_json(&app))
}

async fn status(State(app): Shared, Path(id): Path<String>, headers: HeaderMap) -> Response {
    gated!(gate(&app, &headers));
    let found = app.cti.lock().ok().and_then(|c| c.statuses.get(&id).cloned());
    match found {
        Some(s) => taxii(StatusCode::OK, s),
        None => taxii_error(StatusCode::NOT_FOUND, "Not Found", format!("no status {id:?}")),
    }
}

fn bad(description: impl Into<String>) -> Box<Response> {
    Box::new(taxii_error(StatusCode::BAD_REQUEST, "Bad Request", description))
}

/// Parses the query string: `added_after`, `limit`, `next`, `match[id|type|version|spec_version]`.
fn parse_query(raw: Option<&str>, allowed: &[&str]) -> Result<Query, Box<Response>> {
    let mut q = Query::default();
    let mut seen = Vec::new();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k).map_err(bad)?;
        let v = percent_decode(&v.replace('+', " ")).map_err(bad)?;
        if seen.contains(&k) {
            return Err(bad(format!("parameter {k} is given twice")));
        }
        seen.push(k.clone());
        let list = || v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect::<Vec<_>>();
        let time = |s: &str| {
            UtcNanos::parse_rfc3339(s)
                .map_err(|e| bad(format!("{k}: {e} (expected a TAXII timestamp, e.g. 2026-12-01T00:00:00.000000Z)")))
        };
        let field = k.strip_prefix("match[").and_then(|r| r.strip_suffix(']'));
        let name = field.unwrap_or(&k);
        if !allowed.contains(&name) {
            return Err(bad(format!("parameter {k} is not supported here (supported: {})", allowed.join(", "))));
        }
        match (field, k.as_str()) {
            (None, "added_after") => q.added_after = Some(time(&v)?),
            (None, "limit") => {
                let n: usize = v.parse().map_err(|_| bad(format!("limit {v:?} is not a positive integer")))?;
                if n == 0 {
                    return Err(bad("limit must be at least 1"));
                }
                q.limit = n.min(MAX_PAGE);
            }
            (None, "next") => q.after = Some(cti::parse_next(&v).map_err(bad)?),
            (Some("id"), _) => q.ids = list(),
            (Some("type"), _) => q.types = list(),
            (Some("spec_version"), _) => q.spec_versions = list(),
            (Some("version"), _) => {
                let l = list();
                q.versions = match l.as_slice() {
                    [one] if one == "last" => Versions::Last,
                    [one] if one == "first" => Versions::First,
                    [one] if one == "all" => Versions::All,
                    _ => Versions::These(l.iter().map(|s| time(s)).collect::<Result<_, _>>()?),
                };
            }
            _ => return Err(bad(format!("parameter {k} is not supported"))),
        }
    }
    if q.limit == usize::MAX {
        q.limit = MAX_PAGE;
    }
    Ok(q)
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = s.get(i + 1..i + 3).ok_or("truncated %-escape in the query")?;
            out.push(u8::from_str_radix(h, 16).map_err(|_| format!("bad %-escape %{h} in the query"))?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the query is not UTF-8".to_string())
}

/// The X-TAXII-Date-Added-First and -Last headers of a 200 answer.
fn date_added_headers(r: &mut Response, first: Option<UtcNanos>, last: Option<UtcNanos>) {
    if let (Some(first), Some(last)) = (first, last) {
        for (h, t) in [("x-taxii-date-added-first", first), ("x-taxii-date-added-last", last)] {
            if let Ok(v) = HeaderValue::from_str(&cti::taxii_time(t)) {
                r.headers_mut().insert(h, v);
            }
        }
    }
}

/// The page's envelope (`key` "objects" with the objects themselves) or manifest, with
/// `more`, `next` and the X-TAXII-Date-Added headers.
fn paged(page: cti::Page<'_>, item: impl Fn(&cti::Entry) -> Value) -> Response {
    let mut body = json!({"more": page.next.is_some()});
    if let Some(n) = &page.next {
        body["next"] = json!(n);
    }
    if !page.entries.is_empty() {
        body["objects"] = json!(page.entries.iter().map(|e| item(e)).collect::<Vec<_>>());
    }
    let mut r = taxii(StatusCode::OK, body);
    date_added_headers(&mut r, page.entries.first().map(|e| e.date_added), page.entries.last().map(|e| e.date_added));
    r
}

/// An entry as the object it holds (the text was checked JSON when it was indexed).
fn object_of(e: &cti::Entry) -> Value {
    serde_json::from_str(&e.json).unwrap_or(Value::Null)
}

async fn get_objects(
    State(app): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    gated!(gate(&app, &headers));
    gated!(collection_of(&id));
    let q =
        gated!(parse_query(raw.as_deref(), &["added_after", "limit", "next", "id", "type", "version", "spec_version"]));
    let Ok(c) = app.cti.lock() else {
        return taxii_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Error", "lock poisoned");
    };
    paged(c.index.page(&q, |_| true), object_of)
}

async fn manifest(State(app): Shared, Path(id): Path<String>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    gated!(gate(&app, &headers));
    gated!(collection_of(&id));
    let q =
        gated!(parse_query(raw.as_deref(), &["added_after", "limit", "next", "id", "type", "version", "spec_version"]));
    let Ok(c) = app.cti.lock() else {
        return taxii_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Error", "lock poisoned");
    };
    paged(c.index.page(&q, |_| true), |e| {
        json!({"id": e.meta.id, "date_added": cti::taxii_time(e.date_added), "version": e.meta.version,
               "media_type": "application/stix+json;version=2.1"})
    })
}

async fn get_object(
    State(app): Shared,
    Path((id, object)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    gated!(gate(&app, &headers));
    gated!(collection_of(&id));
    let mut q = gated!(parse_query(raw.as_deref(), &["added_after", "limit", "next", "version", "spec_version"]));
    q.ids = vec![object.clone()];
    let Ok(c) = app.cti.lock() else {
        return taxii_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Error", "lock poisoned");
    };
    if c.index.versions(&object).is_empty() {
        return taxii_error(StatusCode::NOT_FOUND, "Not Found", format!("no object {object:?}"));
    }
    paged(c.index.page(&q, |_| true), object_of)
}

async fn versions(
    State(app): Shared,
    Path((id, object)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    gated!(gate(&app, &headers));
    gated!(collection_of(&id));
    let q = gated!(parse_query(raw.as_deref(), &["added_after", "limit", "next", "spec_version"]));
    let Ok(c) = app.cti.lock() else {
        return taxii_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Error", "lock poisoned");
    };
    let all = c.index.versions(&object);
    if all.is_empty() {
        return taxii_error(StatusCode::NOT_FOUND, "Not Found", format!("no object {object:?}"));
    }
    let vs: Vec<&cti::Entry> =
        all.into_iter().filter(|e| q.added_after.is_none_or(|a| e.date_added > a)).take(q.limit).collect();
    let mut body = json!({"more": false});
    if !vs.is_empty() {
        body["versions"] = json!(vs.iter().map(|e| e.meta.version.clone()).collect::<Vec<_>>());
    }
    let mut r = taxii(StatusCode::OK, body);
    date_added_headers(&mut r, vs.iter().map(|e| e.date_added).min(), vs.iter().map(|e| e.date_added).max());
    r
}

/// Posts an envelope: each object is checked; the good ones are logged (one record per
/// marking) and indexed before the answer, a 202 with a completed status.
async fn post_objects(State(app): Shared, Path(id): Path<String>, headers: HeaderMap, body: Body) -> Response {
    let analyst = gated!(gate(&app, &headers));
    gated!(collection_of(&id));
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let ct: String = ct.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
    if !(ct == "application/taxii+json;version=2.1" || ct == "application/taxii+json") {
        return taxii_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type",
            format!("send Content-Type: {MEDIA_TYPE}"),
        );
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_CONTENT_LENGTH).await else {
        return taxii_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Too Large",
            format!("the body exceeds {MAX_CONTENT_LENGTH} bytes"),
        );
    };
    let envelope: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            return taxii_error(StatusCode::UNPROCESSABLE_ENTITY, "Unprocessable", format!("the body is not JSON: {e}"))
        }
    };
    let Some(objects) = envelope.get("objects").and_then(Value::as_array) else {
        return taxii_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unprocessable",
            "expected an envelope {\"objects\": [...]}",
        );
    };
    let own = app.nation;
    // Every nation of the federation: linked partners and those reached through a relay.
    let mut partners: Vec<Nation> = app.federation.clone();
    partners.sort();
    partners.dedup();
    let amber: Vec<Nation> = app.amber_partners.clone();
    let mut successes = Vec::new();
    let mut failures = Vec::new();
    // Good objects grouped by the marking their TLP gives them and by copy: the whole object
    // for the nation and the partners that may receive all of it, then copies without what
    // granular markings keep from the others (`cti::copy_for`), each marked for every partner
    // that may read all it holds (a relay passes on only what it may hold), the fuller copies
    // first (a partner keeps the first copy of a version it is sent). The key: how many
    // properties the copy lacks, and its marking.
    type Group = Vec<(cti::Meta, String, Nation, Option<String>)>;
    let mut groups: BTreeMap<(usize, Vec<Nation>), Group> = BTreeMap::new();
    for o in objects {
        let text = o.to_string();
        let version = o.get("modified").or_else(|| o.get("created")).cloned().unwrap_or(Value::Null);
        let oid = o.get("id").cloned().unwrap_or(Value::Null);
        if text.len() > cti::MAX_OBJECT_BYTES {
            failures.push(json!({"id": oid, "version": version, "message": format!("the object exceeds {} bytes", cti::MAX_OBJECT_BYTES)}));
            continue;
        }
        match cti::check(o) {
            Ok(meta) => {
                let (held, creator) = match app.cti.lock() {
                    Ok(c) => (
                        c.index.versions(&meta.id).iter().any(|e| e.meta.version == meta.version),
                        c.index.creator(&meta, own, &c.identities),
                    ),
                    Err(_) => (false, Err("the collection's lock is poisoned".to_string())),
                };
                if held {
                    successes.push(json!({"id": meta.id, "version": meta.version, "message": "already held"}));
                    continue;
                }
                let creator = match creator {
                    Ok(c) => c,
                    Err(why) => {
                        failures.push(json!({"id": meta.id, "version": meta.version, "message": why}));
                        continue;
                    }
                };
                let marking = cti::releasable_to(meta.tlp, &amber, &partners);
                // Per partner, what its copy lacks (None: withheld from it).
                let mut lacks: Vec<(Nation, Option<Vec<String>>)> = Vec::new();
                let mut copies: BTreeMap<Vec<String>, String> = BTreeMap::new();
                for &p in &marking {
                    let may = |t: cti::Tlp| cti::releasable_to(Some(t), &amber, &partners).contains(&p);
                    match cti::copy_for(o, &may) {
                        cti::Copy::Whole => lacks.push((p, Some(Vec::new()))),
                        cti::Copy::Redacted { object, removed } => {
                            copies.insert(removed.clone(), object.to_string());
                            lacks.push((p, Some(removed)));
                        }
                        cti::Copy::Withheld(why) => {
                            tracing::info!(id = %meta.id, partner = %p, why, "STIX object withheld from a partner");
                            lacks.push((p, None));
                        }
                    }
                }
                let readers = |removed: &[String]| -> Vec<Nation> {
                    lacks
                        .iter()
                        .filter(|(_, l)| l.as_ref().is_some_and(|l| l.iter().all(|x| removed.contains(x))))
                        .map(|(p, _)| *p)
                        .collect()
                };
                for (removed, copy) in copies {
                    let to = readers(&removed);
                    let note = format!(
                        "{} {}: without {} for {}",
                        meta.id,
                        meta.version,
                        removed.join(", "),
                        to.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
                    );
                    groups.entry((removed.len(), to)).or_default().push((meta.clone(), copy, creator, Some(note)));
                }
                groups.entry((0, readers(&[]))).or_default().push((meta, text, creator, None));
            }
            Err(e) => failures.push(json!({"id": oid, "version": version, "message": e})),
        }
    }
    // Whole objects first: the nation's own log holds each whole before any copy of it.
    // Each group in records that fit the log (the objects as re-serialised here, which can be
    // larger than as posted: `1e15` is written `1000000000000000.0`).
    let mut records = Vec::new();
    for ((lacking, marking), objs) in groups {
        let mut chunk: Group = Vec::new();
        let mut bytes = 0;
        for o in objs {
            let size = o.1.len() + o.3.as_ref().map_or(0, String::len) + 16;
            if !chunk.is_empty() && bytes + size > RECORD_BUDGET {
                records.push((lacking, marking.clone(), std::mem::take(&mut chunk)));
                bytes = 0;
            }
            bytes += size;
            chunk.push(o);
        }
        records.push((lacking, marking, chunk));
    }
    for (lacking, marking, objs) in records {
        let copies = lacking > 0;
        let record = wire::CyberBundle {
            objects: objs.iter().map(|(_, t, _, _)| t.clone()).collect(),
            analyst: analyst.clone(),
            redactions: objs.iter().filter_map(|(_, _, _, n)| n.clone()).collect(),
        };
        match app
            .log
            .append(wire::RecordKind::CyberBundle, prost::Message::encode_to_vec(&record), Some(marking.clone()))
            .await
        {
            Ok(seq) => {
                tracing::info!(%analyst, seq, objects = objs.len(), marking = ?marking, redacted = copies, "STIX objects logged");
                if copies {
                    for note in &record.redactions {
                        tracing::info!(seq, "{note}");
                    }
                    continue;
                }
                if let Ok(mut c) = app.cti.lock() {
                    for (meta, text, creator, _) in objs {
                        successes.push(json!({"id": meta.id, "version": meta.version}));
                        if let Ok(v) = serde_json::from_str::<Value>(&text) {
                            if c.index.add(meta, text.into(), own, creator, journal::wall_clock()) {
                                c.correlations.add(own, &v);
                            }
                        }
                    }
                }
            }
            Err(e) => {
                for (meta, _, _, _) in objs {
                    failures
                        .push(json!({"id": meta.id, "version": meta.version, "message": format!("not logged: {e}")}));
                }
            }
        }
    }
    let status_id = status_id();
    let mut status = json!({
        "id": status_id,
        "status": "complete",
        "request_timestamp": cti::taxii_time(journal::wall_clock()),
        "total_count": successes.len() + failures.len(),
        "success_count": successes.len(),
        "failure_count": failures.len(),
        "pending_count": 0,
    });
    if !successes.is_empty() {
        status["successes"] = json!(successes);
    }
    if !failures.is_empty() {
        status["failures"] = json!(failures);
    }
    if let Ok(mut c) = app.cti.lock() {
        c.statuses.insert(status_id.clone(), status.clone());
        c.status_order.push_back(status_id);
        while c.status_order.len() > MAX_STATUSES {
            if let Some(old) = c.status_order.pop_front() {
                c.statuses.remove(&old);
            }
        }
    }
    taxii(StatusCode::ACCEPTED, status)
}

/// A random status id; should the system have no randomness to give, the clock's nanoseconds
/// (the objects are logged by then: the answer must not fail for want of an id).
fn status_id() -> String {
    let mut b = [0u8; 16];
    if let Err(e) = getrandom::fill(&mut b) {
        tracing::error!(error = %e, "no randomness for a TAXII status id; using the clock");
        b = i128::from(journal::wall_clock().as_nanos()).to_be_bytes();
    }
    cti::uuid_v4(b)
}

/// Shared CTI state.
pub type SharedCti = Arc<Mutex<Cti>>;
