#!/usr/bin/env bash
# A real single-node Apache Kafka broker (KRaft, broker+controller in one JVM) for tests and CI,
# without Docker: the broker's own jars come from Maven Central through `mvn`.
#
#   scripts/kafka.sh fetch               download the jars into the cache (start does it if needed)
#   scripts/kafka.sh start [--port N]    start a broker; prints only its bootstrap, 127.0.0.1:PORT
#   scripts/kafka.sh status              prints the bootstrap and exits 0 if running, else exits 1
#   scripts/kafka.sh stop                stops the broker and removes its state dir (idempotent)
#   scripts/kafka.sh restart [--down-seconds N]
#                                        stops the broker keeping its topics, waits N s, starts
#                                        it again on the same port (for outage tests)
#   scripts/kafka.sh tool CLASS [ARGS]   runs a Kafka tool class (e.g. DeleteRecordsCommand)
#
# Environment:
#   FERROSTREAM_KAFKA_VERSION        Kafka release (default below; 4.x needs Java 17)
#   FERROSTREAM_KAFKA_STATE          state dir (default /tmp/ferrostream-kafka)
#   FERROSTREAM_KAFKA_START_TIMEOUT  seconds to wait for the broker to be ready (default 60)
#
# Only the bootstrap address goes to stdout, so callers can do BOOTSTRAP=$(scripts/kafka.sh start).
# Needs Linux (setsid, flock), Java 17+, and Maven for the first fetch.
set -euo pipefail

KAFKA_VERSION="${FERROSTREAM_KAFKA_VERSION:-4.1.2}"
SCALA_VERSION="2.13"
# Kafka 4.x logs through slf4j 1.x; this binding routes it to log4j2, which writes to broker.log.
LOG4J_VERSION="2.24.3"
DEPENDENCY_PLUGIN_VERSION="3.8.1"

CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/ferrostream/kafka-${KAFKA_VERSION}"
LIBS_DIR="$CACHE_DIR/libs"
# Written last by fetch: a cache without it is a download that was cut short.
COMPLETE_MARKER="$CACHE_DIR/.complete"

STATE_DIR="${FERROSTREAM_KAFKA_STATE:-/tmp/ferrostream-kafka}"
START_TIMEOUT="${FERROSTREAM_KAFKA_START_TIMEOUT:-60}"
INSTALL_HINT="apt-get install -y openjdk-17-jre-headless maven"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    # The header comment above is the help text.
    awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0" >&2
    exit "${1:-2}"
}

need_java() {
    command -v java >/dev/null 2>&1 || die "java not found; install it with: $INSTALL_HINT"
    local major
    major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
    # Kafka 4.x brokers refuse to run on Java < 17.
    if [[ -n "$major" && "$major" -lt 17 ]]; then
        die "java $major found, Kafka $KAFKA_VERSION needs 17 or newer; install it with: $INSTALL_HINT"
    fi
}

need_mvn() {
    command -v mvn >/dev/null 2>&1 || die "mvn not found; install it with: $INSTALL_HINT"
}

# Serialises concurrent callers (pytest workers, cargo test binaries) on one lock file, so two
# of them never format the same state dir or download into the same cache at once.
take_lock() {
    local lock_file="$1"
    mkdir -p "$(dirname "$lock_file")"
    exec 9>"$lock_file"
    flock -w 300 9 || die "timed out waiting for lock $lock_file"
}

cmd_fetch() {
    if [[ -f "$COMPLETE_MARKER" ]]; then
        return 0
    fi
    need_mvn
    mkdir -p "$CACHE_DIR"
    # A second lock file (not the state one): start already holds that when it calls fetch.
    exec 8>"$CACHE_DIR.lock"
    flock -w 600 8 || die "timed out waiting for lock $CACHE_DIR.lock"
    if [[ -f "$COMPLETE_MARKER" ]]; then
        return 0 # another caller finished the download while we waited
    fi

    log "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central (once; cached in $CACHE_DIR)"
    local work
    work=$(mktemp -d)
    # shellcheck disable=SC2064 # expand $work now, the local is gone when the trap runs
    trap "rm -rf '$work'" EXIT
    # kafka_2.13 is the broker (kafka.Kafka, kafka.tools.StorageTool); kafka-tools adds the admin
    # and console clients tests and humans use to poke at the broker.
    cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.ferrostream</groupId>
  <artifactId>kafka-broker-libs</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_${SCALA_VERSION}</artifactId>
      <version>${KAFKA_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>${KAFKA_VERSION}</version>
      <!-- Only the Connect plugin tool needs these: ~45 jars (Jetty, Jersey) we never run. -->
      <exclusions>
        <exclusion>
          <groupId>org.apache.kafka</groupId>
          <artifactId>connect-runtime</artifactId>
        </exclusion>
        <exclusion>
          <groupId>com.fasterxml.jackson.jakarta.rs</groupId>
          <artifactId>jackson-jakarta-rs-json-provider</artifactId>
        </exclusion>
      </exclusions>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>${LOG4J_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>${LOG4J_VERSION}</version>
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
    local staging="$CACHE_DIR/libs.partial"
    # CDS archives (below) name the jars they came from: new jars, new archives.
    rm -rf "$staging" "$LIBS_DIR" "$CACHE_DIR"/cds-*
    # mvn's output is kept aside and shown only on failure (even -q prints stray colour codes).
    if ! (cd "$work" && mvn -q -B dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$staging") >"$work/mvn.log" 2>&1; then
        tail -n 40 "$work/mvn.log" >&2
        die "mvn could not download Kafka $KAFKA_VERSION (is Maven Central reachable?)"
    fi
    [[ -f "$staging/kafka_${SCALA_VERSION}-${KAFKA_VERSION}.jar" ]] ||
        die "download finished but kafka_${SCALA_VERSION}-${KAFKA_VERSION}.jar is missing"
    mv "$staging" "$LIBS_DIR"
    date -u +%Y-%m-%dT%H:%M:%SZ >"$COMPLETE_MARKER"
    rm -rf "$work"
    trap - EXIT
    log "fetched $(find "$LIBS_DIR" -name '*.jar' | wc -l) jars into $LIBS_DIR"
}

# Prints the broker's pid if the state dir names a live Kafka JVM. Checking the command line,
# not just `kill -0`, keeps a recycled pid from passing for our broker. `-ww`: without it ps
# cuts the line to the terminal's width (80 columns under pytest), losing kafka.Kafka.
running_pid() {
    local pid
    [[ -f "$STATE_DIR/pid" ]] || return 1
    pid=$(<"$STATE_DIR/pid")
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    ps -ww -o args= -p "$pid" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
    echo "$pid"
}

# Prints N distinct free TCP ports on 127.0.0.1. All sockets are held open until every port
# is chosen, so the broker's and the controller's ports never collide.
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Kafka's Uuid: 16 random bytes, base64url without padding. Kafka itself redraws ids that
# start with '-', because the storage tool would read one as an option.
random_cluster_id() {
    local id
    while :; do
        id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
        [[ "$id" == -* ]] || break
    done
    echo "$id"
}

# Class-data sharing (CDS): an archive of the classes a JVM loaded, mapped by the next JVM
# instead of parsing ~50 jars again, cuts the warm start from ~8 s to ~5 s on 2 busy cores.
# The first run of each tool records one when it exits; later runs use it. An archive only
# fits the JVM build that wrote it, hence a directory per `java -version`.
cds_dir() {
    echo "$CACHE_DIR/cds-$(java -version 2>&1 | md5sum | cut -c1-12)"
}

# Prints the one JVM option for tool $1: use its archive, or record one into file $2 at exit.
cds_option() {
    local archive
    archive="$(cds_dir)/$1.jsa"
    if [[ -f "$archive" ]]; then
        echo "-XX:SharedArchiveFile=$archive"
    else
        echo "-XX:ArchiveClassesAtExit=$2"
    fi
}

# Moves a freshly recorded archive into the cache; copy then rename, so a JVM never maps a
# half-written file (the state dir may be on another filesystem than the cache).
publish_cds() {
    local name="$1" recorded="$2" dir
    [[ -f "$recorded" ]] || return 0
    dir=$(cds_dir)
    mkdir -p "$dir"
    if [[ ! -f "$dir/$name.jsa" ]] && cp "$recorded" "$dir/$name.jsa.$$"; then
        mv -f "$dir/$name.jsa.$$" "$dir/$name.jsa"
    fi
    rm -f "$recorded" "$dir/$name.jsa.$$"
}

write_server_properties() {
    local port="$1" controller_port="$2"
    cat >"$STATE_DIR/server.properties" <<EOF
# Written by scripts/kafka.sh: a throwaway single-node broker for tests.
node.id=1
process.roles=broker,controller
controller.quorum.voters=1@127.0.0.1:${controller_port}
listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:${port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=${STATE_DIR}/data
num.partitions=1
# One node: internal topics cannot have the default replication factor of 3.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Creating the 50-partition defaults costs seconds on the first consumer group or transaction.
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1
# Tests should not wait 3 s for a consumer group's first rebalance.
group.initial.rebalance.delay.ms=0
EOF
}

write_log4j_config() {
    # Everything to stdout, which start redirects into broker.log: one file to tail on failure.
    cat >"$STATE_DIR/log4j2.properties" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
EOF
}

# The broker's JVM options and classpath, shared by start and restart.
CLASSPATH_GLOB="$LIBS_DIR/*"
jvm_options() {
    JVM_OPTS=(
        -Xms128m -Xmx512m
        -XX:+ExitOnOutOfMemoryError
        # CDS (below) warns about every class it cannot archive; that is not news.
        '-Xlog:cds*=error'
        -Djava.awt.headless=true
        "-Dlog4j2.configurationFile=$STATE_DIR/log4j2.properties"
    )
}

# Runs the broker of $STATE_DIR (formatted, server.properties written) on port $1, waits until
# it is ready and prints its bootstrap.
launch_broker() {
    local port="$1" pid
    jvm_options
    # setsid: the broker must outlive this script and ignore Ctrl-C sent to the caller's
    # terminal; stdio goes to the log so a caller reading our stdout is not held open by java;
    # the lock fds are closed, or the broker would hold the locks for its whole life.
    setsid java "${JVM_OPTS[@]}" "$(cds_option broker "$STATE_DIR/broker.jsa")" \
        -cp "$CLASSPATH_GLOB" kafka.Kafka "$STATE_DIR/server.properties" \
        </dev/null >>"$STATE_DIR/broker.log" 2>&1 8>&- 9>&- &
    pid=$!
    echo "$pid" >"$STATE_DIR/pid"

    # Ready means the port accepts connections AND the broker logged that it started (in KRaft
    # that comes after it registered with the controller and was unfenced, so topics can be
    # created); the port alone opens a little earlier.
    local deadline=$((SECONDS + START_TIMEOUT))
    until port_open "$port" && grep -q 'Kafka Server started' "$STATE_DIR/broker.log"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 40 "$STATE_DIR/broker.log" >&2
            die "broker exited during startup (full log: $STATE_DIR/broker.log)"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 40 "$STATE_DIR/broker.log" >&2
            kill -KILL "$pid" 2>/dev/null || true
            die "broker not ready after ${START_TIMEOUT}s (full log: $STATE_DIR/broker.log)"
        fi
        sleep 0.2
    done

    echo "127.0.0.1:$port" >"$STATE_DIR/bootstrap"
    log "Kafka $KAFKA_VERSION broker ready (pid $pid, state $STATE_DIR)"
    echo "127.0.0.1:$port"
}

cmd_start() {
    local port=""
    while [[ $# -gt 0 ]]; do
        case "$1" in
        --port)
            [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || die "--port needs a number, e.g. --port 9092"
            port="$2"
            shift 2
            ;;
        --port=*)
            port="${1#--port=}"
            [[ "$port" =~ ^[0-9]+$ ]] || die "--port needs a number, e.g. --port=9092"
            shift
            ;;
        *) die "unknown option for start: $1 (expected --port N)" ;;
        esac
    done

    need_java
    take_lock "$STATE_DIR.lock"

    local pid
    if pid=$(running_pid); then
        local bootstrap
        bootstrap=$(<"$STATE_DIR/bootstrap")
        if [[ -n "$port" && "$bootstrap" != "127.0.0.1:$port" ]]; then
            log "warning: a broker is already running at $bootstrap (pid $pid); not starting one on port $port"
        else
            log "broker already running (pid $pid)"
        fi
        echo "$bootstrap"
        return 0
    fi

    cmd_fetch

    # A state dir without a live broker is left over from a crash: start clean.
    rm -rf "$STATE_DIR"
    mkdir -p "$STATE_DIR/data"

    local controller_port
    if [[ -n "$port" ]]; then
        ! port_open "$port" || die "port $port on 127.0.0.1 is already in use; pick another or omit --port"
        controller_port=$(free_ports 2 | tr ' ' '\n' | grep -vx "$port" | head -n1)
    else
        read -r port controller_port < <(free_ports 2)
    fi

    write_server_properties "$port" "$controller_port"
    write_log4j_config

    local cluster_id
    cluster_id=$(random_cluster_id)
    # Static voter list (controller.quorum.voters), so format needs no --standalone. The tool
    # lives a second: the C1 compiler alone (TieredStopAtLevel=1) starts it faster.
    jvm_options
    java "${JVM_OPTS[@]}" -XX:TieredStopAtLevel=1 \
        "$(cds_option storage-format "$STATE_DIR/storage-format.jsa")" \
        -cp "$CLASSPATH_GLOB" kafka.tools.StorageTool format \
        -t "$cluster_id" -c "$STATE_DIR/server.properties" >>"$STATE_DIR/broker.log" 2>&1 8>&- 9>&- ||
        {
            tail -n 30 "$STATE_DIR/broker.log" >&2
            die "formatting KRaft storage failed (full log: $STATE_DIR/broker.log)"
        }
    publish_cds storage-format "$STATE_DIR/storage-format.jsa"

    launch_broker "$port"
}

# Stops the broker's JVM (SIGTERM, then SIGKILL after 10 s) and keeps its data.
terminate_broker() {
    local pid
    if pid=$(running_pid); then
        kill -TERM "$pid" 2>/dev/null || true
        # A clean shutdown takes a few seconds; after 10 s it is not worth waiting for.
        local waited=0
        while kill -0 "$pid" 2>/dev/null && ((waited < 50)); do
            sleep 0.2
            waited=$((waited + 1))
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "broker (pid $pid) ignored SIGTERM for 10 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        else
            # A broker started without a class archive wrote one as it exited. Only a clean
            # exit is trusted: a killed or crashed JVM may have left half a file.
            publish_cds broker "$STATE_DIR/broker.jsa"
        fi
        log "broker stopped (pid $pid)"
    fi
}

cmd_stop() {
    take_lock "$STATE_DIR.lock"
    terminate_broker
    rm -rf "$STATE_DIR"
}

# A broker outage for fault tests: stop the broker, keep its topics, wait, start it again on
# the same port.
cmd_restart() {
    local down=0
    while [[ $# -gt 0 ]]; do
        case "$1" in
        --down-seconds)
            [[ $# -ge 2 && "$2" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--down-seconds needs a number, e.g. --down-seconds 5"
            down="$2"
            shift 2
            ;;
        *) die "unknown option for restart: $1 (expected --down-seconds N)" ;;
        esac
    done
    need_java
    take_lock "$STATE_DIR.lock"
    [[ -f "$STATE_DIR/bootstrap" ]] || die "no broker to restart in $STATE_DIR (start one first)"
    local bootstrap
    bootstrap=$(<"$STATE_DIR/bootstrap")
    terminate_broker
    sleep "$down"
    launch_broker "${bootstrap##*:}"
}

# Runs one of the broker's own tools, e.g. org.apache.kafka.tools.DeleteRecordsCommand.
cmd_tool() {
    [[ $# -ge 1 ]] || die "tool needs a class name, e.g. org.apache.kafka.tools.DeleteRecordsCommand"
    need_java
    cmd_fetch
    java -Xmx256m -XX:TieredStopAtLevel=1 -Dlog4j2.level=warn -cp "$CLASSPATH_GLOB" "$@"
}

cmd_status() {
    local pid
    if pid=$(running_pid) && [[ -f "$STATE_DIR/bootstrap" ]]; then
        cat "$STATE_DIR/bootstrap"
        return 0
    fi
    return 1
}

main() {
    [[ $# -ge 1 ]] || usage
    local command="$1"
    shift
    case "$command" in
    fetch)
        [[ $# -eq 0 ]] || die "fetch takes no arguments"
        cmd_fetch
        ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop ;;
    restart) cmd_restart "$@" ;;
    tool) cmd_tool "$@" ;;
    status) cmd_status ;;
    -h | --help | help) usage 0 ;;
    *)
        log "unknown command: $command"
        usage
        ;;
    esac
}

main "$@"
