#!/usr/bin/env bash
# Node benchmarks (docs/BENCHMARKS.md): durable ingest throughput and acknowledgement latency,
# ingest-to-alert latency at 10,000 measurements/s, and memory over a long run, against a
# fresh release node on loopback. The peer is this disk itself: how many fdatasync calls per
# second it does, which is what one-sync-per-record logging would be capped at.
#
#   bash bench/node.sh            # full run (10-minute memory run)
#   MEMORY_MINUTES=2 bash bench/node.sh
#   ONLY=alert REORDER_MS=10 FRAMES=10 bash bench/node.sh   # the ingest-to-alert section only
#   ONLY=alert REORDER_MS=5 FRAMES=10 ALERT_RUNS=5 bash bench/node.sh   # five runs, pooled p99
# The node's fusion thread runs under SCHED_FIFO at RT_PRIORITY (default 10; 0: normal
# priority). It needs root or CAP_SYS_NICE; without, the node warns and runs it at normal
# priority, and the run says which it was.
set -euo pipefail
cd "$(dirname "$0")/.."
MEMORY_MINUTES=${MEMORY_MINUTES:-10}
# The ingest-to-alert section's load: objects, and frames per radar scan (1: every radar
# reports its whole scan at one instant, all together; 10: spread over the update interval).
OBJECTS=${OBJECTS:-1000} FRAMES=${FRAMES:-1} ONLY=${ONLY:-}
cargo build --release --locked -q
BIN=${BIN:-$PWD/target/release/trilink}   # BIN=/path/to/another/trilink: compare builds
DIR=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$DIR"' EXIT
$BIN pki init --out "$DIR" >/dev/null

. bench/lib.sh
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
{
  echo "nation = \"JPN\""
  echo "data_dir = \"$DIR/log\""
  echo "signing_key = \"$DIR/node.key\""
  echo "[listen]"
  echo "http = \"127.0.0.1:18082\""
  echo "grpc = \"127.0.0.1:15062\""
  echo "plain = true"
  echo "[fusion]"
  echo "reorder_window_ms = ${REORDER_MS:-250}"
  echo "realtime_priority = ${RT_PRIORITY:-10}"
  for s in KOR-GP-1:KOR JPN-FPS5-SADO:JPN JPN-DDG-SOJ:JPN USA-TPY2-SHARIKI:USA KOR-GP-2:KOR; do
    id=${s%%:*}; nation=${s##*:}; lower=$(echo "$id" | tr 'A-Z' 'a-z')
    echo "[[sensor]]"; echo "id = \"$id\""; echo "nation = \"$nation\""; echo "token_sha256 = \"$(sha "bench-$lower")\""
  done
  echo "[[area]]"; echo "file = \"$PWD/config/areas/japan.geojson\""
  bench_user
} > "$DIR/node.toml"
start_node() {
  rm -rf "$DIR/log"
  $BIN node --config "$DIR/node.toml" --log warn 2>"$DIR/node.log" &
  NODE=$!
  for _ in $(seq 100); do curl -sf localhost:18082/healthz >/dev/null && return; sleep 0.1; done
  cat "$DIR/node.log"; exit 1
}

if [ "$ONLY" != alert ]; then
echo "== peer: this disk's fdatasync rate (one sync per record would be capped here)"
python3 - "$DIR" <<'PY'
import os, sys, time
fd = os.open(os.path.join(sys.argv[1], "sync-probe"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
buf = b"x" * 4096
n, t0, took = 0, time.perf_counter(), []
while time.perf_counter() - t0 < 10:
    t1 = time.perf_counter(); os.write(fd, buf); os.fdatasync(fd); took.append(time.perf_counter() - t1); n += 1
took.sort()
q = lambda p: took[min(len(took) - 1, int(p * len(took)))] * 1e3
print(f"fdatasync: {n / (time.perf_counter() - t0):.0f} syncs/s; each p50 {q(0.5):.2f} ms, p99 {q(0.99):.2f} ms, p99.9 {q(0.999):.2f} ms, max {took[-1] * 1e3:.1f} ms")
PY

echo "== durable ingest at saturation (2,000 objects offered at 200,000 measurements/s for 5 s)"
start_node
$BIN bench ingest --grpc http://127.0.0.1:15062 --objects 2000 --rate 200000 --seconds 5
api localhost:18082/metrics | grep -E '^trilink_log_(group_commits|records_appended)_total'
kill -TERM $NODE; wait $NODE || true
fi

# The cloud's objects fly east over Japan: their impact predictions raise and update alerts.
# A run makes about 90 alert changes, so its p99 is its maximum; ALERT_RUNS=N repeats the
# section on fresh nodes and pools them, where p99 within the reorder window + 15 ms holds
# while fewer than 1% of all alert changes are over it (each is logged as a slow alert).
ALERT_RUNS=${ALERT_RUNS:-1} POOLED_SLOW=0 POOLED_CHANGES=0
for run in $(seq "$ALERT_RUNS"); do
echo "== 10,000 measurements/s ($OBJECTS objects, $FRAMES frames per scan): ack and ingest-to-alert latency (run $run of $ALERT_RUNS)"
start_node
$BIN bench ingest --grpc http://127.0.0.1:15062 --objects "$OBJECTS" --frames "$FRAMES" --rate 10000 --seconds 70
echo "node-side ack latency p50 $(metric_q trilink_ingest_ack_latency_seconds 0.5), p99 $(metric_q trilink_ingest_ack_latency_seconds 0.99)"
echo "ingest-to-alert (reorder window ${REORDER_MS:-250} ms): $(api localhost:18082/v1/status | python3 -c 'import json,sys; print(json.load(sys.stdin)["fusion"]["ingest_to_alert"])')"
echo "fusion thread: $(api localhost:18082/v1/status | python3 -c 'import json,sys; p=json.load(sys.stdin)["fusion"]["realtime_priority"]; print("SCHED_FIFO priority %d" % p if p else "normal priority")')"
echo "fusion step p50 $(metric_q trilink_fusion_step_seconds 0.5), p99 $(metric_q trilink_fusion_step_seconds 0.99)"
api localhost:18082/metrics | grep -E "^trilink_(alert_changes|fusion_late_set_aside)_total"
CHANGES=$(api localhost:18082/metrics | awk '$1 == "trilink_alert_changes_total" {print $2}')
kill -TERM $NODE; wait $NODE || true
grep -E "slow (alert|group commit)" "$DIR/node.log" || true
SLOW=$(grep -c "slow alert" "$DIR/node.log" || true)
echo "alert changes over the reorder window + 15 ms: $SLOW of $CHANGES"
POOLED_SLOW=$((POOLED_SLOW + SLOW)) POOLED_CHANGES=$((POOLED_CHANGES + CHANGES))
done
if [ "$ALERT_RUNS" -gt 1 ]; then
  python3 -c "
import sys
slow, n, runs, bound = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4]) + 15
verdict = 'within' if n and slow < 0.01 * n else 'NOT within'
print(f'pooled over {runs} runs: {slow} of {n} alert changes over {bound:g} ms ({100 * slow / max(n, 1):.2f}%): p99 {verdict} {bound:g} ms')
" "$POOLED_SLOW" "$POOLED_CHANGES" "$ALERT_RUNS" "${REORDER_MS:-250}"
fi
[ "$ONLY" = alert ] && exit 0

echo "== memory over $MEMORY_MINUTES minutes at 10,000 measurements/s"
start_node
$BIN bench ingest --grpc http://127.0.0.1:15062 --objects 1000 --rate 10000 --seconds $((MEMORY_MINUTES * 60)) > "$DIR/mem-load.txt" &
LOAD=$!
for m in $(seq 0 "$MEMORY_MINUTES"); do
  [ "$m" -gt 0 ] && sleep 60
  echo "minute $m: node RSS $(( $(awk '/VmRSS/ {print $2}' /proc/$NODE/status) / 1024 )) MiB, log seq $(api localhost:18082/v1/status | python3 -c 'import json,sys; d=json.load(sys.stdin)["log"]; print(d["seq"], "fused", d["fused_seq"])')"
done
wait $LOAD; cat "$DIR/mem-load.txt"
kill -TERM $NODE; wait $NODE || true
