#!/usr/bin/env bash
# TAXII 2.1 throughput (docs/BENCHMARKS.md): a release trilink node (objects checked, logged
# durably and indexed) and medallion (the OASIS reference TAXII server, PyPI 3.0.0, memory
# backend: no checks, no durability), on loopback, each fed the same made-up indicators by
# bench/taxii_bench.py and read back page by page.
#
#   bash bench/taxii.sh                 # 2,000 objects, 100 per POST, pages of 100
#   OBJECTS=500 PER_POST=50 bash bench/taxii.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OBJECTS=${OBJECTS:-2000}
PER_POST=${PER_POST:-100}
PAGE=${PAGE:-100}
cargo build --release --locked -q
BIN=$PWD/target/release/trilink
if [ ! -x bench/venv/bin/python ]; then python3 -m venv bench/venv; fi
bench/venv/bin/python -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
DIR=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DIR"' EXIT
$BIN pki init --out "$DIR/pki" >/dev/null
{
  echo 'nation = "JPN"'; echo "data_dir = \"$DIR/jpn\""; echo "signing_key = \"$DIR/pki/node.key\""
  echo '[listen]'; echo 'http = "127.0.0.1:18092"'; echo 'grpc = "127.0.0.1:15092"'; echo 'plain = true'
  echo '[[analyst]]'; echo 'name = "bench"'; echo "token_sha256 = \"$(printf %s benchpass | sha256sum | cut -d' ' -f1)\""
} > "$DIR/jpn.toml"
$BIN node --config "$DIR/jpn.toml" --log warn &
cat > "$DIR/medallion.json" <<JSON
{"backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend", "filename": "$DIR/medallion-data.json"},
 "users": {"bench": "benchpass"}, "taxii": {"max_page_size": $PAGE}}
JSON
cat > "$DIR/medallion-data.json" <<JSON
{"/discovery": {"title": "medallion", "default": "http://127.0.0.1:15093/api1/", "api_roots": ["http://127.0.0.1:15093/api1/"]},
 "api1": {"information": {"title": "api1", "versions": ["application/taxii+json;version=2.1"], "max_content_length": 10485760},
          "status": [], "collections": [{"id": "6a1f0c52-7d2e-4b8a-9c3d-5e4f6a7b8c9d", "title": "bench", "can_read": true,
          "can_write": true, "media_types": ["application/stix+json;version=2.1"], "objects": [], "manifest": []}]}}
JSON
bench/venv/bin/medallion --host 127.0.0.1 --port 15093 --log-level ERROR "$DIR/medallion.json" 2>"$DIR/medallion.log" &
for url in http://127.0.0.1:18092/healthz http://127.0.0.1:15093/taxii2/; do
  for _ in $(seq 100); do curl -s -o /dev/null "$url" && break; sleep 0.1; done
done
run() { bench/venv/bin/python bench/taxii_bench.py "$@" "$OBJECTS" "$PER_POST" "$PAGE"; }
T=$(run trilink http://127.0.0.1:18092/taxii2/api/collections/shared/ bench benchpass)
M=$(run medallion http://127.0.0.1:15093/api1/collections/6a1f0c52-7d2e-4b8a-9c3d-5e4f6a7b8c9d/ bench benchpass)
python3 - "$T" "$M" <<'PY'
import json, sys
t, m = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"{t['objects']} objects, posted {int(__import__('os').environ.get('PER_POST', 100))} per request, read back in pages")
print("| server | ingested objects/s | served objects/s |")
print("|---|---|---|")
for r in (t, m):
    print(f"| {r['server']} | {r['ingest_per_s']:,.0f} | {r['serve_per_s']:,.0f} |")
print(f"ratio trilink/medallion: ingest {t['ingest_per_s']/m['ingest_per_s']:.1f}x, serve {t['serve_per_s']/m['serve_per_s']:.1f}x")
PY
