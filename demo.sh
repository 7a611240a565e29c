#!/usr/bin/env bash
# The demo, today: Japan's node from its example config, the bundled Honshu scenario streamed to
# it by `trilink sim --send` at 10x, and the picture read back over HTTP as it happens. The node
# keeps running afterwards (Ctrl-C stops it) so its API can be explored:
#   curl localhost:8082/v1/tracks   /v1/alerts   /v1/status   /metrics   /openapi.json
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --locked -q
BIN=$PWD/target/release/trilink
[ -f run/pki/jpn/node.key ] || $BIN pki init --nations USA,JPN,KOR --out run/pki
if curl -sf localhost:8082/healthz >/dev/null; then
  echo "something already serves on port 8082 (an earlier demo?); stop it first" >&2
  exit 1
fi
$BIN node --config config/jpn.toml --log warn &
NODE=$!
trap 'kill -TERM $NODE 2>/dev/null; wait $NODE 2>/dev/null' EXIT
for _ in $(seq 100); do
  curl -sf localhost:8082/healthz >/dev/null && break
  kill -0 $NODE 2>/dev/null || { echo "the node did not start" >&2; exit 1; }
  sleep 0.1
done
echo "JPN node up: http://127.0.0.1:8082 (gRPC 127.0.0.1:50062); streaming scenarios/mrbm-honshu.toml at 10x"
$BIN sim scenarios/mrbm-honshu.toml --send http://127.0.0.1:50062 --speed 10 --nation JPN 2>/dev/null &
SEND=$!
while kill -0 $SEND 2>/dev/null; do
  python3 tools/watch.py http://127.0.0.1:8082 || true
  sleep 2
done
wait $SEND
echo "scenario done; the node keeps running (Ctrl-C to stop). Try: curl localhost:8082/v1/log/JPN?limit=5"
wait $NODE
