//! Who may do what at a node (docs/security.md). Every interface a person or a sensor touches
//! asks this crate three questions: who is this (`Directory`, `Sessions`), may they do this
//! (`Need::allows`), and does the request come from where it claims (`Names`: the Host and
//! Origin rules that keep another web page from using an operator's browser). It also keeps
//! the bounded state that goes with them: browser sessions, per-credential rate limits, and
//! counters of what was refused and why. Synchronous and free of IO: the HTTP and gRPC
//! servers call it.

use base64::Engine as _;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// What a credential may be allowed to do. A node's config gives each user one or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// The picture: tracks, launches, alerts, sensors, areas, the live stream, the web UI.
    Viewer,
    /// A viewer who may also acknowledge alerts.
    DutyOfficer,
    /// TAXII 2.1: read and post threat intelligence.
    Analyst,
    /// Ingest, as its own sensor id only (`[[sensor]]` in the config).
    Sensor,
    /// Raw records: log ranges and replays.
    Auditor,
    /// Status and metrics.
    Admin,
}

impl Role {
    pub const ALL: [Role; 6] =
        [Role::Viewer, Role::DutyOfficer, Role::Analyst, Role::Sensor, Role::Auditor, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::DutyOfficer => "duty_officer",
            Role::Analyst => "analyst",
            Role::Sensor => "sensor",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Role, String> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            format!(
                "{s:?} is not a role (one of {})",
                Role::ALL.iter().filter(|r| **r != Role::Sensor).map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
            )
        })
    }
}

/// A set of roles. A duty officer is also a viewer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Roles(u8);

impl Roles {
    pub fn of(roles: &[Role]) -> Roles {
        let mut bits = 0u8;
        for r in roles {
            bits |= 1 << *r as u8;
            if *r == Role::DutyOfficer {
                bits |= 1 << Role::Viewer as u8;
            }
        }
        Roles(bits)
    }

    pub fn has(self, role: Role) -> bool {
        self.0 & (1 << role as u8) != 0
    }

    pub fn union(self, other: Roles) -> Roles {
        Roles(self.0 | other.0)
    }

    pub fn names(self) -> Vec<&'static str> {
        Role::ALL.into_iter().filter(|r| self.has(*r)).map(Role::as_str).collect()
    }
}

/// What a route asks of its caller: the authorisation decision every route must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Anyone: the liveness and readiness probes, and the login page itself.
    Public,
    /// Any authenticated user or sensor.
    Authenticated,
    /// At least one of these roles.
    AnyOf(&'static [Role]),
}

impl Need {
    pub fn allows(self, roles: Roles) -> bool {
        match self {
            Need::Public | Need::Authenticated => true,
            Need::AnyOf(rs) => rs.iter().any(|r| roles.has(*r)),
        }
    }

    /// For error messages and the route table: `viewer or admin`.
    pub fn describe(self) -> String {
        match self {
            Need::Public => "nobody (public)".into(),
            Need::Authenticated => "any authenticated caller".into(),
            Need::AnyOf(rs) => rs.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(" or "),
        }
    }
}

/// Someone the node knows: a user (by name) or a sensor (by id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub roles: Roles,
}

/// The credentials a node accepts: bearer tokens by their SHA-256 (`pki::token_hash`), so the
/// config never holds a token itself.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    by_hash: BTreeMap<[u8; 32], Principal>,
}

impl Directory {
    /// Adds a credential; refuses a token hash that another credential already has.
    pub fn add(&mut self, token_sha256: [u8; 32], principal: Principal) -> Result<(), String> {
        if let Some(other) = self.by_hash.get(&token_sha256) {
            return Err(format!("{:?}: its token is also {:?}'s", principal.name, other.name));
        }
        self.by_hash.insert(token_sha256, principal);
        Ok(())
    }

    /// The principal a bearer token names.
    pub fn by_token(&self, token: &str) -> Option<&Principal> {
        if token.is_empty() {
            return None;
        }
        self.by_hash.get(&pki::token_hash(token))
    }

    /// The principal of an `Authorization` header's value: `Bearer <token>`, or `Basic` with
    /// the user's name and token (TAXII clients send Basic). A Basic name must be the user's.
    pub fn by_authorization(&self, value: &str) -> Option<&Principal> {
        let (scheme, rest) = value.trim().split_once(' ')?;
        if scheme.eq_ignore_ascii_case("bearer") {
            return self.by_token(rest.trim());
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
            let text = String::from_utf8(decoded).ok()?;
            let (name, token) = text.split_once(':')?;
            return self.by_token(token).filter(|p| p.name == name);
        }
        None
    }

    /// Every principal holding `role`, by token hash.
    pub fn with_role(&self, role: Role) -> BTreeMap<[u8; 32], String> {
        self.by_hash.iter().filter(|(_, p)| p.roles.has(role)).map(|(h, p)| (*h, p.name.clone())).collect()
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

/// The name of the browser session cookie.
pub const SESSION_COOKIE: &str = "trilink_session";
/// How long a browser session lasts: a watch.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Most sessions a node keeps; past it the one nearest its expiry goes.
pub const MAX_SESSIONS: usize = 4096;

/// A logged-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    pub expires: Instant,
}

/// Browser sessions, by the SHA-256 of their cookie value (a leaked memory dump holds no
/// usable cookie). Bounded: `MAX_SESSIONS`.
#[derive(Debug, Default)]
pub struct Sessions {
    by_hash: HashMap<[u8; 32], Session>,
}

impl Sessions {
    /// Opens a session for `principal` with a cookie value made of `secret` (32 bytes from the
    /// OS's random source); returns the cookie value.
    pub fn open(&mut self, principal: Principal, secret: [u8; 32], now: Instant) -> String {
        self.by_hash.retain(|_, s| s.expires > now);
        if self.by_hash.len() >= MAX_SESSIONS {
            if let Some(k) = self.by_hash.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) {
                self.by_hash.remove(&k);
            }
        }
        let value = hex::encode(secret);
        self.by_hash.insert(pki::token_hash(&value), Session { principal, expires: now + SESSION_TTL });
        value
    }

    /// The live session of a cookie value.
    pub fn get(&mut self, value: &str, now: Instant) -> Option<&Session> {
        let key = pki::token_hash(value);
        if self.by_hash.get(&key).is_some_and(|s| s.expires <= now) {
            self.by_hash.remove(&key);
        }
        self.by_hash.get(&key)
    }

    pub fn close(&mut self, value: &str) {
        self.by_hash.remove(&pki::token_hash(value));
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

/// The session cookie's value in a `Cookie` header, if any.
pub fn session_cookie(cookie_header: &str) -> Option<&str> {
    cookie_header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The names a node answers to, for the Host and Origin rules. A page on another site can
/// make an operator's browser send requests to the node (with the session cookie, or through
/// DNS rebinding under a name the attacker controls); the node answers a browser only under
/// its own names and from its own origin.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// Configured host names, lower case, without port.
    names: Vec<String>,
}

impl Names {
    pub fn new(names: &[String]) -> Names {
        Names { names: names.iter().map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase()).collect() }
    }

    /// Whether a `Host` header names this node: one of its configured names, `localhost`, or
    /// an IP address literal (DNS rebinding needs a name the attacker resolves, never a literal).
    pub fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim();
        let name = if let Some(rest) = host.strip_prefix('[') {
            // [v6]:port
            match rest.split_once(']') {
                Some((v6, _)) => return v6.parse::<std::net::Ipv6Addr>().is_ok(),
                None => return false,
            }
        } else {
            host.rsplit_once(':').filter(|(_, p)| p.parse::<u16>().is_ok()).map(|(h, _)| h).unwrap_or(host)
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        name.parse::<std::net::Ipv4Addr>().is_ok() || name == "localhost" || self.names.contains(&name)
    }

    /// Whether an `Origin` header is this node's own origin as the request reached it: the
    /// same scheme and `Host`, and that Host one of the node's names.
    pub fn same_origin(&self, origin: &str, host: &str, tls: bool) -> bool {
        let scheme = if tls { "https://" } else { "http://" };
        let Some(rest) = origin.trim().strip_prefix(scheme) else { return false };
        rest.eq_ignore_ascii_case(host.trim()) && self.host_allowed(host)
    }
}

/// Why a request was refused: a fixed set, so the metric's label stays bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No credential, or one the node does not know.
    Unauthenticated,
    /// A known credential without the role the route needs.
    Forbidden,
    /// A browser request under a Host that is not one of the node's names.
    BadHost,
    /// A browser write or WebSocket from another origin.
    CrossOrigin,
    /// Over the credential's rate for an expensive read.
    RateLimited,
    /// A connection over a listener's cap.
    TooManyConnections,
}

impl Refusal {
    pub const ALL: [Refusal; 6] = [
        Refusal::Unauthenticated,
        Refusal::Forbidden,
        Refusal::BadHost,
        Refusal::CrossOrigin,
        Refusal::RateLimited,
        Refusal::TooManyConnections,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Unauthenticated => "unauthenticated",
            Refusal::Forbidden => "forbidden",
            Refusal::BadHost => "bad_host",
            Refusal::CrossOrigin => "cross_origin",
            Refusal::RateLimited => "rate_limited",
            Refusal::TooManyConnections => "too_many_connections",
        }
    }
}

/// Refusals by reason, and a bound on how many are logged a second (an attacker's flood
/// counts in full but writes at most `LOG_PER_SECOND` lines a second, then one line saying how
/// many were not written).
#[derive(Debug)]
pub struct Refusals {
    counts: [AtomicU64; 6],
    window: std::sync::Mutex<(Instant, u32, u64)>,
}

/// Refusal log lines written per second at most.
pub const LOG_PER_SECOND: u32 = 20;

impl Default for Refusals {
    fn default() -> Self {
        Refusals { counts: Default::default(), window: std::sync::Mutex::new((Instant::now(), 0, 0)) }
    }
}

impl Refusals {
    /// Counts a refusal; returns `Some(n)` when it should be logged, `n` being how many earlier
    /// refusals went unlogged since the last logged one.
    pub fn count(&self, why: Refusal, now: Instant) -> Option<u64> {
        self.counts[why as usize].fetch_add(1, Relaxed);
        let Ok(mut w) = self.window.lock() else { return Some(0) };
        if now.duration_since(w.0) >= Duration::from_secs(1) {
            w.0 = now;
            w.1 = 0;
        }
        if w.1 < LOG_PER_SECOND {
            w.1 += 1;
            Some(std::mem::take(&mut w.2))
        } else {
            w.2 += 1;
            None
        }
    }

    pub fn get(&self, why: Refusal) -> u64 {
        self.counts[why as usize].load(Relaxed)
    }

    /// The Prometheus text of the counters.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let name = "trilink_access_refused_total";
        let _ = writeln!(out, "# HELP {name} Requests and connections refused, by reason.\n# TYPE {name} counter");
        for r in Refusal::ALL {
            let _ = writeln!(out, "{name}{{reason=\"{}\"}} {}", r.as_str(), self.get(r));
        }
    }
}

/// A token bucket per credential for expensive reads: `burst` at once, then one every
/// `every`. Bounded: at most `MAX_BUCKETS` credentials are tracked (only authenticated
/// callers reach it, and a full bucket is the same as none, so full ones are dropped first).
#[derive(Debug)]
pub struct RateLimit {
    every: Duration,
    burst: u32,
    buckets: HashMap<String, (f64, Instant)>,
}

pub const MAX_BUCKETS: usize = 10_000;

impl RateLimit {
    pub fn new(every: Duration, burst: u32) -> RateLimit {
        RateLimit { every, burst: burst.max(1), buckets: HashMap::new() }
    }

    /// Takes one from `who`'s bucket; `Err(wait)` says how long until the next is allowed.
    pub fn take(&mut self, who: &str, now: Instant) -> Result<(), Duration> {
        let (burst, every) = (self.burst as f64, self.every.as_secs_f64());
        if self.buckets.len() >= MAX_BUCKETS && !self.buckets.contains_key(who) {
            self.buckets.retain(|_, (n, t)| *n + now.duration_since(*t).as_secs_f64() / every < burst);
            if self.buckets.len() >= MAX_BUCKETS {
                return Err(self.every);
            }
        }
        let (tokens, last) = self.buckets.entry(who.to_string()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() / every).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) * every))
        }
    }
}

/// Places for connections (or handshakes) under two caps, in all and per source address: the
/// one table every listener keeps so that no host takes them all. A `Place` gives its own back
/// when dropped, however its connection ends.
#[derive(Debug, Clone)]
pub struct Places {
    counts: std::sync::Arc<std::sync::Mutex<Counts>>,
    total: usize,
    per_source: usize,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_source: HashMap<std::net::IpAddr, usize>,
}

/// One taken place (`Places::take`).
#[derive(Debug)]
pub struct Place {
    counts: std::sync::Arc<std::sync::Mutex<Counts>>,
    source: std::net::IpAddr,
}

impl Places {
    pub fn new(total: usize, per_source: usize) -> Places {
        Places { counts: Default::default(), total, per_source }
    }

    /// A place for `source`, if both caps leave one.
    pub fn take(&self, source: std::net::IpAddr) -> Option<Place> {
        let mut c = self.counts.lock().ok()?;
        let from_source = c.by_source.get(&source).copied().unwrap_or(0);
        if c.total >= self.total || from_source >= self.per_source {
            return None;
        }
        c.total += 1;
        *c.by_source.entry(source).or_default() += 1;
        Some(Place { counts: self.counts.clone(), source })
    }

    /// Places held, in all and sources holding any.
    pub fn held(&self) -> (usize, usize) {
        self.counts.lock().map(|c| (c.total, c.by_source.len())).unwrap_or_default()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Ok(mut c) = self.counts.lock() {
            c.total = c.total.saturating_sub(1);
            if let Some(n) = c.by_source.get_mut(&self.source) {
                *n -= 1;
                if *n == 0 {
                    c.by_source.remove(&self.source);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
