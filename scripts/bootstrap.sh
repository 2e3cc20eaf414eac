#!/usr/bin/env bash
# Installs what building ferrostream needs beyond a fresh machine of this kind: the Debian
# packages librdkafka's CMake build uses, and a Python virtual environment with the build and
# test tools. Idempotent; sourced by setup.sh and test.sh.
#
#   VENV   where the virtual environment goes (default .venv)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
# Build artifacts live outside the clone so a fresh clone reuses them when they are there.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ferrostream/target}"

need_packages=()
for pkg in cmake libcurl4-openssl-dev libssl-dev libsasl2-dev zlib1g-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_packages+=("$pkg")
done
if ((${#need_packages[@]})); then
    echo "bootstrap: installing ${need_packages[*]}" >&2
    SUDO=""
    [[ $(id -u) -eq 0 ]] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_packages[@]}" >/dev/null
fi

command -v cargo >/dev/null || { echo "bootstrap: cargo not found; install Rust with rustup" >&2; exit 1; }
command -v java >/dev/null || { echo "bootstrap: java not found; apt-get install -y openjdk-17-jre-headless maven" >&2; exit 1; }

if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --upgrade pip >/dev/null
"$VENV/bin/pip" install -q "maturin>=1.7,<2" "pyarrow>=15" pandas pytest ruff mypy
# The forecast extra (Prophet ships its compiled Stan model in the wheel) and what CI needs to
# execute the notebooks headlessly.
"$VENV/bin/pip" install -q prophet matplotlib nbclient nbformat ipykernel
