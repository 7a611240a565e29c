//! The door of the HTTP API (docs/security.md): every route is added with the `Need` it asks
//! of its caller, and the check runs before the handler. A request is authenticated by its
//! `Authorization` header (Bearer token, or Basic with the user's name and token) or by a
//! browser session cookie got on the login page; browsers are held to the node's own names
//! (Host) and origin (Origin on writes and WebSockets). Every refusal is counted by reason and
//! logged (at most `access::LOG_PER_SECOND` lines a second). Every response carries the
//! security headers.

use access::{Need, Principal, Refusal};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::Router;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Replays a credential may start: `REPLAY_BURST` at once, then one every `REPLAY_EVERY`.
pub const REPLAY_EVERY: Duration = Duration::from_secs(5);
pub const REPLAY_BURST: u32 = 3;

/// What the door knows: the credentials, the browser sessions, the node's names.
#[derive(Debug)]
pub struct Guard {
    pub directory: access::Directory,
    pub sessions: Mutex<access::Sessions>,
    pub names: access::Names,
    /// Whether the listener speaks TLS (the origin's scheme, HSTS, the cookie's Secure flag).
    pub tls: bool,
    pub refusals: Arc<access::Refusals>,
    pub replays: Mutex<access::RateLimit>,
    /// Where audited requests are recorded (None in tests of the router alone).
    pub audit: Option<Audit>,
}

impl Guard {
    pub fn new(directory: access::Directory, names: &[String], tls: bool, audit: Option<Audit>) -> Guard {
        Guard {
            directory,
            sessions: Mutex::new(access::Sessions::default()),
            names: access::Names::new(names),
            tls,
            refusals: Arc::new(access::Refusals::default()),
            replays: Mutex::new(access::RateLimit::new(REPLAY_EVERY, REPLAY_BURST)),
            audit,
        }
    }

    /// Counts and (rate-limited) logs a refusal, and makes its answer.
    pub fn refuse(&self, why: Refusal, method: &Method, path: &str, who: Option<&str>, message: String) -> Response {
        if let Some(unlogged) = self.refusals.count(why, Instant::now()) {
            tracing::warn!(reason = why.as_str(), %method, path, who = who.unwrap_or("-"), unlogged, "{message}");
        }
        let status = match why {
            Refusal::Unauthenticated => StatusCode::UNAUTHORIZED,
            Refusal::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Refusal::TooManyConnections => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Forbidden | Refusal::BadHost | Refusal::CrossOrigin => StatusCode::FORBIDDEN,
        };
        let title = status.canonical_reason().unwrap_or("Refused");
        let mut r =
            (status, axum::Json(json!({"error": message, "title": title, "description": message}))).into_response();
        if why == Refusal::Unauthenticated {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"trilink\", Basic realm=\"trilink\""),
            );
        }
        r
    }

    /// The session a request's cookie names, if live.
    fn session(&self, headers: &HeaderMap) -> Option<Principal> {
        let cookie =
            headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(access::session_cookie)?;
        let mut sessions = self.sessions.lock().ok()?;
        sessions.get(cookie, Instant::now()).map(|s| s.principal.clone())
    }

    /// Who a request comes from, and whether it may do what `need` says.
    fn admit(&self, req: &Request, need: Need) -> Result<Principal, Box<Response>> {
        let (headers, method, path) = (req.headers(), req.method(), req.uri().path());
        let websocket = headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        let (principal, browser) = match headers.get(header::AUTHORIZATION) {
            Some(v) => (v.to_str().ok().and_then(|v| self.directory.by_authorization(v)).cloned(), false),
            None => (self.session(headers), true),
        };
        if browser || websocket {
            let host = host_of(req);
            if !self.names.host_allowed(host) {
                let m = format!("Host {host:?} is not one of this node's names (set [listen] names)");
                return Err(Box::new(self.refuse(Refusal::BadHost, method, path, None, m)));
            }
            let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
            let writes = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
            let cross = match origin {
                Some(o) => !self.names.same_origin(o, host, self.tls),
                // A browser always sends Origin on a write and on a WebSocket; a session
                // without one is not a browser of ours.
                None => browser && principal.is_some() && (writes || websocket),
            };
            if (writes || websocket) && cross {
                let m = format!("a request from origin {:?} may not use this node's session", origin.unwrap_or("-"));
                return Err(Box::new(self.refuse(
                    Refusal::CrossOrigin,
                    method,
                    path,
                    principal.as_ref().map(|p| p.name.as_str()),
                    m,
                )));
            }
        }
        let Some(p) = principal else {
            if browser && method == Method::GET && (path == "/" || path.starts_with("/ui/")) {
                self.refusals.count(Refusal::Unauthenticated, Instant::now());
                return Err(Box::new((StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response()));
            }
            let m = "send `Authorization: Bearer <token>` (or Basic name:token), or log in at /login".to_string();
            return Err(Box::new(self.refuse(Refusal::Unauthenticated, method, path, None, m)));
        };
        if !need.allows(p.roles) {
            let m = format!("this needs the role {}; {:?} has {}", need.describe(), p.name, p.roles.names().join(", "));
            return Err(Box::new(self.refuse(Refusal::Forbidden, method, path, Some(&p.name), m)));
        }
        Ok(p)
    }
}

/// The name a request was sent to: its `Host` (HTTP/1.1) or its `:authority` (HTTP/2).
fn host_of(req: &Request) -> &str {
    req.headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("")
}

async fn check(State((guard, need)): State<(Arc<Guard>, Need)>, mut req: Request, next: Next) -> Response {
    if need == Need::Public {
        return next.run(req).await;
    }
    match guard.admit(&req, need) {
        Ok(p) => {
            // Reads of raw records (the log, replays) and TAXII are recorded: who, what, when,
            // and the answer.
            let audited = matches!(need, Need::AnyOf(rs) if rs.contains(&access::Role::Auditor) || rs.contains(&access::Role::Analyst));
            let what = audited.then(|| (req.method().to_string(), req.uri().to_string()));
            req.extensions_mut().insert(p.clone());
            let response = next.run(req).await;
            if let (Some((method, uri)), Some(audit)) = (what, &guard.audit) {
                audit.record(&p, &method, &uri, response.status().as_u16()).await;
            }
            response
        }
        Err(r) => *r,
    }
}

/// The access audit (docs/security.md): one JSON line per audited request, appended to
/// `<data_dir>/access-audit.jsonl` by its own thread and synced at least once a second. A
/// request waits for room in the queue rather than go unrecorded.
#[derive(Debug, Clone)]
pub struct Audit {
    tx: tokio::sync::mpsc::Sender<String>,
}

/// Audit lines queued for the writer before requests wait.
const AUDIT_QUEUE: usize = 4096;

impl Audit {
    /// Opens (appends to) the audit file and starts its writer thread.
    pub fn open(path: &std::path::Path) -> anyhow::Result<Audit> {
        use anyhow::Context as _;
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("failed to open the access audit {}", path.display()))?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(AUDIT_QUEUE);
        let shown = path.display().to_string();
        std::thread::Builder::new().name("access-audit".into()).spawn(move || {
            while let Some(line) = rx.blocking_recv() {
                let mut lines = vec![line];
                while let Ok(more) = rx.try_recv() {
                    lines.push(more);
                }
                let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
                if let Err(e) = file.write_all(text.as_bytes()).and_then(|()| file.sync_data()) {
                    tracing::error!(file = %shown, error = %e, lost = lines.len(), "failed to write the access audit");
                }
            }
        })?;
        Ok(Audit { tx })
    }

    async fn record(&self, who: &Principal, method: &str, uri: &str, status: u16) {
        let line = json!({
            "time": journal::wall_clock().to_string(),
            "who": who.name,
            "roles": who.roles.names(),
            "method": method,
            "target": uri,
            "status": status,
        })
        .to_string();
        let _ = self.tx.send(line).await;
    }
}

/// One row of the route table: what a route asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub need: Need,
}

/// A router whose every route is added with its row of the route table (what it asks of its
/// caller): a route without a row, or a row without a route, stops the build.
#[derive(Debug)]
pub struct Routes {
    router: Router,
    table: Vec<Route>,
    added: Vec<Route>,
    guard: Arc<Guard>,
}

impl Routes {
    pub fn new(guard: Arc<Guard>, table: Vec<Route>) -> Routes {
        Routes { router: Router::new(), table, added: Vec::new(), guard }
    }

    fn row(&self, method: &str, path: &str) -> Route {
        match self.table.iter().find(|r| r.method == method && r.path == path) {
            Some(r) => *r,
            None => panic!(
                "{method} {path} has no row in the route table (http::ROUTES): give it an authorisation decision"
            ),
        }
    }

    pub fn add(mut self, method: &'static str, path: &'static str, route: MethodRouter) -> Routes {
        let row = self.row(method, path);
        self.added.push(row);
        let layer = axum::middleware::from_fn_with_state((self.guard.clone(), row.need), check);
        self.router = self.router.route(path, route.route_layer(layer));
        self
    }

    /// Merges a whole router (TAXII's) under one decision; `paths` are its routes.
    pub fn merge(mut self, paths: &[(&'static str, &'static str)], need: Need, router: Router) -> Routes {
        for (method, path) in paths {
            let row = self.row(method, path);
            assert_eq!(row.need, need, "{method} {path}: the route table and the merged router disagree");
            self.added.push(row);
        }
        let layer = axum::middleware::from_fn_with_state((self.guard.clone(), need), check);
        self.router = self.router.merge(router.route_layer(layer));
        self
    }

    /// The router, every answer carrying the security headers.
    pub fn finish(self) -> (Router, Vec<Route>) {
        if let Some(r) = self.table.iter().find(|r| !self.added.contains(r)) {
            panic!("{} {} is in the route table but no route serves it", r.method, r.path);
        }
        let tls = self.guard.tls;
        let router = self
            .router
            // Ingest and TAXII enforce their own body limits so that they can count and explain refusals.
            .layer(axum::extract::DefaultBodyLimit::disable())
            .layer(axum::middleware::map_response(move |r: Response| async move { secure(r, tls) }));
        (router, self.added)
    }
}

/// The security headers: the UI's scripts and styles come only from the node, no page may
/// frame it, nothing is sniffed or sent to another site as a referrer (`same-origin`: with
/// `no-referrer` browsers send `Origin: null` on the node's own forms), and answers are not
/// cached (the picture is live and may be classified).
fn secure(mut r: Response, tls: bool) -> Response {
    let h = r.headers_mut();
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.entry(k).or_insert(HeaderValue::from_static(v));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "same-origin");
    set(h, header::HeaderName::from_static("cross-origin-opener-policy"), "same-origin");
    set(h, header::HeaderName::from_static("cross-origin-resource-policy"), "same-origin");
    set(h, header::CACHE_CONTROL, "no-store");
    if tls {
        set(h, header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    }
    r
}

/// `GET /login`: the login page (no script: a form).
pub async fn login_page() -> Response {
    page(StatusCode::OK, "")
}

fn page(status: StatusCode, message: &str) -> Response {
    let message =
        if message.is_empty() { String::new() } else { format!("<p role=\"alert\"><strong>{message}</strong></p>") };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>trilink — log in</title><link rel=\"icon\" href=\"data:,\"></head>\
         <body><h1>trilink</h1>{message}<form method=\"post\" action=\"/login\">\
         <label>Token <input name=\"token\" type=\"password\" autocomplete=\"current-password\" required autofocus></label> \
         <button type=\"submit\">Log in</button></form>\
         <p>Your token is issued by this node's administrator (<code>trilink pki token</code>).</p></body></html>"
    );
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

/// Largest login form.
const MAX_LOGIN_BODY: usize = 4096;

/// `POST /login` (form `token=…`): opens a session and sets its cookie (HttpOnly, SameSite=
/// Strict, Secure over TLS, for `access::SESSION_TTL`), then sends the browser to the picture.
pub async fn login(State(guard): State<Arc<Guard>>, req: Request) -> Response {
    let (method, path) = (req.method().clone(), "/login");
    let headers = req.headers().clone();
    let host = host_of(&req).to_string();
    let host = host.as_str();
    if !guard.names.host_allowed(host) {
        return guard.refuse(
            Refusal::BadHost,
            &method,
            path,
            None,
            format!("Host {host:?} is not one of this node's names"),
        );
    }
    if let Some(o) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        if !guard.names.same_origin(o, host, guard.tls) {
            return guard.refuse(Refusal::CrossOrigin, &method, path, None, format!("a login from origin {o:?}"));
        }
    }
    let Ok(body) = axum::body::to_bytes(req.into_body(), MAX_LOGIN_BODY).await else {
        return page(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.");
    };
    let token =
        form_urlencoded::parse(&body).find(|(k, _)| k == "token").map(|(_, v)| v.into_owned()).unwrap_or_default();
    let principal = guard.directory.by_token(token.trim()).filter(|p| !p.roles.has(access::Role::Sensor)).cloned();
    let Some(principal) = principal else {
        guard.refuse(Refusal::Unauthenticated, &method, path, None, "a login with an unknown token".into());
        return page(StatusCode::UNAUTHORIZED, "That token is not valid here.");
    };
    let mut secret = [0u8; 32];
    if getrandom::fill(&mut secret).is_err() {
        return page(StatusCode::INTERNAL_SERVER_ERROR, "The node could not read its random source.");
    }
    let name = principal.name.clone();
    let value = match guard.sessions.lock() {
        Ok(mut s) => s.open(principal, secret, Instant::now()),
        Err(_) => return page(StatusCode::INTERNAL_SERVER_ERROR, "session table lock poisoned"),
    };
    tracing::info!(who = %name, "logged in");
    let cookie = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        access::SESSION_COOKIE,
        access::SESSION_TTL.as_secs(),
        if guard.tls { "; Secure" } else { "" }
    );
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `POST /logout`: ends the session and clears its cookie.
pub async fn logout(State(guard): State<Arc<Guard>>, headers: HeaderMap) -> Response {
    if let Some(c) =
        headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(access::session_cookie)
    {
        if let Ok(mut s) = guard.sessions.lock() {
            s.close(c);
        }
    }
    let clear = format!("{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0", access::SESSION_COOKIE);
    (StatusCode::SEE_OTHER, [(header::LOCATION, "/login".to_string()), (header::SET_COOKIE, clear)]).into_response()
}

/// `GET /v1/session`: who the caller is and what they may do (the UI shows only what the
/// roles allow).
pub async fn whoami(axum::Extension(p): axum::Extension<Principal>) -> Response {
    axum::Json(json!({"name": p.name, "roles": p.roles.names()})).into_response()
}

/// Whether a rate-limited read may go ahead for `who`; the refusal otherwise.
pub fn allow_replay(guard: &Guard, who: &Principal, path: &str) -> Result<(), Box<Response>> {
    let wait = match guard.replays.lock() {
        Ok(mut l) => l.take(&who.name, Instant::now()),
        Err(_) => Ok(()),
    };
    wait.map_err(|wait| {
        let mut r = guard.refuse(
            Refusal::RateLimited,
            &Method::GET,
            path,
            Some(&who.name),
            format!(
                "replays are limited to {REPLAY_BURST} at once and one per {}s per credential; retry in {:.0}s",
                REPLAY_EVERY.as_secs(),
                wait.as_secs_f64().ceil()
            ),
        );
        if let Ok(v) = HeaderValue::from_str(&format!("{}", wait.as_secs_f64().ceil() as u64)) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        Box::new(r)
    })
}
