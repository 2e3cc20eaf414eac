#!/usr/bin/env bash
# PySpark 3.5.3 and its Kafka connector, for the differential tests (tests/python/differential/)
# and for anyone who wants to run the same pipeline on Spark.
#
#   scripts/pyspark.sh [all] [--venv DIR]   install PySpark into the venv, fetch the connector
#                                           jars; prints the jar folder
#   scripts/pyspark.sh install [--venv DIR] only install PySpark into the venv
#   scripts/pyspark.sh fetch                only fetch the jars; prints the jar folder
#   scripts/pyspark.sh classpath            fetch if needed; prints the jars comma-separated,
#                                           the value SparkSession's `spark.jars` takes
#
# Environment:
#   VENV   the virtual environment (default: the repository's .venv); --venv overrides it
#
# PyPI ships PySpark 3.5.3 only as a 317 MB source package: the wheel pip builds from it is kept
# in ~/.cache/ferrostream/wheels, so later installs (a fresh CI venv too) take seconds, offline.
# The connector (org.apache.spark:spark-sql-kafka-0-10_2.12:3.5.3 with its dependencies, what
# `--packages` would download at every session start) comes from Maven Central through `mvn`,
# once, into ~/.cache/ferrostream/spark-jars-3.5.3. Only paths go to stdout.
# Needs Java 17 (to run Spark) and Maven for the first fetch.
set -euo pipefail

SPARK_VERSION="3.5.3"
SCALA_BINARY="2.12"
DEPENDENCY_PLUGIN_VERSION="3.8.1"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/ferrostream"
WHEEL_DIR="$CACHE_ROOT/wheels"
# Written after the wheels are in place: a wheelhouse without it is a build cut short.
WHEEL_MARKER="$WHEEL_DIR/.pyspark-$SPARK_VERSION.complete"
JARS_DIR="$CACHE_ROOT/spark-jars-$SPARK_VERSION"
JARS_MARKER="$JARS_DIR/.complete"
INSTALL_HINT="apt-get install -y openjdk-17-jre-headless maven"

log() { printf 'pyspark.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    # The header comment above is the help text.
    awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0" >&2
    exit "${1:-2}"
}

# Serialises concurrent callers (two engineers, CI and a developer) on one lock per cache.
take_lock() {
    local fd="$1" lock_file="$2"
    mkdir -p "$(dirname "$lock_file")"
    eval "exec $fd>\"\$lock_file\""
    flock -w 1800 "$fd" || die "timed out waiting for lock $lock_file"
}

installed_version() {
    "$1/bin/python" -c 'import pyspark; print(pyspark.__version__)' 2>/dev/null || true
}

# Builds the wheels with the pip of venv $1.
build_wheels() {
    local venv="$1"
    if [[ -f "$WHEEL_MARKER" ]]; then
        return 0
    fi
    take_lock 7 "$WHEEL_DIR.lock"
    if [[ -f "$WHEEL_MARKER" ]]; then
        return 0 # another caller built it while we waited
    fi
    log "building the PySpark $SPARK_VERSION wheel from its 317 MB source package (once; cached in $WHEEL_DIR)"
    mkdir -p "$WHEEL_DIR"
    # pip wheel also drops py4j's wheel here, so the install below needs no index at all.
    "$venv/bin/pip" wheel -q --disable-pip-version-check -w "$WHEEL_DIR" "pyspark==$SPARK_VERSION" >&2 ||
        die "pip could not build pyspark==$SPARK_VERSION (is PyPI reachable?)"
    compgen -G "$WHEEL_DIR/pyspark-$SPARK_VERSION-*.whl" >/dev/null ||
        die "pip finished but no pyspark-$SPARK_VERSION wheel is in $WHEEL_DIR"
    date -u +%Y-%m-%dT%H:%M:%SZ >"$WHEEL_MARKER"
}

cmd_install() {
    local venv="$1"
    [[ -x "$venv/bin/python" ]] || die "no virtual environment at $venv (create it with scripts/bootstrap.sh or python3 -m venv)"
    if [[ "$(installed_version "$venv")" == "$SPARK_VERSION" ]]; then
        return 0
    fi
    build_wheels "$venv"
    log "installing PySpark $SPARK_VERSION into $venv"
    "$venv/bin/pip" install -q --disable-pip-version-check --no-index --find-links "$WHEEL_DIR" \
        "pyspark==$SPARK_VERSION" >&2 ||
        die "installing pyspark from $WHEEL_DIR failed; delete that folder to rebuild it"
    [[ "$(installed_version "$venv")" == "$SPARK_VERSION" ]] ||
        die "pyspark $SPARK_VERSION is not importable from $venv after installing it"
}

cmd_fetch() {
    if [[ -f "$JARS_MARKER" ]]; then
        return 0
    fi
    command -v mvn >/dev/null 2>&1 || die "mvn not found; install it with: $INSTALL_HINT"
    take_lock 8 "$JARS_DIR.lock"
    if [[ -f "$JARS_MARKER" ]]; then
        return 0
    fi

    log "fetching spark-sql-kafka-0-10_$SCALA_BINARY:$SPARK_VERSION and its dependencies from Maven Central (once; cached in $JARS_DIR)"
    local work
    work=$(mktemp -d)
    # shellcheck disable=SC2064 # expand $work now, the local is gone when the trap runs
    trap "rm -rf '$work'" EXIT
    # Runtime scope is what `--packages` resolves: the connector, the token provider,
    # kafka-clients and their compression codecs; spark-sql itself is `provided` (PySpark has it),
    # and the Scala library and spark-tags, which PySpark also ships, are left out below.
    cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.ferrostream</groupId>
  <artifactId>spark-kafka-jars</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.spark</groupId>
      <artifactId>spark-sql-kafka-0-10_${SCALA_BINARY}</artifactId>
      <version>${SPARK_VERSION}</version>
    </dependency>
  </dependencies>
  <build>
    <pluginManagement>
      <plugins>
        <!-- Maven 3.8 would otherwise pick the 2.8 plugin from 2013. -->
        <plugin>
          <groupId>org.apache.maven.plugins</groupId>
          <artifactId>maven-dependency-plugin</artifactId>
          <version>${DEPENDENCY_PLUGIN_VERSION}</version>
        </plugin>
      </plugins>
    </pluginManagement>
  </build>
</project>
EOF
    # Download next to the cache, then rename: a cut-short fetch never looks like a finished one.
    local staging="$JARS_DIR.partial"
    rm -rf "$staging" "$JARS_DIR"
    if ! (cd "$work" && mvn -q -B dependency:copy-dependencies \
        -DincludeScope=runtime -DexcludeArtifactIds="scala-library,spark-tags_${SCALA_BINARY}" \
        -DoutputDirectory="$staging") >"$work/mvn.log" 2>&1; then
        tail -n 40 "$work/mvn.log" >&2
        die "mvn could not download the Spark Kafka connector (is Maven Central reachable?)"
    fi
    [[ -f "$staging/spark-sql-kafka-0-10_${SCALA_BINARY}-${SPARK_VERSION}.jar" ]] ||
        die "download finished but spark-sql-kafka-0-10_${SCALA_BINARY}-${SPARK_VERSION}.jar is missing"
    mv "$staging" "$JARS_DIR"
    date -u +%Y-%m-%dT%H:%M:%SZ >"$JARS_MARKER"
    rm -rf "$work"
    trap - EXIT
    log "fetched $(find "$JARS_DIR" -name '*.jar' | wc -l) jars into $JARS_DIR"
}

cmd_classpath() {
    cmd_fetch
    find "$JARS_DIR" -maxdepth 1 -name '*.jar' | LC_ALL=C sort | paste -sd, -
}

main() {
    local command="all" venv="${VENV:-$ROOT/.venv}"
    while [[ $# -gt 0 ]]; do
        case "$1" in
        all | install | fetch | classpath) command="$1" ;;
        --venv)
            [[ $# -ge 2 ]] || die "--venv needs a folder"
            venv="$2"
            shift
            ;;
        --venv=*) venv="${1#--venv=}" ;;
        -h | --help | help) usage 0 ;;
        *)
            log "unknown argument: $1"
            usage
            ;;
        esac
        shift
    done
    case "$command" in
    all)
        cmd_install "$venv"
        cmd_fetch
        echo "$JARS_DIR"
        ;;
    install) cmd_install "$venv" ;;
    fetch)
        cmd_fetch
        echo "$JARS_DIR"
        ;;
    classpath) cmd_classpath ;;
    esac
}

main "$@"
