#!/usr/bin/env bash
# The demo: the three-nation federation of the example configs (config/usa.toml, jpn.toml,
# kor.toml — hub and spoke through USA, mutual TLS), each nation's simulated sensors streaming
# the bundled Honshu scenario to its own node in real time, over and over. Ctrl-C stops
# everything. Extra arguments go to `trilink demo` (e.g. --speed 5, --once).
#   open http://localhost:8082/ (the operator picture; 8081 USA, 8083 KOR)
#   curl localhost:8082/v1/tracks   /v1/alerts   /v1/status   /metrics   /openapi.json
set -euo pipefail
cd "$(dirname "$0")"
# The web UI (docs/web.md), built from web/package-lock.json.
(cd web && { [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; } && npm run --silent build)
cargo build --release --locked -q
exec ./target/release/trilink demo "$@"
