#!/usr/bin/env bash
# Sets up a fresh machine and runs the main job: builds the release wheel, installs it in
# .venv, starts a real Kafka broker and runs the example pipeline against it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/bootstrap.sh
"$VENV/bin/maturin" build --release --out dist >&2
"$VENV/bin/pip" install -q --force-reinstall --no-deps dist/ferrostream-*.whl
BOOTSTRAP="$(scripts/kafka.sh start)"
trap 'scripts/kafka.sh stop' EXIT
"$VENV/bin/python" examples/kafka_to_memory.py --bootstrap "$BOOTSTRAP"
