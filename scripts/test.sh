#!/usr/bin/env bash
# Runs every check and test: formatting, lints, Rust tests, the wheel built and installed in a
# fresh virtual environment, a real Kafka broker, pytest, ruff, mypy. Any failure fails it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# A fresh environment per run, removed at exit (each is ~1.6 GB with PySpark).
VENV_DIR="$(mktemp -d)"
VENV="$VENV_DIR/venv"
export VENV
trap 'rm -rf "$VENV_DIR"' EXIT
source scripts/bootstrap.sh
# PySpark and its Kafka connector, for the differential tests against Spark (both cached after
# the first run: a few seconds).
scripts/pyspark.sh --venv "$VENV" >/dev/null
step() { printf '\n== %s\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --check
step "cargo clippy"
cargo clippy --all-targets --no-default-features -- -D warnings
cargo clippy --lib -- -D warnings

BOOTSTRAP="$(scripts/kafka.sh start)"
export FERROSTREAM_KAFKA_BOOTSTRAP="$BOOTSTRAP"
trap 'scripts/kafka.sh stop; rm -rf "$VENV_DIR"' EXIT

step "cargo test"
cargo test --no-default-features
step "cargo build --benches"
cargo build --no-default-features --benches

step "wheel"
rm -rf "$ROOT/target/wheels"
"$VENV/bin/maturin" build --profile dev --out "$ROOT/target/wheels" >&2
"$VENV/bin/pip" install -q --no-deps "$ROOT"/target/wheels/ferrostream-*.whl

step "ruff, mypy"
"$VENV/bin/ruff" check python tests/python benches
"$VENV/bin/ruff" format --check python tests/python benches
"$VENV/bin/mypy"
step "stubtest"
# The stub of the Rust extension against the wheel just installed.
"$VENV/bin/python" -m mypy.stubtest ferrostream._core --allowlist .mypy-stubtest-allowlist

step "pytest"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider
