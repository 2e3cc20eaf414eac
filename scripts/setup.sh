#!/usr/bin/env bash
# Sets up a fresh machine and runs the main job: builds the release wheel, installs it in
# .venv, starts a real Kafka broker and runs `ferrostream demo` through it (live Binance trades
# for 60 s when Binance answers, else the replay of the recorded day shipped in the wheel).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/bootstrap.sh
"$VENV/bin/maturin" build --release --out dist >&2
"$VENV/bin/pip" install -q --force-reinstall --no-deps dist/ferrostream-*.whl
BOOTSTRAP="$(scripts/kafka.sh start)"
trap 'scripts/kafka.sh stop' EXIT
"$VENV/bin/ferrostream" demo --kafka "$BOOTSTRAP" --duration "${FERROSTREAM_DEMO_SECONDS:-60}"
