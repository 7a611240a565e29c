//! Cyber threat intelligence for the federation (docs/cti.md): the checks a STIX 2.1 object
//! must pass before a node keeps it (`check`), what its TLP 2.0 marking lets it reach
//! (`Tlp`, `releasable_to`), and the TAXII 2.1 view of a collection (`Index`: objects in
//! strictly increasing `date_added` order, the `match[...]`, `added_after`, `limit` and `next`
//! filters). Sans-IO: JSON in, decisions and pages out.

pub mod pattern;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use vocab::{Nation, UtcNanos};

/// TLP 2.0 marking definitions (OASIS cti-stix-common-objects, extension
/// `extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d`), and TLP 1.0 of the STIX 2.1
/// specification, which map onto the same rules (WHITE as CLEAR).
const TLP_IDS: [(&str, Tlp); 9] = [
    ("marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487", Tlp::Clear),
    ("marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb", Tlp::Green),
    ("marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421", Tlp::Amber),
    ("marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003", Tlp::AmberStrict),
    ("marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1", Tlp::Red),
    ("marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9", Tlp::Clear),
    ("marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", Tlp::Green),
    ("marking-definition--f88d31f6-486f-44da-b317-01333bde0b82", Tlp::Amber),
    ("marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed", Tlp::Red),
];

/// Traffic Light Protocol levels, least to most restrictive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tlp {
    Clear,
    Green,
    Amber,
    AmberStrict,
    Red,
}

impl Tlp {
    pub fn as_str(self) -> &'static str {
        match self {
            Tlp::Clear => "TLP:CLEAR",
            Tlp::Green => "TLP:GREEN",
            Tlp::Amber => "TLP:AMBER",
            Tlp::AmberStrict => "TLP:AMBER+STRICT",
            Tlp::Red => "TLP:RED",
        }
    }

    /// The TLP a marking-definition id stands for.
    pub fn of_marking(id: &str) -> Option<Tlp> {
        TLP_IDS.iter().find(|(i, _)| i.eq_ignore_ascii_case(id)).map(|(_, t)| *t)
    }
}

/// Who an object may reach beyond the posting nation, under the federation's rules: RED and
/// AMBER+STRICT never leave it; AMBER goes to the partners policy names for AMBER; GREEN and
/// CLEAR to every partner. An object without a TLP marking stays with the posting nation (the
/// poster did not say it may go).
pub fn releasable_to(tlp: Option<Tlp>, amber_partners: &[Nation], all_partners: &[Nation]) -> Vec<Nation> {
    match tlp {
        None | Some(Tlp::Red | Tlp::AmberStrict) => Vec::new(),
        Some(Tlp::Amber) => amber_partners.to_vec(),
        Some(Tlp::Green | Tlp::Clear) => all_partners.to_vec(),
    }
}

/// Properties the STIX 2.1 schemas type as non-empty lists of strings.
const STRING_LISTS: [&str; 17] = [
    "labels",
    "indicator_types",
    "malware_types",
    "infrastructure_types",
    "tool_types",
    "threat_actor_types",
    "report_types",
    "aliases",
    "roles",
    "sectors",
    "goals",
    "secondary_motivations",
    "personal_motivations",
    "capabilities",
    "architecture_execution_envs",
    "implementation_languages",
    "object_refs",
];

/// The schemas' shapes of the common list properties: lists of strings, external references
/// (each with a `source_name`) and kill chain phases (each a `kill_chain_name` and a
/// `phase_name`).
fn check_lists(o: &serde_json::Map<String, Value>) -> Result<(), String> {
    for k in STRING_LISTS {
        if let Some(v) = o.get(k) {
            let ok = v.as_array().is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_string));
            if !ok {
                return Err(format!("`{k}` must be a non-empty list of strings"));
            }
        }
    }
    if let Some(v) = o.get("external_references") {
        let list = v.as_array().ok_or("`external_references` must be a list")?;
        for r in list {
            let r = r.as_object().ok_or("an external reference must be an object")?;
            if !r.get("source_name").is_some_and(Value::is_string) {
                return Err("an external reference needs a `source_name`".into());
            }
        }
    }
    if let Some(v) = o.get("kill_chain_phases") {
        let list = v.as_array().ok_or("`kill_chain_phases` must be a list")?;
        for p in list {
            let p = p.as_object().ok_or("a kill chain phase must be an object {kill_chain_name, phase_name}")?;
            if !(p.get("kill_chain_name").is_some_and(Value::is_string)
                && p.get("phase_name").is_some_and(Value::is_string))
            {
                return Err("a kill chain phase needs `kill_chain_name` and `phase_name`".into());
            }
        }
    }
    Ok(())
}

/// Checks `granular_markings` (STIX 2.1, 7.2.3): a non-empty list of objects, each with a
/// `marking_ref` or a `lang` and a non-empty list of `selectors`, each of which must name a
/// property of the object.
fn check_granular(v: &Value) -> Result<(), String> {
    let Some(g) = v.get("granular_markings") else { return Ok(()) };
    let list = g.as_array().filter(|a| !a.is_empty()).ok_or("`granular_markings` must be a non-empty list")?;
    for m in list {
        let m = m.as_object().ok_or("a granular marking must be an object")?;
        match (m.get("marking_ref"), m.get("lang")) {
            (Some(r), None) => check_ref(r.as_str().ok_or("`marking_ref` must be an identifier")?, "marking_ref")?,
            (None, Some(l)) if l.is_string() => {}
            _ => return Err("a granular marking needs exactly one of `marking_ref` and `lang`".into()),
        }
        let selectors = m
            .get("selectors")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .ok_or("a granular marking needs a non-empty list of `selectors`")?;
        for sel in selectors {
            let sel = sel.as_str().ok_or("a selector must be a string")?;
            if select(v, sel).is_none() {
                return Err(format!("granular marking selector {sel:?} names no property of the object"));
            }
        }
    }
    Ok(())
}

/// The value a granular-marking selector names (`description`,
/// `external_references.[1].url`, `kill_chain_phases.[0]`).
fn select<'a>(v: &'a Value, selector: &str) -> Option<&'a Value> {
    let mut at = v;
    for step in selector.split('.') {
        at = match step.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(i) => at.as_array()?.get(i.parse::<usize>().ok()?)?,
            None => at.as_object()?.get(step)?,
        };
    }
    Some(at)
}

fn select_mut<'a>(v: &'a mut Value, selector: &str) -> Option<&'a mut Value> {
    let mut at = v;
    for step in selector.split('.') {
        at = match step.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(i) => at.as_array_mut()?.get_mut(i.parse::<usize>().ok()?)?,
            None => at.as_object_mut()?.get_mut(step)?,
        };
    }
    Some(at)
}

/// What a partner gets of an object: the whole of it, a copy without the properties granular
/// markings keep from it, or nothing when the copy would not be a valid object.
#[derive(Debug, Clone, PartialEq)]
pub enum Copy {
    Whole,
    Redacted { object: Value, removed: Vec<String> },
    Withheld(String),
}

/// The copy of a checked object `v` for a recipient that may receive what `may_receive`
/// allows: every property a granular TLP marking covers that the recipient may not receive is
/// removed (with the granular markings that named it); if what is left fails `check` (a
/// required property went), the object is withheld from that recipient.
pub fn copy_for(v: &Value, may_receive: &dyn Fn(Tlp) -> bool) -> Copy {
    let Some(list) = v.get("granular_markings").and_then(Value::as_array) else { return Copy::Whole };
    let mut removed: Vec<String> = Vec::new();
    for m in list {
        let tlp = m.get("marking_ref").and_then(Value::as_str).and_then(Tlp::of_marking);
        if tlp.is_some_and(|t| !may_receive(t)) {
            for sel in m.get("selectors").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
                if !removed.iter().any(|r| r == sel) {
                    removed.push(sel.to_string());
                }
            }
        }
    }
    if removed.is_empty() {
        return Copy::Whole;
    }
    // Mark, then sweep: list indices stay valid while every selector is marked.
    const GONE: &str = "\u{0}removed by a granular marking";
    let mut copy = v.clone();
    for sel in &removed {
        if let Some(at) = select_mut(&mut copy, sel) {
            *at = Value::String(GONE.into());
        }
    }
    fn sweep(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.retain(|_, x| x.as_str() != Some(GONE));
                m.values_mut().for_each(sweep);
            }
            Value::Array(a) => {
                a.retain(|x| x.as_str() != Some(GONE));
                a.iter_mut().for_each(sweep);
            }
            _ => {}
        }
    }
    sweep(&mut copy);
    // The granular markings of what went go with it; a selector of one that stays may now name
    // a shifted or missing property, which `check` catches.
    if let Some(Value::Array(ms)) = copy.get_mut("granular_markings") {
        ms.retain(|m| {
            let sels = m.get("selectors").and_then(Value::as_array);
            !sels.into_iter().flatten().filter_map(Value::as_str).any(|s| removed.iter().any(|r| r == s))
        });
        if ms.is_empty() {
            if let Some(o) = copy.as_object_mut() {
                o.remove("granular_markings");
            }
        }
    }
    match check(&copy) {
        Ok(_) => Copy::Redacted { object: copy, removed },
        Err(e) => Copy::Withheld(format!("without {} it is not a valid object: {e}", removed.join(", "))),
    }
}

/// What a checked object is.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    pub id: String,
    pub kind: String,
    /// Its version: `modified`, else `created`, else "" (cyber observables carry neither).
    pub version: String,
    /// The most restrictive TLP among its object markings (None: unmarked).
    pub tlp: Option<Tlp>,
    /// Its `created_by_ref`, if any.
    pub created_by: Option<String>,
}

/// Most bytes of one object's JSON.
pub const MAX_OBJECT_BYTES: usize = 256 * 1024;

const SDO_SRO: [&str; 21] = [
    "attack-pattern",
    "campaign",
    "course-of-action",
    "grouping",
    "identity",
    "incident",
    "indicator",
    "infrastructure",
    "intrusion-set",
    "location",
    "malware",
    "malware-analysis",
    "note",
    "observed-data",
    "opinion",
    "report",
    "threat-actor",
    "tool",
    "vulnerability",
    "relationship",
    "sighting",
];

const SCO: [&str; 18] = [
    "artifact",
    "autonomous-system",
    "directory",
    "domain-name",
    "email-addr",
    "email-message",
    "file",
    "ipv4-addr",
    "ipv6-addr",
    "mac-addr",
    "mutex",
    "network-traffic",
    "process",
    "software",
    "url",
    "user-account",
    "windows-registry-key",
    "x509-certificate",
];

/// Properties each type must have (STIX 2.1 §4–6, and `is_family` for malware, which the
/// OASIS JSON schema requires).
fn required(kind: &str) -> &'static [&'static str] {
    match kind {
        "attack-pattern" | "campaign" | "course-of-action" | "identity" | "intrusion-set" | "threat-actor" | "tool"
        | "vulnerability" | "infrastructure" | "incident" => &["name"],
        "indicator" => &["pattern", "pattern_type", "valid_from"],
        "malware" => &["is_family"],
        "relationship" => &["relationship_type", "source_ref", "target_ref"],
        "sighting" => &["sighting_of_ref"],
        "report" => &["name", "published", "object_refs"],
        "grouping" => &["context", "object_refs"],
        "note" => &["content", "object_refs"],
        "opinion" => &["opinion", "object_refs"],
        "observed-data" => &["first_observed", "last_observed", "number_observed"],
        "ipv4-addr" | "ipv6-addr" | "domain-name" | "url" | "mac-addr" | "email-addr" => &["value"],
        "mutex" => &["name"],
        _ => &[],
    }
}

fn str_field<'a>(o: &'a Map<String, Value>, k: &str) -> Result<&'a str, String> {
    match o.get(k) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(format!("`{k}` must be a string")),
        None => Err(format!("`{k}` is required")),
    }
}

/// A STIX timestamp: RFC 3339 UTC; `created`/`modified` need at least millisecond precision.
fn check_time(o: &Map<String, Value>, k: &str, millis: bool) -> Result<Option<UtcNanos>, String> {
    let Some(v) = o.get(k) else { return Ok(None) };
    let s = v.as_str().ok_or(format!("`{k}` must be a timestamp string"))?;
    let t = UtcNanos::parse_rfc3339(s).map_err(|e| format!("`{k}`: {e}"))?;
    if !s.ends_with('Z') {
        return Err(format!("`{k}` must be UTC, ending in Z"));
    }
    if millis && s.split_once('.').is_none_or(|(_, f)| f.len() < 4) {
        return Err(format!("`{k}` needs at least millisecond precision (e.g. 2026-05-14T05:27:00.000Z)"));
    }
    Ok(Some(t))
}

/// A UUID as the STIX 2.1 schemas' `identifier` pattern takes it: hex digits of either case,
/// version 1 to 5, the RFC 4122 variant.
fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter()
            .enumerate()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { *c == b'-' } else { c.is_ascii_hexdigit() })
        && (b'1'..=b'5').contains(&b[14])
        && matches!(b[19], b'8' | b'9' | b'a' | b'b' | b'A' | b'B')
}

/// An identifier `<type>--<uuid>` (of any type when `kind` is None).
fn check_ref(s: &str, what: &str) -> Result<(), String> {
    let Some((t, u)) = s.split_once("--") else {
        return Err(format!("`{what}` {s:?} is not an identifier <type>--<uuid>"));
    };
    if t.is_empty() || !t.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-') || !is_uuid(u) {
        return Err(format!("`{what}` {s:?} is not an identifier <type>--<uuid>"));
    }
    Ok(())
}

/// Checks one object as a node receives it and says what it is, or why it is refused.
pub fn check(v: &Value) -> Result<Meta, String> {
    let o = v.as_object().ok_or("a STIX object must be a JSON object")?;
    let kind = str_field(o, "type")?;
    if kind == "bundle" {
        return Err("a bundle is not an object: post its objects in a TAXII envelope".into());
    }
    let custom = kind.starts_with("x-");
    let known =
        SDO_SRO.contains(&kind) || SCO.contains(&kind) || kind == "marking-definition" || kind == "language-content";
    if !known && !custom {
        return Err(format!("type {kind:?} is not a STIX 2.1 type (custom types start with x-)"));
    }
    if kind.len() < 3 || kind.len() > 250 {
        return Err(format!("type {kind:?} must be 3 to 250 characters"));
    }
    let id = str_field(o, "id")?;
    check_ref(id, "id")?;
    if !id.starts_with(&format!("{kind}--")) {
        return Err(format!("id {id:?} does not start with its type {kind:?}"));
    }
    if str_field(o, "spec_version")? != "2.1" {
        return Err(format!("spec_version must be \"2.1\" (got {:?})", o["spec_version"]));
    }
    let is_sco = SCO.contains(&kind);
    let created = check_time(o, "created", true)?;
    let modified = check_time(o, "modified", true)?;
    if !is_sco {
        if created.is_none() {
            return Err("`created` is required".into());
        }
        if kind != "marking-definition" && modified.is_none() {
            return Err("`modified` is required".into());
        }
        if let (Some(c), Some(m)) = (created, modified) {
            if m < c {
                return Err("`modified` is before `created`".into());
            }
        }
    }
    for k in required(kind) {
        if !o.contains_key(*k) {
            return Err(format!("`{k}` is required for {kind}"));
        }
    }
    for k in ["valid_from", "valid_until", "first_seen", "last_seen", "first_observed", "last_observed", "published"] {
        check_time(o, k, false)?;
    }
    if let (Some(a), Some(b)) = (check_time(o, "valid_from", false)?, check_time(o, "valid_until", false)?) {
        if b <= a {
            return Err("`valid_until` must be after `valid_from`".into());
        }
    }
    if kind == "indicator" {
        let p = str_field(o, "pattern")?;
        if str_field(o, "pattern_type")? == "stix" {
            pattern::parse(p).map_err(|e| format!("pattern {p:?} is not a STIX pattern: {e}"))?;
        }
    }
    if kind == "malware" && !o["is_family"].is_boolean() {
        return Err("`is_family` must be true or false".into());
    }
    if let Some(c) = o.get("confidence") {
        if c.as_u64().is_none_or(|c| c > 100) {
            return Err("`confidence` must be an integer from 0 to 100".into());
        }
    }
    for k in ["source_ref", "target_ref", "sighting_of_ref", "created_by_ref"] {
        if let Some(r) = o.get(k) {
            check_ref(r.as_str().ok_or(format!("`{k}` must be an identifier"))?, k)?;
        }
    }
    let mut tlp = None;
    if let Some(refs) = o.get("object_marking_refs") {
        let refs = refs.as_array().filter(|a| !a.is_empty()).ok_or("`object_marking_refs` must be a non-empty list")?;
        for r in refs {
            let r = r.as_str().ok_or("`object_marking_refs` must hold identifiers")?;
            check_ref(r, "object_marking_refs")?;
            if !r.starts_with("marking-definition--") {
                return Err(format!("marking {r:?} is not a marking-definition"));
            }
            tlp = tlp.max(Tlp::of_marking(r));
        }
    }
    for (k, _) in o.iter().filter(|(k, _)| k.starts_with("x_")) {
        if k.len() < 3 || k.len() > 250 || !k.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        {
            return Err(format!("custom property {k:?} must be 3 to 250 of [a-z0-9_]"));
        }
    }
    check_granular(v)?;
    check_lists(o)?;
    let version =
        o.get("modified").or_else(|| o.get("created")).and_then(Value::as_str).map(str::to_string).unwrap_or_default();
    let created_by = o.get("created_by_ref").and_then(Value::as_str).map(str::to_string);
    Ok(Meta { id: id.to_string(), kind: kind.to_string(), version, tlp, created_by })
}

/// One version of one object in a collection.
#[derive(Debug, Clone)]
pub struct Entry {
    pub meta: Meta,
    /// When this node added it, unique and strictly increasing within the index.
    pub date_added: UtcNanos,
    /// The object as posted (the exact text).
    pub json: std::sync::Arc<str>,
    /// The nation that posted it.
    pub origin: Nation,
    /// The nation that created it (`Index::creator`): the only one that may version it.
    pub creator: Nation,
}

/// A version 4 UUID (RFC 9562) made of 16 random bytes: the version and variant bits are set,
/// the rest kept. For STIX and TAXII identifiers (`bundle--<uuid>`, status ids).
pub fn uuid_v4(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// TAXII's timestamp form: microseconds, UTC.
pub fn taxii_time(t: UtcNanos) -> String {
    let (y, mo, d, h, mi, s, ns) = t.to_civil();
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:06}Z", ns / 1000)
}

/// Which versions a `match[version]` asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Versions {
    Last,
    First,
    All,
    /// Exact `modified` (or `created`) timestamps.
    These(Vec<UtcNanos>),
}

/// A query of the objects or manifest endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub added_after: Option<UtcNanos>,
    pub ids: Vec<String>,
    pub types: Vec<String>,
    pub versions: Versions,
    /// Only the version "2.1" exists here; any other listed value matches nothing.
    pub spec_versions: Vec<String>,
    pub limit: usize,
    /// Position after which this page starts (from `next`).
    pub after: Option<(UtcNanos, usize)>,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            added_after: None,
            ids: Vec::new(),
            types: Vec::new(),
            versions: Versions::Last,
            spec_versions: Vec::new(),
            limit: usize::MAX,
            after: None,
        }
    }
}

/// A page: the entries, and the `next` cursor when there are more.
#[derive(Debug)]
pub struct Page<'a> {
    pub entries: Vec<&'a Entry>,
    pub next: Option<String>,
}

/// A collection's objects, every version, in `date_added` order.
#[derive(Debug, Default)]
pub struct Index {
    entries: Vec<Entry>,
    /// Object id → positions of its versions in `entries`.
    by_id: BTreeMap<String, Vec<usize>>,
    last_added: Option<UtcNanos>,
}

impl Index {
    /// Adds one version; a version already held is not added again (returns false). Its
    /// `date_added` is `now`, or a microsecond after the last one, so no two share one.
    /// Who created `meta`, published by `origin`, if `origin` may publish it: the nation its
    /// `created_by_ref` is bound to in `identities` (a STIX identity id → nation; it must be
    /// `origin`), else `origin` itself; and that nation must be the creator of the versions of
    /// the object already held. STIX 2.1 (3.6): only an object's creator may version it. A
    /// refusal says why, for the TAXII status and the log.
    pub fn creator(
        &self,
        meta: &Meta,
        origin: Nation,
        identities: &BTreeMap<String, Nation>,
    ) -> Result<Nation, String> {
        let bound = meta.created_by.as_deref().and_then(|r| identities.get(&r.to_ascii_lowercase()).map(|n| (r, *n)));
        let creator = match bound {
            Some((r, n)) if n != origin => {
                return Err(format!(
                    "{} names its creator {r}, {n}'s identity: only {n} may publish it, not {origin}",
                    meta.id
                ))
            }
            Some((_, n)) => n,
            None => origin,
        };
        if let Some(first) = self.by_id.get(&meta.id).and_then(|v| v.first()).map(|&i| &self.entries[i]) {
            if first.creator != creator {
                return Err(format!(
                    "{} was created by {}: only {} may publish new versions of it (this one is {creator}'s)",
                    meta.id, first.creator, first.creator
                ));
            }
        }
        Ok(creator)
    }

    pub fn add(
        &mut self,
        meta: Meta,
        json: std::sync::Arc<str>,
        origin: Nation,
        creator: Nation,
        now: UtcNanos,
    ) -> bool {
        if let Some(v) = self.by_id.get(&meta.id) {
            if v.iter().any(|&i| self.entries[i].meta.version == meta.version) {
                return false;
            }
        }
        // Microsecond resolution, as TAXII timestamps carry.
        let now = UtcNanos::from_nanos(now.as_nanos() - now.as_nanos().rem_euclid(1000));
        let date_added = match self.last_added {
            Some(l) if now <= l => l.add_secs_f64(1e-6),
            _ => now,
        };
        self.last_added = Some(date_added);
        self.by_id.entry(meta.id.clone()).or_default().push(self.entries.len());
        self.entries.push(Entry { meta, date_added, json, origin, creator });
        true
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every version of one object, oldest first.
    pub fn versions(&self, id: &str) -> Vec<&Entry> {
        let mut v: Vec<&Entry> =
            self.by_id.get(id).map(|v| v.iter().map(|&i| &self.entries[i]).collect()).unwrap_or_default();
        v.sort_by(|a, b| a.meta.version.cmp(&b.meta.version));
        v
    }

    /// Whether the entry at `i` is wanted by the version filter.
    fn version_wanted(&self, i: usize, versions: &Versions) -> bool {
        let e = &self.entries[i];
        match versions {
            Versions::All => true,
            Versions::These(ts) => UtcNanos::parse_rfc3339(&e.meta.version).is_ok_and(|v| ts.contains(&v)),
            Versions::Last | Versions::First => {
                let all = self.versions(&e.meta.id);
                let pick = if *versions == Versions::Last { all.last() } else { all.first() };
                pick.is_some_and(|p| std::ptr::eq(*p, e))
            }
        }
    }

    /// One page of what a query asks for, in `date_added` order. `visible` says which entries
    /// the asking analyst may see (others are left out, as TAXII allows).
    pub fn page(&self, q: &Query, visible: impl Fn(&Entry) -> bool) -> Page<'_> {
        let start = match q.after {
            // The cursor names the position and its date_added: entries never move, so the
            // next page starts right after it, however many share a timestamp.
            Some((t, pos)) if self.entries.get(pos).is_some_and(|e| e.date_added == t) => pos + 1,
            Some((t, _)) => self.entries.partition_point(|e| e.date_added <= t),
            None => 0,
        };
        let start = match q.added_after {
            Some(a) => start.max(self.entries.partition_point(|e| e.date_added <= a)),
            None => start,
        };
        let mut entries: Vec<&Entry> = Vec::new();
        let mut last_pos = 0;
        let mut next = None;
        for i in start..self.entries.len() {
            let e = &self.entries[i];
            let wanted = (q.ids.is_empty() || q.ids.contains(&e.meta.id))
                && (q.types.is_empty() || q.types.contains(&e.meta.kind))
                && (q.spec_versions.is_empty() || q.spec_versions.iter().any(|s| s == "2.1"))
                && visible(e)
                && self.version_wanted(i, &q.versions);
            if !wanted {
                continue;
            }
            if entries.len() == q.limit {
                next = Some(format!("{}.{last_pos}", self.entries[last_pos].date_added.as_nanos()));
                break;
            }
            entries.push(e);
            last_pos = i;
        }
        Page { entries, next }
    }
}

/// Reads a `next` cursor this index made.
pub fn parse_next(s: &str) -> Result<(UtcNanos, usize), String> {
    let (t, p) = s.split_once('.').ok_or("`next` is not a cursor this server made")?;
    let t: i64 = t.parse().map_err(|_| "`next` is not a cursor this server made")?;
    let p: usize = p.parse().map_err(|_| "`next` is not a cursor this server made")?;
    Ok((UtcNanos::from_nanos(t), p))
}

/// Observables an object names, for correlation across nations: (`type`, `value`) pairs from
/// the equality comparisons of a STIX pattern (`[ipv4-addr:value = '198.51.100.7']`,
/// `[file:hashes.'SHA-256' = '…']`) and from cyber observables' `value`.
pub fn observables(v: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(o) = v.as_object() else { return out };
    let kind = o.get("type").and_then(Value::as_str).unwrap_or("");
    if SCO.contains(&kind) {
        if let Some(val) = o.get("value").and_then(Value::as_str) {
            out.push((format!("{kind}:value"), val.to_string()));
        }
        if let Some(h) = o.get("hashes").and_then(Value::as_object) {
            for (alg, val) in h {
                if let Some(val) = val.as_str() {
                    out.push((format!("{kind}:hashes.'{alg}'"), val.to_ascii_lowercase()));
                }
            }
        }
    }
    if kind == "indicator" {
        if let Some(p) = o.get("pattern").and_then(Value::as_str) {
            // Each `path = 'literal'` comparison.
            let mut rest = p;
            while let Some(eq) = rest.find(" = '") {
                let path = rest[..eq].rsplit(['[', ' ', '(']).next().unwrap_or("").trim();
                let after = &rest[eq + 4..];
                let Some(end) = after.find('\'') else { break };
                let val = &after[..end];
                let val = if path.contains("hashes") { val.to_ascii_lowercase() } else { val.to_string() };
                if path.contains(':') {
                    out.push((path.to_string(), val));
                }
                rest = &after[end + 1..];
            }
        }
    }
    out
}

/// An object in a correlation: its origin, id and type.
pub type Named = (Nation, String, String);

/// Correlation across nations: which held objects of different origins name the same
/// observable, or refer to the same object (a sighting of another nation's indicator).
#[derive(Debug, Default)]
pub struct Correlations {
    /// Key (`ipv4-addr:value=198.51.100.7`, `ref=indicator--…`) → (origin, object id, type).
    by_key: BTreeMap<String, std::collections::BTreeSet<Named>>,
}

impl Correlations {
    /// Notes what an object (posted by `origin`) names.
    pub fn add(&mut self, origin: Nation, v: &Value) {
        let Some(o) = v.as_object() else { return };
        let (Some(id), Some(kind)) = (o.get("id").and_then(Value::as_str), o.get("type").and_then(Value::as_str))
        else {
            return;
        };
        let mut keys: Vec<String> = observables(v).into_iter().map(|(p, val)| format!("{p}={val}")).collect();
        if kind == "indicator" {
            keys.push(format!("ref={id}"));
        }
        if let Some(r) = o.get("sighting_of_ref").and_then(Value::as_str) {
            keys.push(format!("ref={r}"));
        }
        for k in keys {
            self.by_key.entry(k).or_default().insert((origin, id.to_string(), kind.to_string()));
        }
    }

    /// Keys named by objects of at least two origins, with those objects.
    pub fn across_nations(&self) -> Vec<(&str, Vec<&Named>)> {
        self.by_key
            .iter()
            .filter(|(_, objs)| {
                let mut origins = objs.iter().map(|(n, _, _)| *n);
                let first = origins.next();
                origins.any(|n| Some(n) != first)
            })
            .map(|(k, objs)| (k.as_str(), objs.iter().collect()))
            .collect()
    }
}

#[cfg(test)]
mod tests;
