#!/usr/bin/env bash
# deploy/demo.sh - make demo: local broker, synthetic RAG traffic through tracesift-produce, and what arrived
#
# Environment: DEMO_TRACES (default 2000), KAFKA_PORT (default 9092).
set -eu
cd "$(dirname "$0")/.."
n=${DEMO_TRACES:-2000}
brokers=127.0.0.1:${KAFKA_PORT:-9092}
started=0

say() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

cleanup() {
	if [ "$started" = 1 ]; then
		say "stopping the broker this demo started (its data stays)"
		deploy/kafka/kafka.sh down >/dev/null || true
	fi
}
trap cleanup EXIT

say "local Kafka"
out=$(deploy/kafka/kafka.sh up)
echo "$out"
grep -q 'kafka: started' <<<"$out" && started=1
deploy/kafka/topics.sh -b "$brokers" >/dev/null

say "publishing $n synthetic traces: tracesift-loadgen | tracesift-produce -t llm.traces"
since=$(( $(date +%s%3N) - 1000 ))
bin/tracesift-loadgen -n "$n" --seed "$RANDOM" | bin/tracesift-produce -b "$brokers" -t llm.traces

say "reading them back from llm.traces"
got=$(mktemp)
trap 'rm -f "$got"; cleanup' EXIT
timeout 120 kcat -C -b "$brokers" -t llm.traces -o "s@$since" -e -q -f '%s\n' \
	-X isolation.level=read_committed >"$got"
arrived=$(wc -l <"$got")
bytes=$(wc -c <"$got")
printf 'traces published:  %s\n' "$n"
printf 'traces arrived:    %s (%s bytes of JSON, %s bytes on average)\n' "$arrived" "$bytes" "$(( bytes / (arrived > 0 ? arrived : 1) ))"
printf 'with an error:     %s\n' "$(jq -c 'select(.error != null)' "$got" | wc -l)"
echo "per model:"
jq -r '.model // "none"' "$got" | sort | uniq -c | sort -rn | sed 's/^/  /'
echo "one of them (spans shortened):"
head -n 1 "$got" | jq '{trace_id, name, model, start_time, latency_ms, usage, tags,
	question: .input.question, spans: [.spans[] | "\(.type) \(.name)"]}'
echo
echo "look further:  kcat -C -b $brokers -t llm.traces -o -3 -e | jq .        (stop the broker: make kafka-down)"
[ "$arrived" -ge "$n" ]
