#!/usr/bin/env bash
# The cost of TLS on the API (docs/BENCHMARKS.md, "Ingest over TLS"): durable ingest at
# saturation and acknowledgement latency at a steady 10,000 measurements/s, the same release
# node loaded over gRPC with TLS and without (`listen.plain`, loopback), alternating, in one
# run. Sensors authenticate by token in both (there is no unauthenticated ingest to compare).
#
#   bash bench/tls.sh           # three rounds of each
#   ROUNDS=5 bash bench/tls.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
cargo build --release --locked -q
BIN=${BIN:-$PWD/target/release/trilink}
DIR=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$DIR"' EXIT
$BIN pki init --nations JPN --out "$DIR/pki" >/dev/null
. bench/lib.sh
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
config() { # tls|plain
  echo 'nation = "JPN"'; echo "data_dir = \"$DIR/log\""; echo "signing_key = \"$DIR/pki/jpn/node.key\""
  echo '[listen]'; echo 'http = "127.0.0.1:18082"'; echo 'grpc = "127.0.0.1:15062"'
  if [ "$1" = tls ]; then
    echo "tls_cert = \"$DIR/pki/jpn/api.crt\""; echo "tls_key = \"$DIR/pki/jpn/api.key\""
  else
    echo 'plain = true'
  fi
  for s in KOR-GP-1:KOR JPN-FPS5-SADO:JPN JPN-DDG-SOJ:JPN USA-TPY2-SHARIKI:USA KOR-GP-2:KOR; do
    id=${s%%:*}; nation=${s##*:}; lower=$(echo "$id" | tr 'A-Z' 'a-z')
    echo '[[sensor]]'; echo "id = \"$id\""; echo "nation = \"$nation\""; echo "token_sha256 = \"$(sha "bench-$lower")\""
  done
  echo "[[area]]"; echo "file = \"$PWD/config/areas/japan.geojson\""
  bench_user
}
config tls > "$DIR/tls.toml"
config plain > "$DIR/plain.toml"

run() { # tls|plain  saturation|steady
  rm -rf "$DIR/log"
  $BIN node --config "$DIR/$1.toml" --log warn 2>"$DIR/node.log" &
  local node=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/18082) 2>/dev/null && break; sleep 0.1; done
  sleep 0.5
  local url=http://127.0.0.1:15062 ca=()
  if [ "$1" = tls ]; then url=https://127.0.0.1:15062; ca=(--ca "$DIR/pki/jpn/ca.crt"); fi
  if [ "$2" = saturation ]; then
    $BIN bench ingest --grpc "$url" "${ca[@]}" --objects 2000 --rate 200000 --batch 100 --seconds 5 2>/dev/null
  else
    $BIN bench ingest --grpc "$url" "${ca[@]}" --objects 500 --rate 10000 --batch 50 --pace --seconds 20 2>/dev/null
  fi
  kill -TERM $node; wait $node || true
}

for round in $(seq "$ROUNDS"); do
  for mode in plain tls; do
    for load in saturation steady; do
      echo "round $round $mode $load: $(run $mode $load | tail -1)"
    done
  done
done | tee "$DIR/runs.txt"
python3 - "$DIR/runs.txt" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r"round \d+ (\w+) (\w+): .*= (\d+) measurements/s.*p50 ([\d.]+) ms, p99 ([\d.]+) ms", line)
    if m:
        rows.setdefault((m[1], m[2]), []).append((float(m[3]), float(m[4]), float(m[5])))
med = lambda k, i: statistics.median(r[i] for r in rows[k])
rate = med(("tls", "saturation"), 0) / med(("plain", "saturation"), 0)
p99 = med(("plain", "steady"), 2) / med(("tls", "steady"), 2)
print(f"saturation: TLS {med(('tls', 'saturation'), 0):,.0f}/s, plain {med(('plain', 'saturation'), 0):,.0f}/s: rate with TLS {rate:.2f}x plain")
print(f"steady 10,000/s: ack p99 TLS {med(('tls', 'steady'), 2):.2f} ms, plain {med(('plain', 'steady'), 2):.2f} ms (p50 {med(('tls', 'steady'), 1):.2f} / {med(('plain', 'steady'), 1):.2f}): plain's p99 / TLS's = {p99:.2f}x")
print(f"medians of {len(rows[('tls', 'saturation')])} rounds each")
PY
