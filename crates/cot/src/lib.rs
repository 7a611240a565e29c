//! Cursor on Target output for TAK (docs/cot.md): the node's tracks, launch points and impact
//! points as CoT events, in XML or in TAK protocol version 1 (protobuf, streaming framing:
//! 0xBF, varint length, TakMessage), over TCP or TLS — as a server TAK clients connect to and
//! as a client pushing to configured TAK servers.
//!
//! Events are built from the same JSON the HTTP API serves (`products::track_json`), so a TAK
//! user and an API user see the same positions. One hub task turns the picture's changes into
//! encoded events (each uid at most once per `min_interval`, except on a phase change or a
//! deletion) and keeps the latest event per uid for new connections; each connection gets that
//! snapshot, then every new event. A connection too slow for the stream is closed (TAK clients
//! reconnect) rather than hold the node's memory.

pub mod config;

use anyhow::Context;
use config::{CotConfig, CotFormat, CotListen, CotPush};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast;

/// Events buffered per connection; a connection further behind is closed.
const CONNECTION_BUFFER: usize = 4096;
/// A write that takes longer than this closes the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections at once per listener; more are refused.
const MAX_CONNECTIONS: usize = 64;
/// Bytes of incoming data (TAK pings, client reports) read and dropped per connection before
/// the connection is closed as misbehaving: it is an output stream.
const MAX_INBOUND_BYTES: u64 = 16 * 1024 * 1024;

/// CoT types: a hostile air track, weapon, missile (MIL-STD-2525 S*APWM, as TAK maps it); the
/// launch point as a hostile ground point; the impact point as a spot marker.
pub const TYPE_TRACK: &str = "a-h-A-W-M";
pub const TYPE_LAUNCH: &str = "a-h-G";
pub const TYPE_IMPACT: &str = "b-m-p-s-p-i";

/// One CoT event, format-neutral.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub uid: String,
    pub kind: &'static str,
    /// "m-f": machine-generated, fused.
    pub how: &'static str,
    pub time_ms: i64,
    pub start_ms: i64,
    pub stale_ms: i64,
    pub lat: f64,
    pub lon: f64,
    /// Height above the WGS-84 ellipsoid, m.
    pub hae: f64,
    /// Circular and linear error, m (CoT: 9999999 when unknown).
    pub ce: f64,
    pub le: f64,
    pub callsign: String,
    pub remarks: String,
    /// Course (deg from true north) and ground speed (m/s), for tracks.
    pub course_speed: Option<(f64, f64)>,
}

/// CoT's value for an unknown error.
const UNKNOWN_ERROR: f64 = 9_999_999.0;

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

/// Milliseconds since the epoch as CoT's xs:dateTime.
fn cot_time(ms: i64) -> String {
    let t = vocab::UtcNanos::from_nanos(ms.saturating_mul(1_000_000));
    let (y, mo, d, h, mi, s, ns) = t.to_civil();
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z", ns / 1_000_000)
}

impl Event {
    /// The event as one XML CoT document (what a TAK client reads off a plain CoT stream).
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(512);
        let _ = write!(
            out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<event version=\"2.0\" uid=\"{}\" type=\"{}\" how=\"{}\" time=\"{}\" start=\"{}\" stale=\"{}\"><point lat=\"{:.7}\" lon=\"{:.7}\" hae=\"{:.1}\" ce=\"{:.1}\" le=\"{:.1}\"/><detail><contact callsign=\"{}\"/>",
            xml_escape(&self.uid),
            self.kind,
            self.how,
            cot_time(self.time_ms),
            cot_time(self.start_ms),
            cot_time(self.stale_ms),
            self.lat,
            self.lon,
            self.hae,
            self.ce,
            self.le,
            xml_escape(&self.callsign),
        );
        if let Some((course, speed)) = self.course_speed {
            let _ = write!(out, "<track course=\"{course:.1}\" speed=\"{speed:.1}\"/>");
        }
        let _ = writeln!(out, "<remarks>{}</remarks></detail></event>", xml_escape(&self.remarks));
        out
    }

    /// The event as a TAK protocol version 1 message.
    pub fn to_proto(&self) -> tak::TakMessage {
        tak::TakMessage {
            tak_control: None,
            cot_event: Some(tak::CotEvent {
                r#type: self.kind.to_string(),
                access: String::new(),
                qos: String::new(),
                opex: String::new(),
                uid: self.uid.clone(),
                send_time: self.time_ms.max(0) as u64,
                start_time: self.start_ms.max(0) as u64,
                stale_time: self.stale_ms.max(0) as u64,
                how: self.how.to_string(),
                lat: self.lat,
                lon: self.lon,
                hae: self.hae,
                ce: self.ce,
                le: self.le,
                detail: Some(tak::Detail {
                    xml_detail: format!("<remarks>{}</remarks>", xml_escape(&self.remarks)),
                    contact: Some(tak::Contact { endpoint: String::new(), callsign: self.callsign.clone() }),
                    track: self.course_speed.map(|(course, speed)| tak::Track { speed, course }),
                }),
            }),
        }
    }

    /// TAK protocol version 1 streaming framing: 0xBF, the length as a varint, the message.
    pub fn to_stream_frame(&self) -> Vec<u8> {
        let msg = prost::Message::encode_to_vec(&self.to_proto());
        let mut out = Vec::with_capacity(msg.len() + 6);
        out.push(0xBF);
        prost::encoding::encode_varint(msg.len() as u64, &mut out);
        out.extend_from_slice(&msg);
        out
    }
}

/// The TAK protocol version 1 messages trilink sends (field numbers of the TAK protocol's
/// takmessage.proto, cotevent.proto, detail.proto, contact.proto and track.proto).
pub mod tak {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TakMessage {
        #[prost(message, optional, tag = "1")]
        pub tak_control: Option<TakControl>,
        #[prost(message, optional, tag = "2")]
        pub cot_event: Option<CotEvent>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TakControl {
        #[prost(uint32, tag = "1")]
        pub min_proto_version: u32,
        #[prost(uint32, tag = "2")]
        pub max_proto_version: u32,
        #[prost(string, tag = "3")]
        pub contact_uid: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CotEvent {
        #[prost(string, tag = "1")]
        pub r#type: String,
        #[prost(string, tag = "2")]
        pub access: String,
        #[prost(string, tag = "3")]
        pub qos: String,
        #[prost(string, tag = "4")]
        pub opex: String,
        #[prost(string, tag = "5")]
        pub uid: String,
        /// Milliseconds since 1970-01-01T00:00:00Z.
        #[prost(uint64, tag = "6")]
        pub send_time: u64,
        #[prost(uint64, tag = "7")]
        pub start_time: u64,
        #[prost(uint64, tag = "8")]
        pub stale_time: u64,
        #[prost(string, tag = "9")]
        pub how: String,
        #[prost(double, tag = "10")]
        pub lat: f64,
        #[prost(double, tag = "11")]
        pub lon: f64,
        #[prost(double, tag = "12")]
        pub hae: f64,
        #[prost(double, tag = "13")]
        pub ce: f64,
        #[prost(double, tag = "14")]
        pub le: f64,
        #[prost(message, optional, tag = "15")]
        pub detail: Option<Detail>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Detail {
        /// Every detail element without a field of its own, as XML.
        #[prost(string, tag = "1")]
        pub xml_detail: String,
        #[prost(message, optional, tag = "2")]
        pub contact: Option<Contact>,
        #[prost(message, optional, tag = "7")]
        pub track: Option<Track>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Contact {
        #[prost(string, tag = "1")]
        pub endpoint: String,
        #[prost(string, tag = "2")]
        pub callsign: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Track {
        #[prost(double, tag = "1")]
        pub speed: f64,
        #[prost(double, tag = "2")]
        pub course: f64,
    }
}

fn ms(t: &Value) -> Option<i64> {
    vocab::UtcNanos::parse_rfc3339(t.as_str()?).ok().map(|t| t.as_nanos().div_euclid(1_000_000))
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or(f64::NAN)
}

/// Uids of a track's events.
pub fn uids(nation: vocab::Nation, track: u64) -> [String; 3] {
    [
        format!("trilink.{nation}.track.{track}"),
        format!("trilink.{nation}.launch.{track}"),
        format!("trilink.{nation}.impact.{track}"),
    ]
}

/// The events of one track (its JSON as `products::track_json` makes it): the track itself,
/// and its launch and impact points once estimated. `now_ms` is the node's clock.
pub fn track_events(nation: vocab::Nation, v: &Value, now_ms: i64, stale_s: f64) -> Vec<Event> {
    let Some(id) = v["track"].as_u64() else { return Vec::new() };
    let [track_uid, launch_uid, impact_uid] = uids(nation, id);
    let phase = v["phase"].as_str().unwrap_or("unknown");
    let nations: Vec<&str> =
        v["nations"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let time = ms(&v["time"]).unwrap_or(now_ms);
    let (lat, lon) = (f(v, "lat_deg"), f(v, "lon_deg"));
    if !(lat.is_finite() && lon.is_finite()) {
        return Vec::new();
    }
    // Course and speed over ground from the ECEF velocity, in the local east-north plane.
    let vel = v["vel_ecef_mps"].as_array().map(|a| a.iter().map(|x| x.as_f64().unwrap_or(0.0)).collect::<Vec<_>>());
    let course_speed = vel.filter(|x| x.len() == 3).map(|x| {
        let (sl, cl) = lat.to_radians().sin_cos();
        let (so, co) = lon.to_radians().sin_cos();
        let east = -so * x[0] + co * x[1];
        let north = -sl * co * x[0] - sl * so * x[1] + cl * x[2];
        ((east.atan2(north).to_degrees() + 360.0) % 360.0, east.hypot(north))
    });
    let sd = f(v, "pos_sd_m");
    let sd = if sd.is_finite() { sd } else { UNKNOWN_ERROR };
    let impact = v.get("impact").filter(|i| !i.is_null());
    let impact_remark = impact
        .map(|i| {
            format!(
                "; impact {} ±{:.0} s at {:.4},{:.4}",
                i["time"].as_str().unwrap_or("?"),
                f(i, "time_sd_s"),
                f(i, "lat_deg"),
                f(i, "lon_deg")
            )
        })
        .unwrap_or_default();
    let mut out = vec![Event {
        uid: track_uid,
        kind: TYPE_TRACK,
        how: "m-f",
        time_ms: now_ms,
        start_ms: time,
        // A track not refreshed for stale_s is stale on the TAK display.
        stale_ms: time.max(now_ms) + (stale_s * 1000.0) as i64,
        lat,
        lon,
        hae: f(v, "alt_m"),
        ce: sd,
        le: sd,
        callsign: format!("{nation} T{id} {}", phase.to_uppercase()),
        remarks: format!(
            "trilink {nation} track {id}: {phase}, altitude {:.0} km, sensors of {}{impact_remark}",
            f(v, "alt_m") / 1000.0,
            nations.join("+")
        ),
        course_speed,
    }];
    if let Some(l) = v.get("launch").filter(|l| !l.is_null()) {
        let lt = ms(&l["time"]).unwrap_or(time);
        out.push(Event {
            uid: launch_uid,
            kind: TYPE_LAUNCH,
            how: "m-f",
            time_ms: now_ms,
            start_ms: lt,
            // The launch point stays on the map for an hour after the launch.
            stale_ms: lt.max(now_ms) + 3_600_000,
            lat: f(l, "lat_deg"),
            lon: f(l, "lon_deg"),
            hae: 0.0,
            ce: f(l, "sd_m"),
            le: UNKNOWN_ERROR,
            callsign: format!("{nation} T{id} LAUNCH"),
            remarks: format!(
                "launch of trilink {nation} track {id} at {} ±{:.1} s, {:.1} km RMS",
                l["time"].as_str().unwrap_or("?"),
                f(l, "time_sd_s"),
                f(l, "sd_m") / 1000.0
            ),
            course_speed: None,
        });
    }
    if let Some(i) = impact {
        let it = ms(&i["time"]).unwrap_or(time);
        out.push(Event {
            uid: impact_uid,
            kind: TYPE_IMPACT,
            how: "m-f",
            time_ms: now_ms,
            start_ms: now_ms,
            // Until five minutes after the predicted impact.
            stale_ms: it.max(now_ms) + 300_000,
            lat: f(i, "lat_deg"),
            lon: f(i, "lon_deg"),
            hae: 0.0,
            // The 95% ellipse's semi-major axis: a circle that holds the ellipse.
            ce: f(i, "ellipse95_semi_major_m"),
            le: UNKNOWN_ERROR,
            callsign: format!("{nation} T{id} IMPACT"),
            remarks: format!(
                "predicted impact of trilink {nation} track {id} at {} ±{:.0} s; 95% ellipse {:.1} x {:.1} km, major axis {:.0} deg",
                i["time"].as_str().unwrap_or("?"),
                f(i, "time_sd_s"),
                f(i, "ellipse95_semi_major_m") / 1000.0,
                f(i, "ellipse95_semi_minor_m") / 1000.0,
                f(i, "ellipse95_major_azimuth_deg")
            ),
            course_speed: None,
        });
    }
    out
}

/// One event encoded in both formats, shared by every connection.
#[derive(Debug)]
pub struct Encoded {
    pub uid: String,
    pub xml: Vec<u8>,
    pub proto: Vec<u8>,
}

impl Encoded {
    fn new(e: &Event) -> Encoded {
        Encoded { uid: e.uid.clone(), xml: e.to_xml().into_bytes(), proto: e.to_stream_frame() }
    }
    fn bytes(&self, format: CotFormat) -> &[u8] {
        match format {
            CotFormat::Xml => &self.xml,
            CotFormat::Protobuf => &self.proto,
        }
    }
}

/// The latest event per uid, and the stream of new ones.
#[derive(Debug)]
pub struct Hub {
    latest: Mutex<BTreeMap<String, Arc<Encoded>>>,
    tx: broadcast::Sender<Arc<Encoded>>,
}

impl Hub {
    fn snapshot_and_subscribe(&self) -> (Vec<Arc<Encoded>>, broadcast::Receiver<Arc<Encoded>>) {
        // Under the lock, so that no event falls between the snapshot and the subscription.
        let latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        (latest.values().cloned().collect(), self.tx.subscribe())
    }
    fn publish(&self, e: &Event) {
        let enc = Arc::new(Encoded::new(e));
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        latest.insert(enc.uid.clone(), enc.clone());
        let _ = self.tx.send(enc);
    }
    fn forget(&self, uid: &str) {
        self.latest.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
    }
}

fn now_ms() -> i64 {
    journal::wall_clock().as_nanos().div_euclid(1_000_000)
}

/// Turns the node's stream of changes into CoT events.
async fn run_hub(app: Arc<Source>, hub: Arc<Hub>, cfg: CotConfig) {
    let mut rx = app.events.subscribe();
    let nation = app.nation;
    let mut last: BTreeMap<String, (Instant, String)> = BTreeMap::new();
    let tracks: Vec<Value> = (app.tracks)();
    for v in &tracks {
        for e in track_events(nation, v, now_ms(), cfg.stale_s) {
            last.insert(e.uid.clone(), (Instant::now(), e.callsign.clone()));
            hub.publish(&e);
        }
    }
    let mut stop = app.stop.clone();
    loop {
        let msg = tokio::select! {
            m = rx.recv() => m,
            _ = stop.changed() => return,
        };
        let text = match msg {
            Ok(t) => t,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "CoT output fell behind the picture; later updates carry on");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Ok(m) = serde_json::from_str::<Value>(&text) else { continue };
        match m["type"].as_str() {
            Some("track") => {
                for e in track_events(nation, &m["data"], now_ms(), cfg.stale_s) {
                    // At most once per interval per uid, except when the callsign (phase) changes.
                    let due =
                        last.get(&e.uid).is_none_or(|(at, cs)| at.elapsed() >= cfg.min_interval || *cs != e.callsign);
                    if due {
                        last.insert(e.uid.clone(), (Instant::now(), e.callsign.clone()));
                        hub.publish(&e);
                    }
                }
            }
            Some("track_deleted") => {
                let Some(id) = m["track"].as_u64() else { continue };
                let [track_uid, _, impact_uid] = uids(nation, id);
                // Re-sent as stale now: TAK removes it. The launch point stays until its own stale.
                for uid in [track_uid, impact_uid] {
                    let Some((_, callsign)) = last.remove(&uid) else { continue };
                    let latest = hub.latest.lock().ok().and_then(|l| l.get(&uid).cloned());
                    if let Some(enc) = latest {
                        let t = now_ms();
                        let e = Event {
                            uid: uid.clone(),
                            kind: if uid.contains(".track.") { TYPE_TRACK } else { TYPE_IMPACT },
                            how: "m-f",
                            time_ms: t,
                            start_ms: t,
                            stale_ms: t,
                            lat: 0.0,
                            lon: 0.0,
                            hae: 0.0,
                            ce: UNKNOWN_ERROR,
                            le: UNKNOWN_ERROR,
                            callsign,
                            remarks: format!("trilink {nation} track {id} dropped"),
                            course_speed: None,
                        };
                        // The last known position, so that a client that draws it does so there.
                        let e = position_from(&enc, e);
                        hub.publish(&e);
                        hub.forget(&uid);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Copies the point of an encoded event into `e` (from its protobuf form).
fn position_from(enc: &Encoded, mut e: Event) -> Event {
    let body = &enc.proto[1..];
    let mut buf = body;
    if prost::encoding::decode_varint(&mut buf).is_ok() {
        if let Ok(m) = <tak::TakMessage as prost::Message>::decode(buf) {
            if let Some(c) = m.cot_event {
                (e.lat, e.lon, e.hae) = (c.lat, c.lon, c.hae);
            }
        }
    }
    e
}

/// Writes all of `bytes`, or fails after `WRITE_TIMEOUT`.
async fn write_timed<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> Result<(), String> {
    let r = tokio::time::timeout(WRITE_TIMEOUT, async {
        w.write_all(bytes).await?;
        w.flush().await
    })
    .await;
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("a write took over {} s", WRITE_TIMEOUT.as_secs())),
    }
}

/// Sends the snapshot, then every new event, until the peer goes or the node stops.
async fn stream_to<S: AsyncRead + AsyncWrite + Unpin>(
    app: &Source,
    hub: &Hub,
    stream: S,
    format: CotFormat,
    peer: &str,
) -> Result<(), String> {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (snapshot, mut rx) = hub.snapshot_and_subscribe();
    let mut stop = app.stop.clone();
    let mut first = Vec::new();
    for e in &snapshot {
        first.extend_from_slice(e.bytes(format));
    }
    if !first.is_empty() {
        write_timed(&mut writer, &first).await?;
    }
    // Incoming bytes (TAK clients send pings) are read and dropped.
    let mut inbound = 0u64;
    let mut scratch = vec![0u8; 4096];
    loop {
        tokio::select! {
            m = rx.recv() => {
                let mut bytes = match m {
                    Ok(e) => e.bytes(format).to_vec(),
                    Err(broadcast::error::RecvError::Lagged(n)) => return Err(format!("too slow: {n} events behind")),
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                };
                // Whatever else is ready goes in the same write.
                while let Ok(e) = rx.try_recv() {
                    bytes.extend_from_slice(e.bytes(format));
                }
                write_timed(&mut writer, &bytes).await?;
            }
            n = reader.read(&mut scratch) => {
                match n {
                    Ok(0) | Err(_) => return Ok(()),
                    Ok(n) => {
                        inbound += n as u64;
                        if inbound > MAX_INBOUND_BYTES {
                            return Err(format!("{peer} sent over {MAX_INBOUND_BYTES} bytes to an output stream"));
                        }
                    }
                }
            }
            _ = stop.changed() => {
                let _ = writer.shutdown().await;
                return Ok(());
            }
        }
    }
}

fn tls_server(l: &CotListen) -> anyhow::Result<Option<tokio_rustls::TlsAcceptor>> {
    let (Some(cert), Some(key)) = (&l.tls_cert, &l.tls_key) else { return Ok(None) };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = pki::read_certs(cert)?;
    let key = pki::read_key(key)?;
    let builder =
        rustls::ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let config = match &l.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in pki::read_certs(ca)? {
                roots.add(c).with_context(|| format!("CA certificate in {}", ca.display()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .with_context(|| format!("client CA {}", ca.display()))?;
            builder.with_client_cert_verifier(verifier).with_single_cert(certs, key)
        }
        None => builder.with_no_client_auth().with_single_cert(certs, key),
    }
    .context("the CoT certificate and key do not match")?;
    Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
}

fn tls_client(p: &CotPush) -> anyhow::Result<Option<tokio_rustls::TlsConnector>> {
    let Some(ca) = &p.ca else { return Ok(None) };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in pki::read_certs(ca)? {
        roots.add(c).with_context(|| format!("CA certificate in {}", ca.display()))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match (&p.cert, &p.key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(pki::read_certs(cert)?, pki::read_key(key)?)
            .context("the CoT client certificate and key do not match")?,
        _ => builder.with_no_client_auth(),
    };
    Ok(Some(tokio_rustls::TlsConnector::from(Arc::new(config))))
}

/// Accepts TAK clients on one listener.
async fn serve(app: Arc<Source>, hub: Arc<Hub>, listener: tokio::net::TcpListener, l: CotListen) {
    let tls = match tls_server(&l) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(address = %l.address, error = %format!("{e:#}"), "CoT listener not started");
            return;
        }
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut stop = app.stop.clone();
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "CoT accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "CoT connection refused: {MAX_CONNECTIONS} already connected");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (app, hub, tls, format) = (app.clone(), hub.clone(), tls.clone(), l.format);
        tokio::spawn(async move {
            let _permit = permit;
            let peer = peer.to_string();
            app.metrics.cot_clients.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let r = match tls {
                None => stream_to(&app, &hub, tcp, format, &peer).await,
                Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => stream_to(&app, &hub, s, format, &peer).await,
                    Ok(Err(e)) => Err(format!("TLS handshake failed: {e}")),
                    Err(_) => Err("TLS handshake timed out".into()),
                },
            };
            app.metrics.cot_clients.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            match r {
                Ok(()) => tracing::info!(%peer, "CoT client left"),
                Err(e) => tracing::warn!(%peer, error = %e, "CoT client dropped"),
            }
        });
    }
}

/// Keeps a connection to one TAK server, reconnecting with backoff.
async fn push(app: Arc<Source>, hub: Arc<Hub>, p: CotPush) {
    let tls = match tls_client(&p) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(address = %p.address, error = %format!("{e:#}"), "CoT push not started");
            return;
        }
    };
    let mut backoff = Duration::from_millis(500);
    let mut stop = app.stop.clone();
    loop {
        let started = Instant::now();
        let r: Result<(), String> = async {
            let tcp = tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect(&p.address))
                .await
                .map_err(|_| "connect timed out".to_string())?
                .map_err(|e| e.to_string())?;
            let _ = tcp.set_nodelay(true);
            tracing::info!(address = %p.address, "pushing CoT to a TAK server");
            match &tls {
                None => stream_to(&app, &hub, tcp, p.format, &p.address).await,
                Some(connector) => {
                    let host = p
                        .server_name
                        .clone()
                        .unwrap_or_else(|| p.address.rsplit_once(':').map(|(h, _)| h.to_string()).unwrap_or_default());
                    let name = rustls::pki_types::ServerName::try_from(host).map_err(|e| e.to_string())?;
                    let s = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, tcp))
                        .await
                        .map_err(|_| "TLS handshake timed out".to_string())?
                        .map_err(|e| format!("TLS handshake failed: {e}"))?;
                    stream_to(&app, &hub, s, p.format, &p.address).await
                }
            }
        }
        .await;
        if *app.stop.borrow() {
            return;
        }
        if let Err(e) = r {
            tracing::warn!(address = %p.address, error = %e, "CoT push connection lost; retrying");
        }
        if started.elapsed() > Duration::from_secs(30) {
            backoff = Duration::from_millis(500);
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// The CoT output's listeners, bound (so a taken port or a bad certificate fails the node's
/// start before anything else runs).
#[derive(Debug)]
pub struct Bound {
    cfg: CotConfig,
    listeners: Vec<(tokio::net::TcpListener, CotListen)>,
}

pub async fn bind(cfg: CotConfig) -> anyhow::Result<Bound> {
    let mut listeners = Vec::new();
    for l in &cfg.listen {
        let listener = tokio::net::TcpListener::bind(l.address)
            .await
            .with_context(|| format!("failed to listen for CoT clients on {}", l.address))?;
        tls_server(l).with_context(|| format!("[[cot.listen]] {}", l.address))?;
        listeners.push((listener, l.clone()));
    }
    for p in &cfg.push {
        tls_client(p).with_context(|| format!("[[cot.push]] {}", p.address))?;
    }
    Ok(Bound { cfg, listeners })
}

/// What CoT needs of its node: who it is, the picture's current tracks and its stream of
/// changes (the same JSON the HTTP API serves), when to stop, and where to count clients.
pub struct Source {
    pub nation: vocab::Nation,
    /// The picture's tracks now, as `track_json` objects (what a new connection starts from).
    pub tracks: Box<dyn Fn() -> Vec<Value> + Send + Sync>,
    /// The picture's changes as they happen (`{"type": "track", ...}` and the rest).
    pub events: broadcast::Sender<Arc<str>>,
    /// Turns true when the node shuts down.
    pub stop: tokio::sync::watch::Receiver<bool>,
    pub metrics: Arc<telemetry::Metrics>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source").field("nation", &self.nation).finish_non_exhaustive()
    }
}

/// A TLS handshake with a TAK client or server that takes longer is given up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the hub, the listeners and the pushes.
pub fn start(app: Arc<Source>, bound: Bound) {
    let Bound { cfg, listeners } = bound;
    let hub = Arc::new(Hub { latest: Mutex::new(BTreeMap::new()), tx: broadcast::channel(CONNECTION_BUFFER).0 });
    tokio::spawn(run_hub(app.clone(), hub.clone(), cfg.clone()));
    for (listener, l) in listeners {
        tracing::info!(address = %l.address, format = ?l.format, tls = l.tls_cert.is_some(), "serving CoT");
        tokio::spawn(serve(app.clone(), hub.clone(), listener, l));
    }
    for p in cfg.push {
        tokio::spawn(push(app.clone(), hub.clone(), p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({
            "time": "2026-05-14T05:30:00.5Z", "track": 7, "lat_deg": 39.5, "lon_deg": 131.25, "alt_m": 300000.0,
            "pos_ecef_m": [0.0, 0.0, 0.0], "vel_ecef_mps": [-1000.0, 2000.0, 500.0], "pos_sd_m": 120.0,
            "phase": "midcourse", "nations": ["JPN", "KOR"],
            "impact": {"lat_deg": 39.7, "lon_deg": 140.1, "time": "2026-05-14T05:36:00Z", "time_sd_s": 3.0,
                       "ellipse95_semi_major_m": 9000.0, "ellipse95_semi_minor_m": 4000.0, "ellipse95_major_azimuth_deg": 80.0},
            "launch": {"lat_deg": 39.2, "lon_deg": 125.67, "time": "2026-05-14T05:27:30Z", "time_sd_s": 1.5, "sd_m": 800.0},
        })
    }

    #[test]
    fn a_track_gives_track_launch_and_impact_events() {
        let n = vocab::Nation::parse("JPN").unwrap();
        let ev = track_events(n, &sample(), 1_778_736_601_000, 10.0);
        assert_eq!(ev.iter().map(|e| e.kind).collect::<Vec<_>>(), [TYPE_TRACK, TYPE_LAUNCH, TYPE_IMPACT]);
        assert_eq!(ev[0].uid, "trilink.JPN.track.7");
        assert_eq!((ev[0].lat, ev[0].lon, ev[0].hae), (39.5, 131.25, 300000.0));
        assert_eq!(ev[0].start_ms, 1_778_736_600_500);
        assert_eq!(ev[0].stale_ms, 1_778_736_611_000);
        assert_eq!(ev[2].stale_ms, 1_778_736_960_000 + 300_000);
        let (course, speed) = ev[0].course_speed.unwrap();
        assert!((0.0..360.0).contains(&course) && speed > 0.0);
        let xml = ev[0].to_xml();
        assert!(xml.starts_with("<?xml") && xml.contains("type=\"a-h-A-W-M\"") && xml.contains("lat=\"39.5000000\""));
        assert!(xml.contains("start=\"2026-05-14T05:30:00.500Z\""), "{xml}");
    }

    #[test]
    fn stream_frames_are_magic_varint_message() {
        let n = vocab::Nation::parse("USA").unwrap();
        let ev = &track_events(n, &sample(), 1_778_736_601_000, 10.0)[0];
        let frame = ev.to_stream_frame();
        assert_eq!(frame[0], 0xBF);
        let mut rest = &frame[1..];
        let len = prost::encoding::decode_varint(&mut rest).unwrap() as usize;
        assert_eq!(len, rest.len());
        let m = <tak::TakMessage as prost::Message>::decode(rest).unwrap();
        let c = m.cot_event.unwrap();
        assert_eq!(
            (c.lat, c.lon, c.uid.as_str(), c.r#type.as_str()),
            (39.5, 131.25, "trilink.USA.track.7", TYPE_TRACK)
        );
    }

    #[test]
    fn text_is_escaped_in_xml() {
        let n = vocab::Nation::parse("USA").unwrap();
        let mut v = sample();
        v["phase"] = json!("<boost>&\"");
        let xml = track_events(n, &v, 0, 10.0)[0].to_xml();
        assert!(!xml.contains("<boost>") && xml.contains("&lt;BOOST&gt;&amp;&quot;"));
    }
}
