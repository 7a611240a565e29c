use super::*;
use serde_json::json;

fn indicator(id: &str, modified: &str, marking: Option<&str>) -> Value {
    let mut v = json!({
        "type": "indicator", "spec_version": "2.1", "id": id,
        "created": "2026-11-01T00:00:00.000Z", "modified": modified,
        "name": "C2 server", "description": "made up",
        "pattern": "[ipv4-addr:value = '198.51.100.7'] OR [file:hashes.'SHA-256' = 'ABCD']",
        "pattern_type": "stix", "valid_from": "2026-11-01T00:00:00Z",
    });
    if let Some(m) = marking {
        v["object_marking_refs"] = json!([m]);
    }
    v
}

const ID: &str = "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f";
const AMBER: &str = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421";
const RED: &str = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1";

#[test]
fn good_objects_pass_and_say_their_tlp() {
    let m = check(&indicator(ID, "2026-11-01T00:00:00.000Z", Some(AMBER))).unwrap();
    assert_eq!((m.kind.as_str(), m.tlp), ("indicator", Some(Tlp::Amber)));
    let mut two = indicator(ID, "2026-11-01T00:00:00.000Z", Some(AMBER));
    two["object_marking_refs"] = json!([AMBER, RED]);
    assert_eq!(check(&two).unwrap().tlp, Some(Tlp::Red), "the most restrictive marking wins");
    assert_eq!(check(&indicator(ID, "2026-11-01T00:00:00.000Z", None)).unwrap().tlp, None);
}

#[test]
fn bad_objects_say_why() {
    let good = indicator(ID, "2026-11-01T00:00:00.000Z", None);
    let cases: Vec<(Value, &str)> = vec![
        (json!([1]), "must be a JSON object"),
        (json!({"type": "bundle", "id": "bundle--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"}), "post its objects"),
        (
            {
                let mut v = good.clone();
                v["type"] = json!("widget");
                v
            },
            "not a STIX 2.1 type",
        ),
        (
            {
                let mut v = good.clone();
                v["id"] = json!("indicator--123");
                v
            },
            "not an identifier",
        ),
        (
            {
                let mut v = good.clone();
                v["id"] = json!("malware--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f");
                v
            },
            "does not start with its type",
        ),
        (
            {
                let mut v = good.clone();
                v["spec_version"] = json!("2.0");
                v
            },
            "spec_version",
        ),
        (
            {
                let mut v = good.clone();
                v.as_object_mut().unwrap().remove("pattern");
                v
            },
            "`pattern` is required",
        ),
        (
            {
                let mut v = good.clone();
                v["modified"] = json!("2026-11-01T00:00:00Z");
                v
            },
            "millisecond",
        ),
        (
            {
                let mut v = good.clone();
                v["modified"] = json!("2025-11-01T00:00:00.000Z");
                v
            },
            "before `created`",
        ),
        (
            {
                let mut v = good.clone();
                v["valid_until"] = json!("2020-01-01T00:00:00Z");
                v
            },
            "valid_until",
        ),
        (
            {
                let mut v = good.clone();
                v["confidence"] = json!(101);
                v
            },
            "confidence",
        ),
        (
            {
                let mut v = good.clone();
                v["object_marking_refs"] = json!([]);
                v
            },
            "non-empty",
        ),
        (
            {
                let mut v = good.clone();
                v["x_Bad"] = json!(1);
                v
            },
            "custom property",
        ),
        (
            {
                let mut v = good.clone();
                v["pattern"] = json!("ipv4 = 1");
                v
            },
            "not a STIX pattern",
        ),
    ];
    for (v, want) in cases {
        let e = check(&v).unwrap_err();
        assert!(e.contains(want), "{want}: {e}");
    }
}

#[test]
fn tlp_decides_the_reach() {
    let usa = Nation::parse("USA").unwrap();
    let kor = Nation::parse("KOR").unwrap();
    let all = [usa, kor];
    assert!(releasable_to(Some(Tlp::Red), &[usa], &all).is_empty());
    assert!(releasable_to(Some(Tlp::AmberStrict), &[usa], &all).is_empty());
    assert!(releasable_to(None, &[usa], &all).is_empty());
    assert_eq!(releasable_to(Some(Tlp::Amber), &[usa], &all), vec![usa]);
    assert_eq!(releasable_to(Some(Tlp::Green), &[usa], &all), all.to_vec());
    assert_eq!(releasable_to(Some(Tlp::Clear), &[], &all), all.to_vec());
}

#[test]
fn pages_never_lose_or_repeat_objects_that_share_a_timestamp() {
    let jpn = Nation::parse("JPN").unwrap();
    let mut ix = Index::default();
    let t = UtcNanos::parse_rfc3339("2026-12-01T00:00:00Z").unwrap();
    // 25 objects posted in one instant, then a second version of one of them.
    for i in 0..25 {
        let id = format!("indicator--8e2e2d2b-17d4-4cbf-938f-{i:012}");
        let v = indicator(&id, "2026-11-01T00:00:00.000Z", None);
        assert!(ix.add(check(&v).unwrap(), v.to_string().into(), jpn, jpn, t));
    }
    let v = indicator("indicator--8e2e2d2b-17d4-4cbf-938f-000000000003", "2026-11-02T00:00:00.000Z", None);
    assert!(ix.add(check(&v).unwrap(), v.to_string().into(), jpn, jpn, t));
    assert!(!ix.add(check(&v).unwrap(), v.to_string().into(), jpn, jpn, t), "an exact duplicate is not added twice");
    let added: Vec<UtcNanos> = (0..ix.len()).map(|i| ix.entries[i].date_added).collect();
    assert!(added.windows(2).all(|w| w[0] < w[1]), "date_added strictly increases");
    for limit in [1, 2, 7, 25, 100] {
        let mut seen = Vec::new();
        let mut q = Query { limit, versions: Versions::All, ..Query::default() };
        loop {
            let page = ix.page(&q, |_| true);
            seen.extend(page.entries.iter().map(|e| (e.meta.id.clone(), e.meta.version.clone())));
            match page.next {
                Some(n) => q.after = Some(parse_next(&n).unwrap()),
                None => break,
            }
        }
        let mut uniq = seen.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!((seen.len(), uniq.len()), (26, 26), "limit {limit}");
    }
    // The latest version only by default; added_after is exclusive.
    let page = ix.page(&Query::default(), |_| true);
    assert_eq!(page.entries.len(), 25);
    let q = Query { added_after: Some(added[24]), versions: Versions::All, ..Query::default() };
    assert_eq!(ix.page(&q, |_| true).entries.len(), 1);
    let q = Query {
        versions: Versions::First,
        ids: vec!["indicator--8e2e2d2b-17d4-4cbf-938f-000000000003".into()],
        ..Query::default()
    };
    assert_eq!(ix.page(&q, |_| true).entries[0].meta.version, "2026-11-01T00:00:00.000Z");
    let q = Query { types: vec!["malware".into()], ..Query::default() };
    assert!(ix.page(&q, |_| true).entries.is_empty());
}

#[test]
fn observables_come_from_patterns_and_observables() {
    let v = indicator(ID, "2026-11-01T00:00:00.000Z", None);
    assert_eq!(
        observables(&v),
        vec![
            ("ipv4-addr:value".to_string(), "198.51.100.7".to_string()),
            ("file:hashes.'SHA-256'".to_string(), "abcd".to_string())
        ]
    );
    let sco = json!({"type": "ipv4-addr", "spec_version": "2.1", "id": "ipv4-addr--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", "value": "198.51.100.7"});
    assert_eq!(observables(&sco), vec![("ipv4-addr:value".to_string(), "198.51.100.7".to_string())]);
}

#[test]
fn taxii_times_have_microseconds() {
    let t = UtcNanos::parse_rfc3339("2026-12-01T01:02:03.123456789Z").unwrap();
    assert_eq!(taxii_time(t), "2026-12-01T01:02:03.123456Z");
}

#[test]
fn correlations_join_nations_on_observables_and_sightings() {
    let jpn = Nation::parse("JPN").unwrap();
    let usa = Nation::parse("USA").unwrap();
    let mut c = Correlations::default();
    c.add(jpn, &indicator(ID, "2026-11-01T00:00:00.000Z", None));
    assert!(c.across_nations().is_empty(), "one nation alone correlates with nothing");
    let other = "indicator--11111111-17d4-4cbf-938f-98ee46b3cd3f";
    c.add(usa, &indicator(other, "2026-11-01T00:00:00.000Z", None));
    c.add(
        usa,
        &json!({"type": "sighting", "id": "sighting--22222222-17d4-4cbf-938f-98ee46b3cd3f", "sighting_of_ref": ID}),
    );
    let keys: Vec<&str> = c.across_nations().iter().map(|(k, _)| *k).collect();
    assert!(keys.contains(&"ipv4-addr:value=198.51.100.7"), "{keys:?}");
    assert!(keys.contains(&format!("ref={ID}").as_str()), "{keys:?}");
}

#[test]
fn uuid_v4_sets_version_and_variant_and_keeps_the_rest() {
    assert_eq!(uuid_v4([0xff; 16]), "ffffffff-ffff-4fff-bfff-ffffffffffff");
    assert_eq!(uuid_v4([0; 16]), "00000000-0000-4000-8000-000000000000");
    assert_eq!(uuid_v4(*b"0123456789abcdef"), "30313233-3435-4637-b839-616263646566");
}

/// Everything a partner or a TAXII client can hand the checks about one object: the object
/// itself, its observables and what it adds to the correlations.
fn take(v: &Value) {
    let _ = check(v);
    let _ = observables(v);
    Correlations::default().add(Nation::parse("USA").unwrap(), v);
}

/// Any JSON value, nested a few levels, with keys that the checks look at among others.
fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::from),
        prop::sample::select(vec![ID, AMBER, RED, "2026-11-01T00:00:00.000Z", "indicator", "sighting", "ipv4-addr"])
            .prop_map(Value::from),
    ];
    let key = prop::sample::select(vec![
        "type",
        "id",
        "spec_version",
        "created",
        "modified",
        "pattern",
        "pattern_type",
        "valid_from",
        "valid_until",
        "object_marking_refs",
        "confidence",
        "value",
        "hashes",
        "sighting_of_ref",
        "x_custom",
    ]);
    leaf.prop_recursive(3, 40, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(key.clone(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

    /// Any JSON at all is refused or checked, never a panic.
    #[test]
    fn any_json_is_checked_without_panic(v in any_json()) {
        take(&v);
    }

    /// Any text as a pattern: the observables found are only `path = 'literal'` pairs from it.
    #[test]
    fn any_pattern_is_read_without_panic(pattern in "\\PC{0,120}|[\\[\\]':= a-z.-]{0,120}") {
        let mut v = indicator(ID, "2026-11-01T00:00:00.000Z", None);
        v["pattern"] = Value::from(pattern.clone());
        take(&v);
        for (path, val) in observables(&v) {
            proptest::prop_assert!(path.contains(':') && pattern.contains(&path), "{path} from {pattern:?}");
            proptest::prop_assert!(pattern.to_ascii_lowercase().contains(&val.to_ascii_lowercase()), "{val} from {pattern:?}");
        }
    }

    /// A good object's text changed at one character (replaced, or cut there), whether it
    /// still parses as JSON or not.
    #[test]
    fn a_changed_object_is_checked_without_panic(i in 0usize..400, c in proptest::char::any(), cut in proptest::prelude::any::<bool>()) {
        let text = indicator(ID, "2026-11-01T00:00:00.000Z", Some(AMBER)).to_string();
        let mut chars: Vec<char> = text.chars().collect();
        let k = i % chars.len();
        if cut { chars.truncate(k) } else { chars[k] = c }
        let changed: String = chars.into_iter().collect();
        if let Ok(v) = serde_json::from_str::<Value>(&changed) {
            take(&v);
        }
    }

    /// A TAXII `next` cursor a client made up, and any marking id.
    #[test]
    fn any_cursor_or_marking_is_refused_or_read(s in "\\PC{0,60}|[0-9.-]{0,30}") {
        let _ = parse_next(&s);
        let _ = Tlp::of_marking(&s);
    }
}

#[test]
fn only_an_objects_creator_may_version_it() {
    let (jpn, kor) = (Nation::parse("JPN").unwrap(), Nation::parse("KOR").unwrap());
    let ids: BTreeMap<String, Nation> = [
        ("identity--00000000-0000-4000-8000-00000000a001".to_string(), jpn),
        ("identity--00000000-0000-4000-8000-00000000a002".to_string(), kor),
    ]
    .into();
    let id = "indicator--8e2e2d2b-17d4-4cbf-938f-0000000000aa";
    let by = |who: Option<&str>, modified: &str| {
        let mut v = indicator(id, modified, None);
        if let Some(w) = who {
            v["created_by_ref"] = json!(w);
        }
        check(&v).unwrap()
    };
    let mut ix = Index::default();
    let t = UtcNanos::parse_rfc3339("2026-12-01T00:00:00Z").unwrap();
    // JPN creates it (its bound identity, posted at JPN).
    let first = by(Some("identity--00000000-0000-4000-8000-00000000a001"), "2026-11-01T00:00:00.000Z");
    assert_eq!(ix.creator(&first, jpn, &ids), Ok(jpn));
    // Nobody may publish in another's bound name.
    let err = ix.creator(&first, kor, &ids).unwrap_err();
    assert!(err.contains("only JPN may publish it, not KOR"), "{err}");
    ix.add(first, "{}".into(), jpn, jpn, t);
    // A newer version from KOR, under its own identity or none, is refused; JPN's is taken.
    for who in [Some("identity--00000000-0000-4000-8000-00000000a002"), None] {
        let err = ix.creator(&by(who, "2026-11-02T00:00:00.000Z"), kor, &ids).unwrap_err();
        assert!(err.contains("was created by JPN: only JPN may publish new versions"), "{err}");
    }
    assert_eq!(ix.creator(&by(None, "2026-11-02T00:00:00.000Z"), jpn, &ids), Ok(jpn));
    // An unbound creator is its publisher.
    let other =
        check(&indicator("indicator--8e2e2d2b-17d4-4cbf-938f-0000000000bb", "2026-11-01T00:00:00.000Z", None)).unwrap();
    assert_eq!(ix.creator(&other, kor, &ids), Ok(kor));
}

#[test]
fn granular_markings_keep_their_fields_from_those_who_may_not_read_them() {
    const RED: &str = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1";
    const GREEN: &str = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb";
    let mut v = indicator("indicator--8e2e2d2b-17d4-4cbf-938f-0000000000cc", "2026-11-01T00:00:00.000Z", Some(GREEN));
    v["description"] = json!("RED TEXT: the source's name");
    v["external_references"] =
        json!([{"source_name": "a", "url": "https://a.example"}, {"source_name": "b", "description": "RED TOO"}]);
    v["granular_markings"] = json!([
        {"marking_ref": RED, "selectors": ["description", "external_references.[1]"]},
        {"marking_ref": GREEN, "selectors": ["name"]},
    ]);
    assert_eq!(check(&v).unwrap().tlp, Some(Tlp::Green));
    let green_only = |t: Tlp| t <= Tlp::Green;
    match copy_for(&v, &green_only) {
        Copy::Redacted { object, removed } => {
            assert_eq!(removed, ["description", "external_references.[1]"]);
            let text = object.to_string();
            assert!(!text.contains("RED"), "{text}");
            assert_eq!(object["external_references"].as_array().unwrap().len(), 1);
            assert_eq!(object["granular_markings"].as_array().unwrap().len(), 1, "the GREEN marking stays");
            check(&object).unwrap();
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(copy_for(&v, &|_| true), Copy::Whole, "a nation that may read RED gets it all");
    // A required property under RED: the object is withheld rather than sent invalid.
    let mut p = v.clone();
    p["granular_markings"] = json!([{"marking_ref": RED, "selectors": ["pattern"]}]);
    assert!(matches!(copy_for(&p, &green_only), Copy::Withheld(why) if why.contains("pattern")));
    // A selector must name a property; markings are recognised in any letter case and by
    // their TLP 1.0 ids.
    let mut bad = v.clone();
    bad["granular_markings"] = json!([{"marking_ref": RED, "selectors": ["no_such_property"]}]);
    assert!(check(&bad).unwrap_err().contains("names no property"));
    assert_eq!(
        Tlp::of_marking(&RED.to_uppercase().replace("MARKING-DEFINITION", "marking-definition")),
        Some(Tlp::Red)
    );
    assert_eq!(Tlp::of_marking("marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"), Some(Tlp::Red));
}
