#!/usr/bin/env bash
# Federation benchmarks (docs/BENCHMARKS.md): two release nodes (JPN sends, USA receives over
# mutual TLS with full verification) with `trilink bench proxy` on the link adding a one-way
# delay each way; then the same records' sizes and rates through NATS JetStream mirroring
# between two servers (sync_interval: always, so durability is like for like), over the same
# proxy, as the peer.
#
#   bash bench/federation.sh               # delays 0 20 100 ms, 20 s each
#   DELAYS="0 20" SECONDS_EACH=10 bash bench/federation.sh
#   FRAMES=10 SKIP_PEER=1 bash bench/federation.sh   # scans in frames; trilink only
#   SKIP_LATENCY=1 SKIP_PEER=1 bash bench/federation.sh   # catch-up only
#   CATCHUP_DELAY=100 SKIP_LATENCY=1 SKIP_PEER=1 bash bench/federation.sh   # catch-up over a 100 ms link
#   TMPDIR=/dev/shm bash bench/federation.sh   # logs on tmpfs: the software without the disk (a diagnostic)
#   RT_PRIORITY=10 bash bench/federation.sh    # fusion under SCHED_FIFO 10 at both nodes (fusion.realtime_priority; default 0, normal)
set -euo pipefail
cd "$(dirname "$0")/.."
DELAYS=${DELAYS:-"0 20 100"}
SECONDS_EACH=${SECONDS_EACH:-20}
RATE=${RATE:-10000}
OBJECTS=${OBJECTS:-1000}
PACE=${PACE:-}   # PACE=--pace: a steady load instead of each radar scan at once
FRAMES=${FRAMES:-1} # FRAMES=10: each radar scan spread over ten frames, as scanning radars report
BACKLOG=${BACKLOG:-200000}
CATCHUP_DELAY=${CATCHUP_DELAY:-0}   # one-way delay (ms) of the link during the catch-up
RT_PRIORITY=${RT_PRIORITY:-0}   # fusion.realtime_priority of both nodes (0: normal priority)
cargo build --release --locked -q
BIN=${BIN:-$PWD/target/release/trilink}   # BIN=/path/to/another/trilink: compare builds
if [ ! -x bench/venv/bin/python ]; then python3 -m venv bench/venv; fi
bench/venv/bin/python -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
DIR=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DIR"' EXIT
$BIN pki init --nations USA,JPN --out "$DIR/pki" >/dev/null
. bench/lib.sh
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
{
  echo 'nation = "JPN"'; echo "data_dir = \"$DIR/jpn\""; echo "signing_key = \"$DIR/pki/jpn/node.key\""
  echo 'releasable_to = ["USA"]'
  echo '[fusion]'; echo "realtime_priority = $RT_PRIORITY"
  echo '[listen]'; echo 'http = "127.0.0.1:18082"'; echo 'grpc = "127.0.0.1:15062"'; echo 'plain = true'
  echo '[federation]'; echo 'listen = "127.0.0.1:17062"'
  echo "tls_cert = \"$DIR/pki/jpn/tls.crt\""; echo "tls_key = \"$DIR/pki/jpn/tls.key\""
  echo '[[partner]]'; echo 'nation = "USA"'; echo "ca = \"$DIR/pki/usa/ca.crt\""; echo "signing_key = \"$DIR/pki/usa/node.pub\""
  for s in KOR-GP-1:KOR JPN-FPS5-SADO:JPN JPN-DDG-SOJ:JPN USA-TPY2-SHARIKI:USA KOR-GP-2:KOR; do
    id=${s%%:*}; nation=${s##*:}; lower=$(echo "$id" | tr 'A-Z' 'a-z')
    echo '[[sensor]]'; echo "id = \"$id\""; echo "nation = \"$nation\""; echo "token_sha256 = \"$(sha "bench-$lower")\""
  done
  bench_user
} > "$DIR/jpn.toml"
{
  echo 'nation = "USA"'; echo "data_dir = \"$DIR/usa\""; echo "signing_key = \"$DIR/pki/usa/node.key\""
  echo '[fusion]'; echo "realtime_priority = $RT_PRIORITY"
  echo '[listen]'; echo 'http = "127.0.0.1:18081"'; echo 'grpc = "127.0.0.1:15061"'; echo 'plain = true'
  echo '[federation]'; echo 'listen = "127.0.0.1:17061"'
  echo "tls_cert = \"$DIR/pki/usa/tls.crt\""; echo "tls_key = \"$DIR/pki/usa/tls.key\""
  echo '[[partner]]'; echo 'nation = "JPN"'; echo 'address = "127.0.0.1:17162"'
  echo "ca = \"$DIR/pki/jpn/ca.crt\""; echo "signing_key = \"$DIR/pki/jpn/node.pub\""
  bench_user
} > "$DIR/usa.toml"

wait_http() { for _ in $(seq 200); do curl -sf "localhost:$1/healthz" >/dev/null && return; sleep 0.1; done; echo "node on $1 did not start" >&2; exit 1; }
start() { # nation
  $BIN node --config "$DIR/$1.toml" --log warn 2>"$DIR/$1.log" &
  eval "PID_$1=$!"
}
held() { api localhost:18081/v1/status | python3 -c 'import json,sys; print(next((o["seq"] for o in json.load(sys.stdin)["origins"] if o["origin"]=="JPN"), 0))'; }
head_jpn() { api localhost:18082/v1/status | python3 -c 'import json,sys; print(json.load(sys.stdin)["log"]["seq"])'; }
stop_all() { kill -TERM $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; }

[ -n "${SKIP_LATENCY:-}" ] || {
echo "== trilink: ingest at JPN at $RATE records/s (one measurement per record), replicated to USA over mTLS through the proxy"
for D in $DELAYS; do
  rm -rf "$DIR/jpn" "$DIR/usa"
  $BIN bench proxy --listen 127.0.0.1:17162 --to 127.0.0.1:17062 --delay-ms "$D" 2>/dev/null &
  start jpn; start usa; wait_http 18082; wait_http 18081
  $BIN bench ingest --grpc http://127.0.0.1:15062 --objects "$OBJECTS" --rate "$RATE" --batch 1 --frames "$FRAMES" --seconds "$SECONDS_EACH" $PACE 2>/dev/null | tail -1
  for _ in $(seq 100); do [ "$(held)" = "$(head_jpn)" ] && break; sleep 0.1; done
  api localhost:18081/v1/status | python3 -c "
import json, sys
d = float(sys.argv[1]); f = json.load(sys.stdin)['federation']; l = f['latency']
r = f['partners'][0]['receiving'] or {}
print(f'  delay {d:>5.0f} ms  link at USA: {r.get(\"batches\")} batches made durable by {r.get(\"commits\")} syncs')
def beyond(p, d):  # the histogram's top bucket prints as '>1000'
    return f'{float(p) - d:.1f}' if not str(p).startswith('>') else f'>{float(str(p)[1:]) - d:.0f}'
for k in ('received', 'applied', 'fused'):
    if k not in l:  # a build from before the stage was measured (BIN=)
        continue
    s = l[k]
    print(f'  delay {d:>5.0f} ms  ingest->{k:7} at USA: n={s[\"count\"]} p50 {s[\"p50_ms\"]} ms  p99 {s[\"p99_ms\"]} ms  max {s[\"max_ms\"]} ms  (p99 beyond the delay: {beyond(s[\"p99_ms\"], d)} ms)')
" "$D"
  echo "  delay $(printf '%5s' "$D") ms  JPN's log group commit (write and sync) p50 $(metric_q trilink_log_commit_seconds 0.5), p99 $(metric_q trilink_log_commit_seconds 0.99) (bucket bounds); fusion: $(api localhost:18081/v1/status | python3 -c 'import json,sys; p=json.load(sys.stdin)["fusion"]["realtime_priority"]; print("SCHED_FIFO %d" % p if p else "normal priority")')"
  stop_all
done
}

[ -n "${SKIP_CATCHUP:-}" ] || {
echo "== trilink: catch-up — USA down while JPN logs $BACKLOG records, then USA starts ($CATCHUP_DELAY ms one-way delay)"
rm -rf "$DIR/jpn" "$DIR/usa"
$BIN bench proxy --listen 127.0.0.1:17162 --to 127.0.0.1:17062 --delay-ms "$CATCHUP_DELAY" 2>/dev/null &
start jpn; wait_http 18082
$BIN bench ingest --grpc http://127.0.0.1:15062 --objects 2000 --rate 20000 --batch 1 --seconds $((BACKLOG / 15000)) 2>/dev/null | tail -1
TOTAL=$(head_jpn)
start usa; wait_http 18081
link_up() { api localhost:18081/v1/status | python3 -c 'import json,sys; print(json.load(sys.stdin)["federation"]["partners"][0]["receiving"]["state"])'; }
while [ "$(link_up)" != "up" ]; do sleep 0.01; done
T0=$(date +%s.%N)
while [ "$(held)" != "$TOTAL" ]; do sleep 0.02; done
T1=$(date +%s.%N)
python3 -c "import sys; n, t = int(sys.argv[1]), float(sys.argv[3]) - float(sys.argv[2]); print(f'  {n} records (one measurement each) replicated, verified and synced in {t:.2f} s from the link coming up: {n / t:.0f} records/s, {n / t / $RATE:.1f}x the live rate of $RATE/s')" "$TOTAL" "$T0" "$T1"
stop_all
}

[ -n "${SKIP_PEER:-}" ] && exit 0
echo "== peer: NATS JetStream mirror (leafnode, sync_interval: always) through the same proxy"
for D in $DELAYS; do
  $BIN bench proxy --listen 127.0.0.1:17423 --to 127.0.0.1:17422 --delay-ms "$D" 2>/dev/null &
  bench/venv/bin/python bench/nats_mirror.py --dir "$DIR/nats-$D" --delay-ms "$D" --rate "$RATE" --seconds "$SECONDS_EACH" --backlog "$([ "$D" = 0 ] && echo "$BACKLOG" || echo 0)"
  stop_all
done
