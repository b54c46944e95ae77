#!/usr/bin/env bash
# deploy/kafka/topics.sh - create tracesift's Kafka topics (idempotent)
#
#   topics.sh [-b BROKERS] [--kafka-topics PATH] [--list]
#
# Creates each topic that does not exist yet, with explicit partitions, retention and
# compression.type=producer (the producer's zstd batches are stored as they come). A topic
# that exists already is left as it is; a partition count other than the wanted one is
# reported. See docs/kafka.md.
#
# --kafka-topics PATH   create them with Kafka's own kafka-topics.sh at PATH
#                       instead of kcat and the Maven-fetched jars (the
#                       apache/kafka image: deploy/compose.yaml runs it so)
# --list                print the table (name partitions retention.ms configs)
#                       after the environment is applied, and do nothing else
#
# Environment (all optional):
#   TS_BROKERS                 bootstrap servers (default 127.0.0.1:KAFKA_PORT, port 9092);
#                              -b wins over it
#   TS_TRACES_PARTITIONS       llm.traces      (default 6, retention 7 days)
#   TS_DLQ_PARTITIONS          llm.traces.dlq  (default 3, retention 30 days)
#   TS_MONITORING_PARTITIONS   llm.monitoring  (default 6, retention 30 days)
#   TS_ALERTS_PARTITIONS       llm.alerts      (default 1, retention 30 days)
#   TS_PENDING_PARTITIONS      llm.monitoring.pending and .state (default 6)
#   TS_REPLICATION_FACTOR      replicas per partition (default 1: the local single node)
#   KAFKA_VERSION, TRACESIFT_CACHE   which cached Kafka jars run TopicCommand (kafka.sh)
#
# Result lines ('topics: ...') go to stdout; progress and errors go to stderr.
set -eu

here=$(cd "$(dirname "$0")" && pwd)

die() {
    printf '%% ERROR: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '2,/^set -eu/{/^set -eu/d;s/^# \{0,1\}//;p}' "$0"
}

brokers=${TS_BROKERS:-127.0.0.1:${KAFKA_PORT:-9092}}
kafka_topics=
list=0
while [ $# -gt 0 ]; do
    case $1 in
        -b)
            [ $# -ge 2 ] || die "-b needs a value"
            brokers=$2
            shift 2
            ;;
        -b*)
            brokers=${1#-b}
            shift
            ;;
        --kafka-topics)
            [ $# -ge 2 ] || die "--kafka-topics needs a path"
            kafka_topics=$2
            shift 2
            ;;
        --list)
            list=1
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *) die "unknown argument '$1' (usage: topics.sh [-b BROKERS] [--kafka-topics PATH] [--list])" ;;
    esac
done

day_ms=86400000
rf=${TS_REPLICATION_FACTOR:-1}
mib=1048576
# name partitions retention.ms other-configs (comma-separated, '-' for none)
# Records may be 1 MiB (max.record.bytes) plus framing; items wrap a record, so
# the topics after the sampler take up to 4 MiB.  The pending and state topics
# are the sampler's own (see docs/sampling.md); state must have at least as
# many partitions as pending.
topics="llm.traces ${TS_TRACES_PARTITIONS:-6} $((7 * day_ms)) max.message.bytes=$((2 * mib))
llm.traces.dlq ${TS_DLQ_PARTITIONS:-3} $((30 * day_ms)) max.message.bytes=$((4 * mib))
llm.monitoring.pending ${TS_PENDING_PARTITIONS:-6} $((7 * day_ms)) max.message.bytes=$((4 * mib))
llm.monitoring.state ${TS_PENDING_PARTITIONS:-6} -1 cleanup.policy=compact
llm.monitoring ${TS_MONITORING_PARTITIONS:-6} $((30 * day_ms)) max.message.bytes=$((4 * mib))
llm.monitoring.dlq ${TS_DLQ_PARTITIONS:-3} $((30 * day_ms)) max.message.bytes=$((4 * mib))
llm.alerts ${TS_ALERTS_PARTITIONS:-1} $((30 * day_ms)) -"

for n in $rf $(printf '%s\n' "$topics" | awk '{print $2}'); do
    case $n in
        '' | *[!0-9]* | 0) die "bad partition or replica count '$n' (want a positive integer)" ;;
    esac
done

if [ "$list" = 1 ]; then
    printf '%s\n' "$topics"
    exit 0
fi

if [ -n "$kafka_topics" ]; then
    [ -x "$kafka_topics" ] || die "'$kafka_topics' is not an executable kafka-topics.sh"
    # Existing topics and their partition counts, from one --describe.
    meta=$("$kafka_topics" --bootstrap-server "$brokers" --describe 2>&1) ||
        die "cannot describe the topics of '$brokers': $(printf '%s\n' "$meta" | tail -n 1)"
    existing=$(printf '%s\n' "$meta" |
        sed -n 's/^Topic: *\([^[:space:]]*\)[[:space:]].*PartitionCount: *\([0-9]*\).*/\1 \2/p')
    create() { "$kafka_topics" --bootstrap-server "$brokers" "$@"; }
else
    command -v kcat >/dev/null 2>&1 || die "kcat not found: run 'make deps'"
    # Existing topics and their partition counts, from one metadata request.
    meta=$(kcat -b "$brokers" -L -m 10 -q 2>&1) ||
        die "cannot read metadata from '$brokers': $(printf '%s\n' "$meta" | tail -n 1 | sed 's/^% ERROR: //')"
    existing=$(printf '%s\n' "$meta" |
        sed -n 's/^ *topic "\([^"]*\)" with \([0-9]*\) partitions:.*/\1 \2/p')
    # TopicCommand runs from the cached Kafka jars; fetch them once, up front.
    "$here/kafka.sh" fetch >/dev/null || die "cannot get the kafka jars (see above)"
    create() { "$here/kafka.sh" run-class org.apache.kafka.tools.TopicCommand --bootstrap-server "$brokers" "$@"; }
fi

rc=0
while read -r name parts retention extra; do
    have=$(printf '%s\n' "$existing" | awk -v t="$name" '$1 == t {print $2}')
    if [ -n "$have" ]; then
        if [ "$have" -ne "$parts" ]; then
            printf "%% warning: topic '%s' has %s partitions, %s wanted; left as it is\n" \
                "$name" "$have" "$parts" >&2
        fi
        printf 'topics: %s exists (%s partitions)\n' "$name" "$have"
        continue
    fi
    configs=(--config "retention.ms=$retention" --config compression.type=producer)
    if [ "$extra" != - ]; then
        IFS=, read -r -a more <<<"$extra"
        for c in "${more[@]}"; do configs+=(--config "$c"); done
    fi
    if create --create --if-not-exists --topic "$name" \
        --partitions "$parts" --replication-factor "$rf" "${configs[@]}" >/dev/null; then
        printf 'topics: %s created (%s partitions, replication %s, retention %s, compression.type=producer%s)\n' \
            "$name" "$parts" "$rf" "$([ "$retention" = -1 ] && echo forever || echo "$((retention / day_ms)) days")" \
            "$([ "$extra" = - ] || echo ", $extra")"
    else
        printf "%% ERROR: cannot create topic '%s' on '%s'\n" "$name" "$brokers" >&2
        rc=1
    fi
done <<EOF
$topics
EOF
exit "$rc"
