#!/usr/bin/env bash
# The demo: the three-nation federation of the example configs (config/usa.toml, jpn.toml,
# kor.toml — hub and spoke through USA, mutual TLS), each nation's simulated sensors streaming
# the bundled Honshu scenario to its own node in real time, over and over. Ctrl-C stops
# everything. Extra arguments go to `trilink demo` (e.g. --speed 5, --once).
#   open https://localhost:8082/ and log in with demo-jpn-duty-officer (8081 USA, 8083 KOR)
#   curl --cacert run/pki/jpn/ca.crt -H "Authorization: Bearer demo-jpn-admin" https://localhost:8082/v1/status
set -euo pipefail
cd "$(dirname "$0")"
# The web UI (docs/web.md), built from web/package-lock.json.
(cd web && { [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; } && npm run --silent build)
cargo build --release --locked -q
exec ./target/release/trilink demo "$@"
