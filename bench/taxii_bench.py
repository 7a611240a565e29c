#!/usr/bin/env python3
"""TAXII 2.1 throughput: objects ingested and served per second by trilink's node and by
medallion (the OASIS reference server, PyPI 3.0.0, memory backend) on the same machine, driven
the same way (bench/taxii.sh starts both).

    taxii_bench.py NAME COLLECTION_URL USER PASSWORD OBJECTS PER_POST PAGE

Posts OBJECTS made-up indicators, PER_POST per request, and times it; then reads the whole
collection back, PAGE per request, following `next`, and times that. Prints one JSON line.
"""

import json
import sys
import time
import uuid

import requests

MEDIA = "application/taxii+json;version=2.1"


def indicator(i):
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid4()}",
        "created": "2026-11-03T00:00:00.000Z",
        "modified": "2026-11-03T00:00:00.000Z",
        "name": f"Made-up scanner {i}",
        "description": "MADE UP for the benchmark: a documentation address.",
        "indicator_types": ["malicious-activity"],
        "pattern": f"[ipv4-addr:value = '203.0.113.{i % 250}']",
        "pattern_type": "stix",
        "valid_from": "2026-11-03T00:00:00Z",
        "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"],
    }


def main():
    name, col, user, password, n, per_post, page = sys.argv[1:8]
    n, per_post, page = int(n), int(per_post), int(page)
    s = requests.Session()
    s.auth = (user, password)
    s.headers.update({"Accept": MEDIA})
    objects = [indicator(i) for i in range(n)]
    t0 = time.perf_counter()
    for i in range(0, n, per_post):
        r = s.post(f"{col}objects/", data=json.dumps({"objects": objects[i : i + per_post]}),
                   headers={"Content-Type": MEDIA})
        r.raise_for_status()
        st = r.json()
        assert st.get("success_count") == len(objects[i : i + per_post]), st
    ingest_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = 0
    params = {"limit": page}
    while True:
        r = s.get(f"{col}objects/", params=params)
        r.raise_for_status()
        body = r.json()
        got += len(body.get("objects", []))
        if body.get("more") and body.get("next"):
            params = {"limit": page, "next": body["next"]}
        else:
            break
    serve_s = time.perf_counter() - t0
    print(json.dumps({"server": name, "objects": n, "served": got, "ingest_per_s": n / ingest_s, "serve_per_s": got / serve_s}))


if __name__ == "__main__":
    main()
