#!/usr/bin/env bash
# A real Apache Kafka broker (KRaft, one node that is both broker and controller)
# for local development and tests. Idempotent; no systemd, no docker.
#
#   scripts/kafka.sh [start]                   # fetch if needed, format if needed, start, wait until ready
#   scripts/kafka.sh stop                      # stop the instance started from --dir
#   scripts/kafka.sh fetch                     # only download the jars (via mvn) into the cache
#   scripts/kafka.sh status                    # is the instance in --dir running / answering?
#   scripts/kafka.sh tool CLASS [ARGS...]      # run a Java class (a Kafka CLI tool) with the cached jars
#
# Options (before the command's own arguments):
#   --port N             broker (PLAINTEXT) port on 127.0.0.1 (default 9092)
#   --controller-port N  KRaft controller port (default: port + 1000, i.e. 10092)
#   --dir DIR            instance dir: config, data, log, pid (default $KOMMERCE_STATE_DIR/kafka)
#
# A test can run its own broker next to the default one:
#   scripts/kafka.sh start --port 9292 --dir /tmp/kafka-test
#   scripts/kafka.sh tool org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:9292 --list
#   scripts/kafka.sh stop --port 9292 --dir /tmp/kafka-test
#
# The broker comes from Maven (org.apache.kafka:kafka_2.13 plus kafka-tools and a log
# binding), fetched with the ordinary `mvn` client into
# $KOMMERCE_STATE_DIR/kafka-<version>/libs and reused from there. mvn uses its own
# settings: MAVEN_OPTS, ~/.m2/settings.xml and the local repo (~/.m2/repository).
#
# Files in the instance dir:
#   server.properties   broker config (rewritten on every start, see write_config)
#   log4j2.properties   broker logging config
#   data/               log.dirs (topic data and the KRaft metadata log)
#   kafka.log           broker stdout/stderr (the previous run's in kafka.log.1)
#   kafka.pid           pid of the broker JVM
#
# Environment:
#   KOMMERCE_STATE_DIR    cache/state dir (default: $HOME/.cache/kommerce)
#   KAFKA_VERSION         Kafka version to fetch and run (default: 4.3.2)
#   KAFKA_HEAP            broker heap flags (default: "-Xms256m -Xmx768m")
#   KAFKA_OPTS            extra JVM flags for the broker
#   KAFKA_TOOL_HEAP       heap flags for `tool` and the format step (default: "-Xmx256m")
#   KAFKA_START_TIMEOUT   seconds to wait for the broker to be ready (default: 90)
#   KAFKA_STOP_TIMEOUT    seconds to wait after SIGTERM before SIGKILL (default: 30)
#   JAVA_HOME             Java 17+ to use (default: `java` on PATH)
set -euo pipefail

# 4.3.2: a patch release of a 4.x line; its whole runtime dependency set resolves
# through mvn, and the broker needs Java 17, which is this machine's default.
KAFKA_VERSION="${KAFKA_VERSION:-4.3.2}"
KAFKA_HEAP="${KAFKA_HEAP:--Xms256m -Xmx768m}"
# Tests name their topics `t<32 hex>.<name>` (a namespace per test) and leave them behind;
# every partition holds open files, and the broker dies at the open-files limit. Past this
# many test partitions the test topics are deleted (running broker) or the state is
# started afresh (stopped broker). `kommerce up`'s own topics carry no such prefix.
KAFKA_MAX_TEST_PARTITIONS="${KAFKA_MAX_TEST_PARTITIONS:-3000}"
TEST_TOPICS='t[0-9a-f]{32}\..*'
KAFKA_TOOL_HEAP="${KAFKA_TOOL_HEAP:--Xmx256m}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
HOST=127.0.0.1

STATE_DIR="${KOMMERCE_STATE_DIR:-$HOME/.cache/kommerce}"
CACHE_DIR="$STATE_DIR/kafka-$KAFKA_VERSION" # complete, or absent: only ever created by rename
LIBS="$CACHE_DIR/libs"
FETCH_LOG="$STATE_DIR/kafka-fetch.log"
# The log4j2 binding for the slf4j-api the Kafka jars use. Kafka 4.x depends on
# slf4j-api 1.7.x and log4j-core 2.x, but the binding between them (which the binary
# distribution ships in libs/) is not a Maven dependency of kafka_2.13; without it
# slf4j falls back to a no-op logger and the broker prints nothing at all.
LOG4J_VERSION="${KAFKA_LOG4J_VERSION:-2.25.5}"

# Set from the options in main().
PORT=9092
CTRL_PORT=""
INSTANCE_DIR=""

# ---------------------------------------------------------------- helpers

say() { printf 'kafka: %s\n' "$*"; }
die() {
    printf 'kafka.sh: ERROR: %s\n' "$*" >&2
    exit 1
}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    cat <<EOF
usage: $0 [start|stop|fetch|status|format] [--port N] [--controller-port N] [--dir DIR]
       $0 [--port N] [--dir DIR] tool CLASS [ARGS...]
Runs a single-node KRaft Apache Kafka $KAFKA_VERSION broker on $HOST:<port> (default 9092,
controller on port+1000) with its state in DIR (default \$KOMMERCE_STATE_DIR/kafka).
Env: KOMMERCE_STATE_DIR, KAFKA_VERSION, KAFKA_HEAP, KAFKA_OPTS, KAFKA_START_TIMEOUT, KAFKA_STOP_TIMEOUT
EOF
}

# kafka_answers HOST PORT: true if a Kafka broker there answers an ApiVersions request.
# Speaks the protocol directly (no JVM start per poll): ApiVersions (key 18) v0, which
# every broker version accepts, request header v1, correlation id 42, client id
# "kafka.sh". The response starts with its size (4 bytes), our correlation id (4) and
# an error code (2) that must be 0. A KRaft broker only starts processing requests on
# its listener once it has caught up with the metadata log and been unfenced, so before
# that this fails even though the port is already bound.
kafka_answers() {
    timeout 3 bash -c '
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf "\x00\x00\x00\x12\x00\x12\x00\x00\x00\x00\x00\x2a\x00\x08kafka.sh" >&3
        hdr=$(head -c 10 <&3 | od -An -tx1 | tr -d " \n")
        [[ $hdr == ????????0000002a0000 ]]
    ' _ "$1" "$2" 2>/dev/null
}

java_bin() {
    local j=java
    [[ -n ${JAVA_HOME:-} ]] && j="$JAVA_HOME/bin/java"
    have "$j" || die "java not found (install a JDK/JRE 17+, or set JAVA_HOME)"
    local v
    v=$("$j" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')
    [[ ${v%%.*} =~ ^[0-9]+$ ]] && ((${v%%.*} >= 17)) ||
        die "Kafka $KAFKA_VERSION needs Java 17+, but $j is version ${v:-unknown} (set JAVA_HOME)"
    echo "$j"
}

# Paths of one instance; set by set_instance.
CONF="" LOG4J_CONF="" DATA_DIR="" LOG_FILE="" PID_FILE="" LOCK_FILE=""
set_instance() {
    INSTANCE_DIR=$(realpath -m "$INSTANCE_DIR") # the pid check matches the absolute config path
    CONF="$INSTANCE_DIR/server.properties"
    LOG4J_CONF="$INSTANCE_DIR/log4j2.properties"
    DATA_DIR="$INSTANCE_DIR/data"
    LOG_FILE="$INSTANCE_DIR/kafka.log"
    PID_FILE="$INSTANCE_DIR/kafka.pid"
    LOCK_FILE="$INSTANCE_DIR/.lock"
}

# Serialise start/stop/format of one instance (two tests calling `start` at once
# must not both launch a JVM on the same data dir). Held until the script exits.
lock_instance() {
    mkdir -p "$INSTANCE_DIR"
    exec 9>"$LOCK_FILE"
    flock -w $((START_TIMEOUT + 60)) 9 || die "another kafka.sh holds $LOCK_FILE"
}

# alive PID: the process exists and is not a zombie.
alive() {
    local st
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $st && $st != Z ]]
}

# is_instance PID: PID is a broker JVM started with this instance's server.properties
# (so a recycled pid from a stale pid file is never taken for, or killed as, ours).
is_instance() {
    alive "$1" || return 1
    local args
    args=$(tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null) || return 1
    grep -qxF kafka.Kafka <<<"$args" && grep -qxF "$CONF" <<<"$args"
}

# Pid of this instance's broker, empty if none runs. Removes a stale pid file, and
# finds the broker by its command line if the pid file got lost.
instance_pid() {
    local pid=""
    if [[ -f $PID_FILE ]]; then
        pid=$(<"$PID_FILE")
        if [[ $pid =~ ^[0-9]+$ ]] && is_instance "$pid"; then
            echo "$pid"
            return 0
        fi
        say "removing stale pid file $PID_FILE (pid ${pid:-?} is not this broker)" >&2
        rm -f "$PID_FILE"
    fi
    for pid in $(pgrep -x java 2>/dev/null || true); do
        if is_instance "$pid"; then
            echo "$pid" >"$PID_FILE"
            echo "$pid"
            return 0
        fi
    done
}

# ------------------------------------------------------------------ fetch

cache_complete() { [[ -f $CACHE_DIR/.complete && -f $LIBS/kafka_2.13-$KAFKA_VERSION.jar ]]; }

write_fetch_pom() {
    # A throwaway pom whose only purpose is its dependency list:
    #  - kafka_2.13: the broker (kafka.Kafka) and kafka.tools.StorageTool, with all
    #    the broker's runtime dependencies (kafka-server, -raft, -metadata, ... log4j-core).
    #  - kafka-tools: the CLI tools (TopicCommand, ConsoleProducer/Consumer,
    #    ConsumerGroupCommand, ...), used by tests and by hand. Without connect-runtime
    #    (jetty, jersey, ~15 MB): only the Connect plugin-path tool needs it.
    #  - log4j-slf4j-impl: the slf4j 1.x -> log4j2 binding (see LOG4J_VERSION).
    # The dependency plugin is pinned so the fetch does not depend on Maven's default.
    cat >"$1" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.kommerce</groupId>
  <artifactId>kafka-fetch</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$KAFKA_VERSION</version>
      <exclusions>
        <exclusion>
          <groupId>org.apache.kafka</groupId>
          <artifactId>connect-runtime</artifactId>
        </exclusion>
      </exclusions>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
  <build>
    <pluginManagement>
      <plugins>
        <plugin>
          <groupId>org.apache.maven.plugins</groupId>
          <artifactId>maven-dependency-plugin</artifactId>
          <version>3.8.1</version>
        </plugin>
      </plugins>
    </pluginManagement>
  </build>
</project>
EOF
}

# Logging for the CLI tools and the format step: warnings and errors to stderr only,
# so tool output (topic lists, consumed records) stays clean on stdout.
write_tools_log4j() {
    cat >"$1" <<'EOF'
status = warn
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
EOF
}

FETCH_TMP=""
cleanup() { [[ -n $FETCH_TMP ]] && rm -rf "$FETCH_TMP" || true; }

fetch() {
    if cache_complete; then
        say "kafka $KAFKA_VERSION already fetched ($LIBS)"
        return 0
    fi
    have mvn || die "mvn not found (apt-get install -y maven)"
    mkdir -p "$STATE_DIR"
    # One fetch at a time per version; a second caller waits and then finds the cache.
    exec 8>"$STATE_DIR/.kafka-$KAFKA_VERSION.fetch.lock"
    flock -w 900 8 || die "another fetch of kafka $KAFKA_VERSION is still running"
    if cache_complete; then
        say "kafka $KAFKA_VERSION fetched by another kafka.sh meanwhile ($LIBS)"
        return 0
    fi
    # Holding the lock, any leftover temp dir is from an interrupted fetch.
    rm -rf "$STATE_DIR/.kafka-$KAFKA_VERSION.fetch."*/ 2>/dev/null || true

    # Fetch into a temp dir next to the cache and rename it into place only when
    # complete: an interrupted fetch never leaves a cache dir that looks usable.
    FETCH_TMP=$(mktemp -d "$STATE_DIR/.kafka-$KAFKA_VERSION.fetch.XXXXXX")
    write_fetch_pom "$FETCH_TMP/pom.xml"
    say "fetching kafka $KAFKA_VERSION and its runtime dependencies with mvn (log: $FETCH_LOG)"
    local start=$SECONDS
    if ! (cd "$FETCH_TMP" && mvn -q -B dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$FETCH_TMP/libs") >"$FETCH_LOG" 2>&1; then
        log_tail "$FETCH_LOG" 30
        die "mvn could not fetch kafka $KAFKA_VERSION (log: $FETCH_LOG; try another KAFKA_VERSION?)"
    fi
    local jar
    for jar in "kafka_2.13-$KAFKA_VERSION.jar" "kafka-clients-$KAFKA_VERSION.jar" \
        "kafka-tools-$KAFKA_VERSION.jar" "log4j-slf4j-impl-$LOG4J_VERSION.jar"; do
        [[ -f $FETCH_TMP/libs/$jar ]] || die "mvn finished but $jar is missing (log: $FETCH_LOG)"
    done
    rm -rf "$FETCH_TMP/target"
    write_tools_log4j "$FETCH_TMP/tools-log4j2.properties"
    echo "$KAFKA_VERSION" >"$FETCH_TMP/.complete"
    # Something incomplete in the way (an older layout, a hand-made dir): set it aside.
    if [[ -e $CACHE_DIR ]]; then
        rm -rf "$CACHE_DIR.old"
        mv -T "$CACHE_DIR" "$CACHE_DIR.old"
        rm -rf "$CACHE_DIR.old"
    fi
    mv -T "$FETCH_TMP" "$CACHE_DIR"
    FETCH_TMP=""
    say "fetched kafka $KAFKA_VERSION in $((SECONDS - start))s: $(ls "$LIBS" | wc -l) jars, $(du -sh "$LIBS" | cut -f1) in $LIBS"
}

# ------------------------------------------------------------ config/format

write_config() {
    mkdir -p "$DATA_DIR"
    local tmp="$CONF.tmp.$$"
    cat >"$tmp" <<EOF
# Written by scripts/kafka.sh on every start; edits here are lost.
# Single-node KRaft: this one process is the broker and the (only) controller.
process.roles=broker,controller
node.id=1

# Static quorum of one voter. Unlike the dynamic quorum (controller.quorum.bootstrap.servers
# plus 'format --standalone'), no controller address is baked into the metadata log at
# format time, so the same dir can later be started with another --port.
controller.quorum.voters=1@$HOST:$CTRL_PORT

# Loopback only. PLAINTEXT is what clients (and the broker itself) use; CONTROLLER is
# the KRaft quorum listener, which must not be advertised to clients.
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CTRL_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER

# Topic data and the metadata log (__cluster_metadata) live in the instance dir.
log.dirs=$DATA_DIR

# Topics created on first use (the services rely on it) get 3 partitions, so tests see
# partitioning and consumer-group assignment as in production.
auto.create.topics.enable=true
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
delete.topic.enable=true

# Internal topics default to replication factor 3 and would never be created on one
# broker (consumer groups and transactions would hang). Fewer partitions than the
# default 50 make the first group/transaction/share-group use quicker.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=10

# A consumer group rebalances at once instead of waiting 3 s for more members.
group.initial.rebalance.delay.ms=0

# Sized for a small dev/test machine (2 cores), not for throughput.
num.network.threads=2
num.io.threads=4
background.threads=4
num.recovery.threads.per.data.dir=1
# The log cleaner (which compacts __consumer_offsets) allocates this on the heap;
# the 128 MiB default is a sixth of the whole heap here.
log.cleaner.dedupe.buffer.size=16777216
# Test data is small: keep 1 GiB segments from being the unit of retention.
log.segment.bytes=104857600
EOF
    mv -f "$tmp" "$CONF"

    # The broker logs at INFO to stdout, which start() sends to kafka.log. Without a
    # config, log4j2 would only print errors and the "Kafka Server started" line
    # start() waits for would never appear. The request logger is chatty at INFO.
    tmp="$LOG4J_CONF.tmp.$$"
    cat >"$tmp" <<'EOF'
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
    mv -f "$tmp" "$LOG4J_CONF"
}

# A random cluster id in Kafka's format (base64url of 16 bytes, no padding), without
# starting a JVM for `StorageTool random-uuid`. Like Kafka, avoid a leading '-' (it
# would read as an option on a command line).
random_cluster_id() {
    local id
    while :; do
        id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
        [[ ${#id} -eq 22 && $id != -* ]] && break
    done
    echo "$id"
}

format_storage() {
    if [[ -f $DATA_DIR/meta.properties ]]; then
        return 0
    fi
    local java cid
    java=$(java_bin)
    cid=$(random_cluster_id)
    local -a heap
    read -r -a heap <<<"$KAFKA_TOOL_HEAP"
    say "formatting $DATA_DIR (KRaft, cluster id $cid)"
    # kafka.tools.StorageTool is what bin/kafka-storage.sh runs. With a static quorum
    # (controller.quorum.voters) it takes a --cluster-id and no --standalone.
    # --ignore-formatted: harmless if a concurrent run formatted it first.
    if ! "$java" "${heap[@]}" -Dlog4j2.configurationFile="$CACHE_DIR/tools-log4j2.properties" \
        -cp "$LIBS/*" kafka.tools.StorageTool format \
        --config "$CONF" --cluster-id "$cid" --ignore-formatted >>"$LOG_FILE" 2>&1; then
        log_tail "$LOG_FILE"
        die "formatting $DATA_DIR failed (log: $LOG_FILE)"
    fi
}

# ------------------------------------------------------------- start/stop

# ready PID: the broker logged that it started (which KafkaRaftServer does only after
# the broker registered with the controller and was unfenced) and answers ApiVersions.
ready() {
    grep -q 'Kafka Server started' "$LOG_FILE" 2>/dev/null && kafka_answers "$HOST" "$PORT"
}

wait_ready() {
    local pid=$1 deadline=$((SECONDS + START_TIMEOUT))
    until ready; do
        if ! alive "$pid"; then
            log_tail "$LOG_FILE" 30
            rm -f "$PID_FILE"
            die "broker exited during start-up (log: $LOG_FILE)"
        fi
        if ((SECONDS >= deadline)); then
            log_tail "$LOG_FILE" 30
            die "broker (pid $pid) not ready on $HOST:$PORT after ${START_TIMEOUT}s; left running, stop it with: $0 stop --port $PORT --dir $INSTANCE_DIR (log: $LOG_FILE)"
        fi
        sleep 0.5
    done
}

# How many partition directories of test topics the broker holds.
test_partitions() {
    [[ -d $DATA_DIR ]] || { echo 0; return; }
    find "$DATA_DIR" -mindepth 1 -maxdepth 1 -type d -regextype posix-extended \
        -regex ".*/${TEST_TOPICS}-[0-9]+" | wc -l
}

# Deletes every test topic through the running broker (the controller removes them in the
# background).
prune_test_topics() {
    local n
    n=$(test_partitions)
    ((n > KAFKA_MAX_TEST_PARTITIONS)) || return 0
    say "deleting the test topics ($n partitions left behind by tests; limit $KAFKA_MAX_TEST_PARTITIONS)"
    (tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:$PORT" \
        --delete --if-exists --topic "$TEST_TOPICS") >>"$LOG_FILE" 2>&1 ||
        say "could not delete the test topics (see $LOG_FILE); continuing"
}

start() {
    set_instance
    lock_instance
    local pid
    pid=$(instance_pid)
    if [[ -n $pid ]]; then
        # Ours, and running (maybe still starting up, e.g. launched by a concurrent call).
        wait_ready "$pid"
        say "already running on $HOST:$PORT (pid $pid, dir $INSTANCE_DIR)"
        prune_test_topics
        return 0
    fi
    local left
    left=$(test_partitions)
    if ((left > KAFKA_MAX_TEST_PARTITIONS)); then
        # A stopped broker cannot delete topics, and loading them all would exhaust the
        # open-files limit again: start from an empty state (the services recreate their
        # topics; a `kommerce up` database's stored consumer positions then point past the
        # new topics' ends — drop those databases too, or run `kommerce migrate` afresh).
        say "starting from an empty state: $left test-topic partitions would exhaust the open-files limit"
        rm -rf "$DATA_DIR"
    fi
    if port_open "$HOST" "$PORT"; then
        kafka_answers "$HOST" "$PORT" ||
            die "something listens on $HOST:$PORT but does not answer as a Kafka broker; pick another --port"
        say "a Kafka broker (not started from $INSTANCE_DIR) already answers on $HOST:$PORT; reusing it"
        return 0
    fi
    port_open "$HOST" "$CTRL_PORT" &&
        die "controller port $HOST:$CTRL_PORT is in use; pick another --port or --controller-port"

    fetch
    local java
    java=$(java_bin)
    write_config
    [[ -f $LOG_FILE ]] && mv -f "$LOG_FILE" "$LOG_FILE.1" # keep one previous run's log
    format_storage

    local -a heap opts
    read -r -a heap <<<"$KAFKA_HEAP"
    read -r -a opts <<<"${KAFKA_OPTS:-}"
    echo "=== $(date -u +%FT%TZ) kafka.sh: starting kafka $KAFKA_VERSION on $HOST:$PORT (controller $CTRL_PORT)" >>"$LOG_FILE"
    local t0=$SECONDS
    # setsid + nohup: the broker outlives this script and the caller's terminal/session
    # (Ctrl-C in the caller does not reach it). In this non-interactive shell the
    # background subshell is not a process group leader, so setsid execs in place and
    # $! is the JVM's pid. G1 settings are those of bin/kafka-run-class.sh; a broker
    # out of heap exits instead of limping on.
    (
        cd "$INSTANCE_DIR"
        # Not the lock fds: the broker would hold the instance lock for its lifetime.
        exec 8>&- 9>&-
        exec setsid nohup "$java" "${heap[@]}" \
            -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
            -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
            -Dlog4j2.configurationFile="$LOG4J_CONF" \
            ${opts[@]+"${opts[@]}"} \
            -cp "$LIBS/*" kafka.Kafka "$CONF" \
            </dev/null >>"$LOG_FILE" 2>&1
    ) &
    pid=$!
    echo "$pid" >"$PID_FILE"
    wait_ready "$pid"
    say "started kafka $KAFKA_VERSION on $HOST:$PORT in $((SECONDS - t0))s (pid $pid, controller $HOST:$CTRL_PORT, dir $INSTANCE_DIR, log $LOG_FILE)"
}

stop() {
    set_instance
    lock_instance
    local pid
    pid=$(instance_pid)
    if [[ -z $pid ]]; then
        say "not running (dir $INSTANCE_DIR)"
        return 0
    fi
    # SIGTERM runs Kafka's shutdown hook: controlled shutdown, then logs are flushed
    # and closed cleanly, so the next start skips log recovery.
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_for "$STOP_TIMEOUT" bash -c "! { st=\$(awk '{print \$3}' /proc/$pid/stat 2>/dev/null) && [[ \$st != Z ]]; }"; then
        say "pid $pid still running ${STOP_TIMEOUT}s after SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        wait_for 10 bash -c "! { st=\$(awk '{print \$3}' /proc/$pid/stat 2>/dev/null) && [[ \$st != Z ]]; }" ||
            die "pid $pid survived SIGKILL"
    fi
    rm -f "$PID_FILE"
    say "stopped (pid $pid, dir $INSTANCE_DIR)"
}

status() {
    set_instance
    local pid
    pid=$(instance_pid)
    if [[ -n $pid ]]; then
        if kafka_answers "$HOST" "$PORT"; then
            say "running on $HOST:$PORT (pid $pid, dir $INSTANCE_DIR)"
        else
            say "pid $pid runs from $INSTANCE_DIR but $HOST:$PORT does not answer (starting? other --port?)"
            return 1
        fi
    elif kafka_answers "$HOST" "$PORT"; then
        say "not running from $INSTANCE_DIR, but a Kafka broker answers on $HOST:$PORT"
    else
        say "not running (dir $INSTANCE_DIR)"
        return 3
    fi
}

format_cmd() {
    set_instance
    lock_instance
    fetch
    write_config
    if [[ -f $DATA_DIR/meta.properties ]]; then
        say "already formatted ($DATA_DIR)"
    else
        format_storage
        say "formatted $DATA_DIR"
    fi
}

# tool CLASS [ARGS...]: e.g. org.apache.kafka.tools.TopicCommand,
# org.apache.kafka.tools.ConsoleProducer, org.apache.kafka.tools.consumer.ConsoleConsumer,
# org.apache.kafka.tools.consumer.group.ConsumerGroupCommand.
tool() {
    (($# >= 1)) || die "tool: name a Java class, e.g. org.apache.kafka.tools.TopicCommand"
    fetch >/dev/null
    local java
    java=$(java_bin)
    local -a heap
    read -r -a heap <<<"$KAFKA_TOOL_HEAP"
    exec 8>&- 9>&- # a long-running tool must not hold the fetch lock
    exec "$java" "${heap[@]}" -Dlog4j2.configurationFile="$CACHE_DIR/tools-log4j2.properties" \
        -cp "$LIBS/*" "$@"
}

# ------------------------------------------------------------------- main

main() {
    local cmd="" arg
    while (($#)); do
        arg=$1
        shift
        case $arg in
        -h | --help)
            usage
            exit 0
            ;;
        --port | --controller-port | --dir)
            (($#)) || die "$arg needs a value"
            case $arg in
            --port) PORT=$1 ;;
            --controller-port) CTRL_PORT=$1 ;;
            --dir) INSTANCE_DIR=$1 ;;
            esac
            shift
            ;;
        --port=*) PORT=${arg#*=} ;;
        --controller-port=*) CTRL_PORT=${arg#*=} ;;
        --dir=*) INSTANCE_DIR=${arg#*=} ;;
        start | stop | fetch | status | format)
            [[ -z $cmd ]] || die "more than one command ('$cmd', '$arg')"
            cmd=$arg
            ;;
        tool)
            [[ -z $cmd ]] || die "more than one command ('$cmd', 'tool')"
            cmd=tool
            break # the rest is the class and its arguments
            ;;
        *)
            usage >&2
            die "unknown argument '$arg'"
            ;;
        esac
    done
    [[ $PORT =~ ^[0-9]+$ ]] && ((PORT > 0 && PORT < 65536)) || die "bad --port '$PORT'"
    CTRL_PORT=${CTRL_PORT:-$((PORT + 1000))}
    [[ $CTRL_PORT =~ ^[0-9]+$ ]] && ((CTRL_PORT > 0 && CTRL_PORT < 65536 && CTRL_PORT != PORT)) ||
        die "bad controller port '$CTRL_PORT'"
    INSTANCE_DIR=${INSTANCE_DIR:-$STATE_DIR/kafka}

    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    case ${cmd:-start} in
    start) start ;;
    stop) stop ;;
    fetch) fetch ;;
    status) status ;;
    format) format_cmd ;;
    tool) tool "$@" ;;
    esac
}

main "$@"; exit $? # one line: safe if this file is edited while running
