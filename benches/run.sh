#!/usr/bin/env bash
# ferrostream against PySpark Structured Streaming on the same Kafka topic (issue 8).
#
#   benches/run.sh [--quick] [vs_pyspark.py options]
#
# Builds what it measures, then runs benches/vs_pyspark.py:
#   - ferrostream as a release wheel (maturin build --release), installed into its own venv so
#     the repository's dev install in .venv plays no part;
#   - PySpark 3.5.3 and the spark-sql-kafka jars into the same venv (scripts/pyspark.sh);
#   - benches/kafka_bench.rs (plain librdkafka: fill the topic, raw consumer, rate producer);
#   - a broker of its own (scripts/kafka.sh with a separate state dir), stopped at the end.
# --quick runs everything in under 10 minutes (200,000 ticks, 6 s per latency rate).
# Each engine reads the topic --rounds times (default 3), in turn; the table gives medians.
#
# Environment:
#   CARGO_TARGET_DIR          build folder (default ~/.cache/ferrostream/target)
#   FERROSTREAM_BENCH_VENV    the engines' venv (default /tmp/fs-bench-venv)
#   FERROSTREAM_BENCH_BUILD   0 to reuse the installed wheel and the built kafka_bench
#   FERROSTREAM_KAFKA_BENCH   a kafka_bench binary to use instead of the one built here
#   FERROSTREAM_BENCH_SRC     the source tree to build (default this checkout), e.g. a
#                             `git archive` of one commit, so others' edits in progress stay out
#   PYTHON                    the interpreter for a new venv (default python3.11)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ferrostream/target}"
VENV="${FERROSTREAM_BENCH_VENV:-/tmp/fs-bench-venv}"
BUILD="${FERROSTREAM_BENCH_BUILD:-1}"
SRC="${FERROSTREAM_BENCH_SRC:-$ROOT}"
WORK="${FERROSTREAM_BENCH_WORK:-/tmp/ferrostream-vs-pyspark}"
# A broker of our own: tests running next to the benchmark start and stop theirs.
export FERROSTREAM_KAFKA_STATE="${FERROSTREAM_KAFKA_STATE:-/tmp/ferrostream-bench-kafka}"

log() { printf 'run.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

maturin_bin() {
    if [[ -x "$ROOT/.venv/bin/maturin" ]]; then
        echo "$ROOT/.venv/bin/maturin"
    elif command -v maturin >/dev/null 2>&1; then
        command -v maturin
    else
        die "maturin not found; pip install 'maturin>=1.7,<2' (scripts/bootstrap.sh does)"
    fi
}

mkdir -p "$WORK"
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating the benchmark venv $VENV"
    "${PYTHON:-python3.11}" -m venv "$VENV"
fi

if [[ "$BUILD" != 0 ]]; then
    log "building the release wheel (the first time takes 15-20 minutes on 2 cores)"
    rm -rf "$WORK/wheels"
    (cd "$SRC" && "$(maturin_bin)" build --release --out "$WORK/wheels") >&2
    "$VENV/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps \
        "$WORK"/wheels/ferrostream-*.whl >&2
    "$VENV/bin/pip" install -q --disable-pip-version-check "pyarrow>=15" >&2

    if [[ -z "${FERROSTREAM_KAFKA_BENCH:-}" ]]; then
        # It links the whole crate with LTO again (10+ minutes): given a binary, reuse it.
        log "building benches/kafka_bench.rs"
        (cd "$SRC" && cargo bench --no-default-features --bench kafka_bench --no-run \
            --message-format=json) >"$WORK/kafka_bench.json"
    fi
fi
KAFKA_BENCH="${FERROSTREAM_KAFKA_BENCH:-}"
[[ -n "$KAFKA_BENCH" ]] || KAFKA_BENCH=$("$VENV/bin/python" - "$WORK/kafka_bench.json" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and message["target"]["name"] == "kafka_bench":
        if message.get("executable"):
            print(message["executable"])
EOF
)
[[ -x "$KAFKA_BENCH" ]] || die "kafka_bench was not built (run with FERROSTREAM_BENCH_BUILD=1)"

"$ROOT/scripts/pyspark.sh" install --venv "$VENV"
SPARK_JARS=$("$ROOT/scripts/pyspark.sh" classpath)

BOOTSTRAP=$("$ROOT/scripts/kafka.sh" start)
trap '"$ROOT/scripts/kafka.sh" stop' EXIT

"$VENV/bin/python" "$ROOT/benches/vs_pyspark.py" run --bootstrap "$BOOTSTRAP" \
    --kafka-bench "$KAFKA_BENCH" --spark-jars "$SPARK_JARS" --python "$VENV/bin/python" \
    --work "$WORK" "$@"
