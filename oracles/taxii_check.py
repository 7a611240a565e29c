#!/usr/bin/env python3
"""Drives a live node's TAXII 2.1 server with the OASIS taxii2-client and checks everything it
serves with the OASIS stix2-validator (--strict). Run by crates/trilink/tests/it/taxii_e2e.rs.

    taxii_check.py BASE_URL ANALYST TOKEN BUNDLE.json

Posts the bundle's objects, then 250 more in one request (so they share the request time),
re-posts duplicates, posts a bad object; reads everything back in pages with `next`, with
`added_after`, with match filters; reads one object, its versions and the manifest; checks the
media type, the X-TAXII-Date-Added headers, 401/406/415; and validates every served object.
Prints one line per check; exits 1 at the first failure.
"""

import json
import sys
import uuid

import requests
from stix2validator import ValidationOptions, validate_instance
from taxii2client.v21 import Server, as_pages

MEDIA = "application/taxii+json;version=2.1"


def check(ok, what):
    if not ok:
        print(f"FAILED: {what}", flush=True)
        sys.exit(1)
    print(f"ok: {what}", flush=True)


def made_up_indicators(n):
    """n indicators for documentation addresses (made up), each valid under --strict."""
    out = []
    for i in range(n):
        out.append(
            {
                "type": "indicator",
                "spec_version": "2.1",
                "id": f"indicator--{uuid.uuid4()}",
                "created": "2026-11-03T00:00:00.000Z",
                "modified": "2026-11-03T00:00:00.000Z",
                "name": f"Made-up scanner {i}",
                "description": "MADE UP for the test: a documentation address.",
                "indicator_types": ["malicious-activity"],
                "pattern": f"[ipv4-addr:value = '203.0.113.{i % 250}']",
                "pattern_type": "stix",
                "valid_from": "2026-11-03T00:00:00Z",
                "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"],
            }
        )
    return out


def main():
    base, analyst, token, bundle_path = sys.argv[1:5]
    bundle = json.load(open(bundle_path))
    server = Server(f"{base}/taxii2/", user=analyst, password=token)
    check(server.title.startswith("trilink"), f"discovery: {server.title}")
    root = server.default
    check(MEDIA in root.versions and root.max_content_length > 0, f"api root {root.title}: versions {root.versions}")
    cols = root.collections
    check(len(cols) == 1 and cols[0].can_read and cols[0].can_write, f"collections: {[c.title for c in cols]}")
    col = cols[0]

    st = col.add_objects({"objects": bundle["objects"]}, wait_for_completion=True, timeout=30)
    n = len(bundle["objects"])
    check(st.status == "complete" and st.success_count == n and st.failure_count == 0, f"POST the demo bundle: {st.success_count}/{n} kept")
    again = col.add_objects({"objects": bundle["objects"][:3]}, wait_for_completion=True, timeout=30)
    check(again.failure_count == 0 and again.success_count == 3, "re-posting held objects is not an error")
    many = made_up_indicators(250)
    st = col.add_objects({"objects": many}, wait_for_completion=True, timeout=60)
    check(st.success_count == 250 and st.failure_count == 0, "POST 250 objects in one request")
    bad = dict(many[0], id=f"indicator--{uuid.uuid4()}")
    del bad["pattern"]
    st = col.add_objects({"objects": [bad]}, wait_for_completion=True, timeout=30)
    check(st.failure_count == 1 and "pattern" in json.dumps(st.failures), f"a bad object is refused with the reason: {st.failures}")
    got = root.get_status(st.id)
    check(got.id == st.id and got.failure_count == 1, "the status resource can be read back")

    total = n + 250
    seen = []
    pages = 0
    for env in as_pages(col.get_objects, per_request=40):
        pages += 1
        seen.extend(o["id"] for o in env.get("objects", []))
    check(len(seen) == total and len(set(seen)) == total, f"paged read: {len(seen)} objects in {pages} pages, none lost or repeated")

    s = requests.Session()
    s.auth = (analyst, token)
    s.headers["Accept"] = MEDIA
    url = f"{col.url}objects/"
    r = s.get(url, params={"limit": 10})
    check(r.status_code == 200 and r.headers["Content-Type"] == MEDIA, f"media type {r.headers['Content-Type']}")
    body = r.json()
    check(body["more"] is True and body.get("next"), "a partial page says more and gives next")
    last = r.headers["X-TAXII-Date-Added-Last"]
    check(r.headers.get("X-TAXII-Date-Added-First") and last, f"X-TAXII-Date-Added-First/Last ({last})")
    rest = []
    for env in as_pages(col.get_objects, per_request=100, added_after=last):
        rest.extend(o["id"] for o in env.get("objects", []))
    check(len(rest) == total - 10 and not set(rest) & set(o["id"] for o in body["objects"]), "added_after is exclusive and loses nothing")
    follow = s.get(url, params={"limit": 10, "next": body["next"]}).json()
    check(len(follow["objects"]) == 10 and follow["objects"][0]["id"] == seen[10], "next continues where the page stopped")
    ind = col.get_objects(type="indicator")
    check(all(o["type"] == "indicator" for o in ind["objects"]) and len(ind["objects"]) == 253, "match[type]")
    one = col.get_object("intrusion-set--c93fccb1-e8e8-42cf-ae33-2ad1d183913a")
    check(one["objects"][0]["name"] == "Lazarus Group", "one object by id")
    vs = col.object_versions("intrusion-set--c93fccb1-e8e8-42cf-ae33-2ad1d183913a")
    check(vs["versions"] == ["2026-11-01T00:00:00.000Z"], f"its versions: {vs['versions']}")
    man = col.get_manifest(limit=5)
    check(len(man["objects"]) == 5 and all("date_added" in m and "version" in m for m in man["objects"]), "manifest")

    r = requests.get(url, auth=(analyst, token), headers={"Accept": "application/json"})
    check(r.status_code == 406 and r.headers["Content-Type"] == MEDIA, "406 for a wrong Accept, as a TAXII error")
    r = requests.get(url, headers={"Accept": MEDIA})
    check(r.status_code == 401 and "WWW-Authenticate" in r.headers, "401 with WWW-Authenticate without credentials")
    r = requests.get(url, auth=(analyst, "wrong"), headers={"Accept": MEDIA})
    check(r.status_code == 401, "401 for a wrong token")
    r = requests.post(url, auth=(analyst, token), headers={"Accept": MEDIA, "Content-Type": "application/json"}, data="{}")
    check(r.status_code == 415, "415 for a wrong Content-Type")
    r = s.get(url, params={"limit": "0"})
    check(r.status_code == 400, "400 for a malformed parameter")

    served = []
    for env in as_pages(col.get_objects, per_request=100):
        served.extend(env.get("objects", []))
    result = validate_instance(
        {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": served},
        ValidationOptions(version="2.1", strict=True),
    )
    errors = [str(e) for e in result.errors]
    check(result.is_valid, f"stix2-validator --strict passes all {len(served)} served objects {errors[:3]}")


if __name__ == "__main__":
    main()
