#!/usr/bin/env bash
# deploy/kafka/kafka.sh - local single-node Apache Kafka (KRaft) for development and tests
#
#   kafka.sh up | down | status | clean | fetch | libs | run-class CLASS [ARGS...]
#
#   up         fetch Kafka if needed, format the data dir once, start the broker in the
#              background and wait until it answers; prints 'kafka: started ...' or
#              'kafka: already running ...' (exit 0 in both cases)
#   down       stop the broker (SIGTERM, then SIGKILL after KAFKA_STOP_TIMEOUT); no-op if
#              it is not running
#   status     'kafka: running ...' (exit 0), 'kafka: stopped ...' (exit 3), or
#              'kafka: not answering ...' when the process lives but does not answer (exit 1)
#   clean      down, then remove the run dir (data, logs, configuration)
#   fetch      only fetch the Kafka jars into the cache
#   libs       print the cached jar directory (fetching first if needed)
#   run-class  run a Kafka class from the cached jars, e.g.
#              kafka.sh run-class org.apache.kafka.tools.ConsumerGroupCommand --help
#
# Environment (all optional):
#   KAFKA_VERSION          Apache Kafka release to run (default 3.9.1, see docs/kafka.md)
#   KAFKA_PORT             PLAINTEXT listener on 127.0.0.1 (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller listener on 127.0.0.1 (default KAFKA_PORT+1000)
#   TRACESIFT_CACHE        cache root (default ~/.cache/tracesift); jars go to
#                          TRACESIFT_CACHE/kafka-VERSION/libs
#   TRACESIFT_KAFKA_DIR    run dir: data, pid, log, configuration
#                          (default TRACESIFT_CACHE/kafka-run-KAFKA_PORT)
#   KAFKA_START_TIMEOUT    seconds 'up' waits for the broker to answer (default 60)
#   KAFKA_STOP_TIMEOUT     seconds 'down' waits after SIGTERM (default 30)
#   KAFKA_HEAP_OPTS        JVM heap options (default -Xms256m -Xmx512m)
#
# Result lines ('kafka: ...') go to stdout; progress and errors go to stderr.
set -eu

here=$(cd "$(dirname "$0")" && pwd)

version=${KAFKA_VERSION:-3.9.1}
port=${KAFKA_PORT:-9092}
cache=${TRACESIFT_CACHE:-$HOME/.cache/tracesift}
home=$cache/kafka-$version
libs=$home/libs
run=${TRACESIFT_KAFKA_DIR:-$cache/kafka-run-$port}
pidfile=$run/kafka.pid
logfile=$run/kafka.log
addr=127.0.0.1:$port

die() {
    printf '%% ERROR: %s\n' "$*" >&2
    exit 1
}

say() {
    printf '%% %s\n' "$*" >&2
}

[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
    die "bad KAFKA_VERSION '$version' (want e.g. 3.9.1)"
valid_port() {
    [[ $1 =~ ^[0-9]{1,5}$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 65535 ]
}
valid_port "$port" || die "bad KAFKA_PORT '$port'"
cport=${KAFKA_CONTROLLER_PORT:-$((port + 1000))}
valid_port "$cport" || die "bad KAFKA_CONTROLLER_PORT '$cport' (default is KAFKA_PORT+1000)"
[ "$cport" != "$port" ] || die "KAFKA_CONTROLLER_PORT must differ from KAFKA_PORT"
start_timeout=${KAFKA_START_TIMEOUT:-60}
stop_timeout=${KAFKA_STOP_TIMEOUT:-30}

# Kafka 3.x logs through slf4j + reload4j, 4.x through slf4j + log4j 2.
major=${version%%.*}
if [ "$major" -ge 4 ]; then
    logging=log4j2
else
    logging=reload4j
fi

check_java() {
    command -v java >/dev/null 2>&1 ||
        die "java not found; kafka needs java 17 or later: run 'make deps'"
    local v
    v=$(java -version 2>&1 | sed -n 's/.* version "\([0-9][0-9]*\)[."].*/\1/p;q')
    if [ -z "$v" ] || [ "$v" -lt 17 ]; then
        die "java 17 or later needed, found '$(java -version 2>&1 | head -n 1)': run 'make deps'"
    fi
}

# Exclusive locks, so that two 'up' (or an 'up' and a 'down') of one run dir, or two
# fetches of one version, do not interleave: fd 9 holds the run dir's lock, fd 8 the
# fetch lock. The broker must not inherit them (see start()).
lock_run() {
    exec 9>"$run/.lock"
    flock -w 300 9 || die "timed out waiting for lock '$run/.lock'"
}

lock_fetch() {
    exec 8>"$home/.lock"
    flock -w 900 8 || die "timed out waiting for lock '$home/.lock'"
}

fetched() {
    [ -f "$home/.fetched" ] && [ -f "$libs/kafka_2.13-$version.jar" ] &&
        [ -f "$libs/kafka-tools-$version.jar" ] && [ -f "$home/tools-log4j2.properties" ]
}

# Copy kafka_2.13, kafka-tools and a logging backend with their runtime dependencies from
# Maven Central into the cache. The marker is written last, so a fetch that was
# interrupted is redone.
fetch() {
    fetched && return 0
    mkdir -p "$home"
    lock_fetch
    if ! fetched; then
        command -v mvn >/dev/null 2>&1 || die "mvn not found: run 'make deps'"
        say "fetching apache kafka $version from maven central into '$libs'"
        rm -rf "$home/libs.tmp" "$libs" "$home/.fetched"
        if ! mvn -q -B -f "$here/pom.xml" \
            -Dkafka.version="$version" -Dkafka.logging="$logging" \
            -DincludeScope=runtime -DoutputDirectory="$home/libs.tmp" \
            dependency:copy-dependencies >"$home/fetch.log" 2>&1; then
            tail -n 30 "$home/fetch.log" >&2
            die "cannot fetch kafka $version (is it on maven central?); log: '$home/fetch.log'"
        fi
        [ -f "$home/libs.tmp/kafka_2.13-$version.jar" ] ||
            die "maven did not deliver kafka_2.13-$version.jar; log: '$home/fetch.log'"
        mv "$home/libs.tmp" "$libs"
        write_tool_logging
        printf '%s\n' "$version" >"$home/.fetched"
    fi
    exec 8>&-
}

# Command-line tools (StorageTool, TopicCommand...) log warnings and errors to stderr.
write_tool_logging() {
    cat >"$home/tools-log4j.properties" <<'EOF'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
    cat >"$home/tools-log4j2.properties" <<'EOF'
status = warn
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = stderr
EOF
}

# run_class CLASS ARGS...: a short-lived Kafka tool JVM on the cached jars.
run_class() {
    java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
        -Dlog4j.configuration="file:$home/tools-log4j.properties" \
        -Dlog4j2.configurationFile="$home/tools-log4j2.properties" \
        -cp "$libs/*" "$@"
}

# The pid in the pid file, if it is a live broker of this run dir; empty otherwise.
broker_pid() {
    local pid cmd
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile" 2>/dev/null) || return 0
    case $pid in '' | *[!0-9]*) return 0 ;; esac
    kill -0 "$pid" 2>/dev/null || return 0
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 0
    case $cmd in
        *kafka.Kafka\ "$run/server.properties"*) printf '%s\n' "$pid" ;;
    esac
}

# True when a broker answers a metadata request on the PLAINTEXT address.
answers() {
    command -v kcat >/dev/null 2>&1 || die "kcat not found: run 'make deps'"
    timeout 10 kcat -b "$addr" -L -m 3 -q 2>/dev/null | grep -q ' brokers:'
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

run_version() {
    cat "$run/kafka-version" 2>/dev/null || printf '%s\n' "$version"
}

describe() {
    printf 'at %s (pid %s, kafka %s, log %s)' "$addr" "$1" "$(run_version)" "$logfile"
}

write_config() {
    local data=$run/data
    cat >"$run/server.properties" <<EOF
# written by deploy/kafka/kafka.sh on each start: edits here are overwritten
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$data

# one node: every internal topic has one replica
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
min.insync.replicas=1
default.replication.factor=1

# topics are created on purpose (topics.sh, tests), never by a typo
auto.create.topics.enable=false
num.partitions=1
delete.topic.enable=true

# fast tests: no rebalance delay, timed-out transactions aborted within seconds
group.initial.rebalance.delay.ms=0
transaction.abort.timed.out.transaction.cleanup.interval.ms=5000
transaction.remove.expired.transaction.cleanup.interval.ms=60000
transaction.max.timeout.ms=900000

# small local footprint
log.retention.check.interval.ms=60000
log.segment.bytes=268435456
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
EOF
    if [ "$major" -ge 4 ]; then
        cat >>"$run/server.properties" <<'EOF'
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
EOF
    fi

    # Both log4j 1 (3.x) and log4j 2 (4.x) append to kafka.log, where the JVM's own
    # stdout and stderr go as well.
    cat >"$run/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$logfile
log4j.appender.file.Append=true
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.authorizer.logger=WARN
log4j.logger.org.apache.kafka.clients=WARN
EOF
    cat >"$run/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $logfile
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.state.name = state.change.logger
logger.state.level = warn
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = warn
logger.clients.name = org.apache.kafka.clients
logger.clients.level = warn
EOF
}

format() {
    local cid
    [ -f "$run/data/meta.properties" ] && return 0
    cid=$(run_class kafka.tools.StorageTool random-uuid 2>>"$logfile") ||
        die "cannot make a cluster id; log: '$logfile'"
    say "formatting '$run/data' (kafka $version, cluster id $cid)"
    if ! run_class kafka.tools.StorageTool format -t "$cid" \
        -c "$run/server.properties" >>"$logfile" 2>&1; then
        tail -n 20 "$logfile" >&2
        die "cannot format '$run/data'; log: '$logfile'"
    fi
    printf '%s\n' "$version" >"$run/kafka-version"
}

start() {
    local pid i waited
    rm -f "$pidfile"
    # setsid: the broker outlives this shell, make and Ctrl-C in the caller's terminal.
    # The inner shell moves to the run dir (where a JVM crash file would land), writes its
    # own pid, then becomes java (same pid).
    # shellcheck disable=SC2016,SC2086
    setsid bash -c 'cd "$1" && echo $$ >"$0.tmp" && mv -f "$0.tmp" "$0" && shift && exec "$@"' \
        "$pidfile" "$run" nohup java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} \
        -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
        -Djava.awt.headless=true -Dkafka.logs.dir="$run" \
        -Dlog4j.configuration="file:$run/log4j.properties" \
        -Dlog4j2.configurationFile="$run/log4j2.properties" \
        -cp "$libs/*" kafka.Kafka "$run/server.properties" \
        </dev/null >>"$logfile" 2>&1 8>&- 9>&- &

    for i in $(seq 50); do
        [ -s "$pidfile" ] && break
        sleep 0.1
    done
    pid=$(cat "$pidfile" 2>/dev/null) || die "broker did not start; log: '$logfile'"

    say "waiting up to ${start_timeout}s for kafka $version on $addr (pid $pid)"
    waited=0
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$pidfile"
            printf '%% --- last lines of %s ---\n' "$logfile" >&2
            tail -n 40 "$logfile" >&2
            die "kafka exited while starting; log: '$logfile'"
        fi
        answers && break
        if [ "$waited" -ge "$start_timeout" ]; then
            tail -n 20 "$logfile" >&2
            stop_pid "$pid"
            die "kafka did not answer on $addr within ${start_timeout}s; log: '$logfile'"
        fi
        sleep 1
        waited=$((waited + 1))
    done
    printf 'kafka: started %s\n' "$(describe "$pid")"
}

stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq $((stop_timeout * 5))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "kafka pid $pid still alive after ${stop_timeout}s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for i in $(seq 25); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
    fi
    rm -f "$pidfile"
}

cmd_up() {
    local pid i
    check_java
    mkdir -p "$run"
    touch "$run/.tracesift-kafka"
    lock_run
    pid=$(broker_pid)
    if [ -n "$pid" ]; then
        # Alive: it may still be starting (another 'up' that was killed, say).
        i=0
        while ! answers && [ "$i" -lt "$start_timeout" ]; do
            sleep 1
            i=$((i + 1))
        done
        answers || die "kafka pid $pid lives but does not answer on $addr; log: '$logfile'"
        printf 'kafka: already running %s\n' "$(describe "$pid")"
        return 0
    fi
    rm -f "$pidfile"
    if [ -f "$run/kafka-version" ] && [ "$(cat "$run/kafka-version")" != "$version" ]; then
        die "'$run' holds data of kafka $(cat "$run/kafka-version"), not $version; run with KAFKA_VERSION=$(cat "$run/kafka-version") or 'kafka.sh clean' first"
    fi
    if port_in_use "$port"; then
        die "port $port is in use by another process (not the broker of '$run'); stop it or set KAFKA_PORT"
    fi
    if port_in_use "$cport"; then
        die "controller port $cport is in use by another process; set KAFKA_CONTROLLER_PORT"
    fi
    fetch
    # Keep the previous start's log as kafka.log.1.
    [ ! -f "$logfile" ] || mv -f "$logfile" "$logfile.1"
    write_config
    format
    start
}

cmd_down() {
    local pid
    [ -d "$run" ] || {
        printf 'kafka: not running (no run dir %s)\n' "$run"
        return 0
    }
    lock_run
    pid=$(broker_pid)
    if [ -z "$pid" ]; then
        rm -f "$pidfile"
        printf 'kafka: not running (%s)\n' "$addr"
        return 0
    fi
    say "stopping kafka pid $pid"
    stop_pid "$pid"
    printf 'kafka: stopped (was pid %s on %s)\n' "$pid" "$addr"
}

cmd_status() {
    local pid
    pid=$(broker_pid)
    if [ -z "$pid" ]; then
        printf 'kafka: stopped (%s, run dir %s)\n' "$addr" "$run"
        return 3
    fi
    if answers; then
        printf 'kafka: running %s\n' "$(describe "$pid")"
        return 0
    fi
    printf 'kafka: not answering %s\n' "$(describe "$pid")"
    return 1
}

cmd_clean() {
    cmd_down
    [ -d "$run" ] || return 0
    [ -f "$run/.tracesift-kafka" ] ||
        die "'$run' was not made by kafka.sh; not removing it"
    rm -rf "$run"
    printf 'kafka: removed %s\n' "$run"
}

case ${1:-} in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    clean) cmd_clean ;;
    fetch)
        check_java
        fetch
        printf 'kafka: %s in %s\n' "$version" "$libs"
        ;;
    libs)
        fetch
        printf '%s\n' "$libs"
        ;;
    run-class)
        shift
        [ $# -ge 1 ] || die "usage: kafka.sh run-class CLASS [ARGS...]"
        check_java
        fetch
        run_class "$@"
        ;;
    -h | --help | help)
        sed -n '2,/^set -eu/{/^set -eu/d;s/^# \{0,1\}//;p}' "$0"
        ;;
    *)
        printf '%% ERROR: usage: %s up|down|status|clean|fetch|libs|run-class\n' "$0" >&2
        exit 2
        ;;
esac
