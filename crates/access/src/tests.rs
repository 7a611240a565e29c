use super::*;

fn user(name: &str, roles: &[Role]) -> Principal {
    Principal { name: name.into(), roles: Roles::of(roles) }
}

#[test]
fn a_duty_officer_is_a_viewer_and_nothing_else() {
    let r = Roles::of(&[Role::DutyOfficer]);
    assert!(r.has(Role::Viewer) && r.has(Role::DutyOfficer));
    assert!(!r.has(Role::Admin) && !r.has(Role::Auditor) && !r.has(Role::Analyst) && !r.has(Role::Sensor));
    assert!(Need::AnyOf(&[Role::Viewer]).allows(r));
    assert!(!Need::AnyOf(&[Role::Admin]).allows(r));
    assert!(!Need::AnyOf(&[]).allows(Roles::of(&Role::ALL)));
    assert_eq!(Role::parse("duty_officer"), Ok(Role::DutyOfficer));
    assert!(Role::parse("root").unwrap_err().contains("viewer, duty_officer"));
}

#[test]
fn credentials_are_found_by_bearer_or_basic_and_never_by_an_empty_token() {
    let mut d = Directory::default();
    d.add(pki::token_hash("s3cret"), user("ana", &[Role::Analyst])).unwrap();
    assert!(d.add(pki::token_hash("s3cret"), user("bob", &[Role::Viewer])).unwrap_err().contains("also \"ana\"'s"));
    assert_eq!(d.by_authorization("Bearer s3cret").map(|p| p.name.as_str()), Some("ana"));
    assert_eq!(d.by_authorization("bearer  s3cret ").map(|p| p.name.as_str()), Some("ana"));
    // Basic ana:s3cret, and a Basic with the right token under another name.
    assert_eq!(d.by_authorization("Basic YW5hOnMzY3JldA==").map(|p| p.name.as_str()), Some("ana"));
    assert_eq!(d.by_authorization("Basic Ym9iOnMzY3JldA=="), None);
    assert_eq!(d.by_authorization("Basic !!!"), None);
    assert_eq!(d.by_authorization("Bearer "), None);
    assert_eq!(d.by_authorization("Bearer wrong"), None);
    assert_eq!(d.by_authorization("Digest s3cret"), None);
    assert_eq!(d.with_role(Role::Analyst).len(), 1);
}

#[test]
fn sessions_expire_are_bounded_and_hold_no_cookie_value() {
    let mut s = Sessions::default();
    let t0 = Instant::now();
    let v = s.open(user("duty", &[Role::DutyOfficer]), [7; 32], t0);
    assert_eq!(v.len(), 64);
    assert!(!format!("{s:?}").contains(&v), "the table keeps only the cookie's hash");
    assert_eq!(s.get(&v, t0 + Duration::from_secs(60)).map(|x| x.principal.name.as_str()), Some("duty"));
    assert!(s.get(&v, t0 + SESSION_TTL).is_none(), "expired");
    assert!(s.is_empty(), "an expired session is dropped when seen");
    for i in 0..MAX_SESSIONS + 10 {
        let mut secret = [0u8; 32];
        secret[..8].copy_from_slice(&(i as u64).to_le_bytes());
        s.open(user("u", &[Role::Viewer]), secret, t0 + Duration::from_millis(i as u64));
    }
    assert_eq!(s.len(), MAX_SESSIONS);
    let v = s.open(user("x", &[Role::Viewer]), [9; 32], t0);
    s.close(&v);
    assert!(s.get(&v, t0).is_none());
    assert_eq!(session_cookie("a=b; trilink_session=abc ; c=d"), Some("abc"));
    assert_eq!(session_cookie("trilink_session="), None);
    assert_eq!(session_cookie("xtrilink_session=abc"), None);
}

#[test]
fn hosts_are_the_nodes_names_or_address_literals_and_origins_must_match_them() {
    let n = Names::new(&["Trilink.JPN.example".into()]);
    for ok in [
        "127.0.0.1:8082",
        "10.1.2.3",
        "[::1]:8082",
        "localhost:8082",
        "trilink.jpn.example",
        "trilink.jpn.example.:443",
    ] {
        assert!(n.host_allowed(ok), "{ok}");
    }
    for bad in ["evil.example", "evil.example:8082", "127.0.0.1.evil.example", "[nope]:1", "", "localhost.evil.example"]
    {
        assert!(!n.host_allowed(bad), "{bad}");
    }
    assert!(n.same_origin("https://127.0.0.1:8082", "127.0.0.1:8082", true));
    assert!(!n.same_origin("http://127.0.0.1:8082", "127.0.0.1:8082", true), "scheme");
    assert!(!n.same_origin("https://evil.example", "127.0.0.1:8082", true));
    assert!(!n.same_origin("https://evil.example:8082", "evil.example:8082", true), "host not ours");
    assert!(!n.same_origin("null", "127.0.0.1:8082", false));
}

#[test]
fn refusals_are_all_counted_but_logged_at_most_twenty_a_second() {
    let r = Refusals::default();
    let t0 = Instant::now() + Duration::from_secs(2);
    let logged = (0..100).filter(|_| r.count(Refusal::Unauthenticated, t0).is_some()).count();
    assert_eq!(logged, LOG_PER_SECOND as usize);
    assert_eq!(r.get(Refusal::Unauthenticated), 100);
    assert_eq!(
        r.count(Refusal::Forbidden, t0 + Duration::from_secs(1)),
        Some(80),
        "the next line says how many went unlogged"
    );
    let mut text = String::new();
    r.render(&mut text);
    assert!(text.contains("trilink_access_refused_total{reason=\"unauthenticated\"} 100"), "{text}");
}

#[test]
fn rate_limit_allows_a_burst_then_one_per_period() {
    let mut l = RateLimit::new(Duration::from_secs(10), 2);
    let t0 = Instant::now();
    assert!(l.take("a", t0).is_ok() && l.take("a", t0).is_ok());
    let wait = l.take("a", t0).unwrap_err();
    assert!(wait > Duration::from_secs(9), "{wait:?}");
    assert!(l.take("b", t0).is_ok(), "another credential has its own bucket");
    assert!(l.take("a", t0 + Duration::from_secs(10)).is_ok());
}

#[test]
fn places_are_shared_per_source_and_in_all_and_given_back() {
    let places = Places::new(3, 2);
    let (a, b) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
    let a1 = places.take(a).expect("first from a");
    let a2 = places.take(a).expect("second from a");
    assert!(places.take(a).is_none(), "a third from one source waits for none: refused");
    let b1 = places.take(b).expect("another source is unaffected");
    assert!(places.take(b).is_none(), "the total is reached");
    drop(a1);
    let b2 = places.take(b).expect("a place given back is taken again");
    drop((a2, b1, b2));
    assert_eq!(places.held(), (0, 0), "every place came back");
}
