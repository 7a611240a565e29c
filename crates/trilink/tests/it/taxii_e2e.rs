//! The node's TAXII 2.1 server checked by the OASIS tools (oracles/taxii_check.py): the
//! taxii2-client does discovery, collections, POST with status, paged reads with `next` and
//! `added_after` over more objects than a page, match filters, one object, its versions and the
//! manifest; stix2-validator --strict passes every object served. Then the objects survive a
//! restart: the node rebuilds its collection from the log. All over HTTPS.

use crate::harness::*;
use std::process::Command;

#[test]
fn taxii2_client_and_stix2_validator_accept_the_node() {
    let Some(python) = std::env::var_os("TRILINK_PYTHON") else {
        eprintln!("skipped: TRILINK_PYTHON is not set (.ci/run sets it)");
        return;
    };
    // Over HTTPS, as TAXII 2.1 requires: the clients trust the node's CA.
    let mut node = Node::new_tls("");
    let ca = node.dir.join("pki/jpn/ca.crt");
    let run = |node: &Node| {
        Command::new(&python)
            .arg(repo().join("oracles/taxii_check.py"))
            .arg(format!("https://{}", node.http))
            .env("REQUESTS_CA_BUNDLE", &ca)
            .args(["jpn-analyst", "demo-jpn-analyst"])
            .arg(repo().join("cti/lazarus-demo.json"))
            .output()
            .expect("run taxii_check.py")
    };
    let out = run(&node);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}\n{}", String::from_utf8_lossy(&out.stderr), node.log_text());
    assert!(text.contains("stix2-validator --strict passes all 264 served objects"), "{text}");

    // `trilink cti export` reads the whole collection into a bundle stix2-validator passes;
    // `trilink cti import` posts a bundle (held objects count as kept); a bad file exits 2.
    let url = format!("https://{}", node.http);
    let bundle = node.dir.join("export.json");
    let out = trilink()
        .args(["cti", "export", "--node", &url, "--analyst", "jpn-analyst", "--ca"])
        .arg(&ca)
        .arg("--out")
        .arg(&bundle)
        .env("TRILINK_ANALYST_TOKEN", "demo-jpn-analyst")
        .output()
        .expect("cti export");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("264 objects exported"));
    let validator = std::path::Path::new(&python).with_file_name("stix2_validator");
    let v = Command::new(validator).arg("--strict").arg(&bundle).output().expect("stix2_validator");
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    let import = |file: &std::path::Path, token: &str| {
        trilink()
            .args(["cti", "import"])
            .arg(file)
            .args(["--node", &url, "--analyst", "jpn-analyst", "--ca"])
            .arg(&ca)
            .env("TRILINK_ANALYST_TOKEN", token)
            .output()
            .expect("cti import")
    };
    let out = import(&repo().join("cti/lazarus-demo.json"), "demo-jpn-analyst");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("14 objects kept, 0 refused"));
    let bad = node.dir.join("bad.json");
    std::fs::write(&bad, "{\"type\": \"bundle\"").expect("write");
    assert_eq!(import(&bad, "demo-jpn-analyst").status.code(), Some(2));
    assert_eq!(import(&repo().join("cti/lazarus-demo.json"), "wrong").status.code(), Some(1));

    // After a restart the collection is rebuilt from the log: the same objects, by id.
    let headers = [("Accept", "application/taxii+json;version=2.1"), ("Authorization", "Bearer demo-jpn-analyst")];
    let count = |node: &Node| {
        let mut n = 0;
        let mut next: Option<String> = None;
        loop {
            let path = match &next {
                Some(c) => format!("/taxii2/api/collections/shared/objects/?limit=1000&next={c}"),
                None => "/taxii2/api/collections/shared/objects/?limit=1000".to_string(),
            };
            let (status, body) = request(node.http, "GET", &path, &headers, b"").expect("GET");
            assert_eq!(status, 200, "{body}");
            let v: serde_json::Value = serde_json::from_str(&body).expect("json");
            n += v["objects"].as_array().map_or(0, Vec::len);
            match v["next"].as_str() {
                Some(c) => next = Some(c.to_string()),
                None => return n,
            }
        }
    };
    assert_eq!(count(&node), 264);
    assert!(node.stop(), "{}", node.log_text());
    node.start();
    assert_eq!(count(&node), 264, "the collection after a restart");
    let audit = audit(&node.log_dir());
    assert!(audit.status.success(), "{}", String::from_utf8_lossy(&audit.stdout));
}
