#!/usr/bin/env bash
# trilink against Stone Soup on the salvo's radar reports: builds trilink, simulates the
# scenario, installs Stone Soup in bench/venv if missing, and prints both trackers' GOSPA,
# RMSE and throughput with the ratios. Usage: bash bench/stonesoup.sh [SCENARIO]
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:-scenarios/salvo.toml}
cargo build --release -p trilink --locked
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
./target/release/trilink sim "$scenario" --out "$out" > /dev/null
if [ ! -x bench/venv/bin/python ]; then
    python3 -m venv bench/venv
fi
bench/venv/bin/python -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
bench/venv/bin/python -W ignore bench/stonesoup_compare.py "$out" --trilink target/release/trilink
