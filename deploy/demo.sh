#!/usr/bin/env bash
# deploy/demo.sh - make demo: the whole pipeline on this machine, then a short report
#
# Starts the local Kafka (if it is not running), makes the topics afresh, starts
# tracesift-sampler (deploy/demo/sampler.conf: batches of 50), tracesift-sink and
# tracesift-evaluator (heuristic metrics; an LLM judge too when TRACESIFT_JUDGE_URL and
# TRACESIFT_JUDGE_MODEL are set, the key in TRACESIFT_JUDGE_API_KEY), publishes synthetic
# traces with tracesift-loadgen, waits until every batch is evaluated, prints a report,
# and stops what it started.  The data stays: the store in DEMO_DIR, the topics in Kafka.
#
# Environment: DEMO_TRACES (3000), DEMO_DIR (./demo-data), DEMO_TIMEOUT (600 s),
# KAFKA_PORT (9092), and the TRACESIFT_JUDGE_* / TRACESIFT_WEBHOOK_URL of the evaluator.
# Note: the llm.* topics of the local broker are deleted and made again at the start, so
# that the report counts this run only.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
n=${DEMO_TRACES:-3000}
dir=${DEMO_DIR:-$top/demo-data}
limit=${DEMO_TIMEOUT:-600}
brokers=127.0.0.1:${KAFKA_PORT:-9092}
bin=$top/bin
started_kafka=0
pids=()

say() { printf '== %s\n' "$*" >&2; }
die() { printf '%% ERROR: %s\n' "$*" >&2; exit 1; }

stop_all() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
	if [ "$started_kafka" = 1 ]; then
		say "stopping the broker this demo started (its data stays)"
		deploy/kafka/kafka.sh down >/dev/null || true
		started_kafka=0
	fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM

for p in tracesift-loadgen tracesift-sampler tracesift-sink tracesift-evaluator tracesift-dataset; do
	[ -x "$bin/$p" ] || die "$bin/$p is missing: run 'make demo' (it builds first)"
done

say "local Kafka"
out=$(deploy/kafka/kafka.sh up) || die "cannot start the local broker"
echo "$out" >&2
grep -q 'kafka: started' <<<"$out" && started_kafka=1

say "topics: deleting and making again llm.* (this run counts only its own traffic)"
deploy/kafka/kafka.sh run-class org.apache.kafka.tools.TopicCommand --bootstrap-server "$brokers" \
	--delete --if-exists --topic 'llm\..*' >/dev/null 2>&1 || true
for _ in $(seq 1 60); do
	left=$(kcat -L -b "$brokers" 2>/dev/null | grep -c 'topic "llm\.' || true)
	[ "$left" = 0 ] && break
	sleep 0.5
done
deploy/kafka/kafka.sh run-class org.apache.kafka.tools.TopicCommand --bootstrap-server "$brokers" --list \
	>/dev/null 2>&1 || true
for _ in 1 2 3 4 5; do
	deploy/kafka/topics.sh -b "$brokers" >/dev/null 2>"$dir.topics.log" && break
	sleep 2    # a topic still being deleted cannot be made yet
done
rm -f "$dir.topics.log"

rm -rf "$dir"
mkdir -p "$dir/logs"
chmod 700 "$dir"
store=$dir/store
run_id=$(date +%s)
group=tracesift-demo-$run_id

say "starting tracesift-sampler, tracesift-sink and tracesift-evaluator (logs in $dir/logs)"
"$bin/tracesift-sampler" -c deploy/demo/sampler.conf -b "$brokers" -s group="$group" \
	--metrics-file "$dir/sampler.prom" 2>"$dir/logs/sampler.log" &
pids+=($!)
"$bin/tracesift-sink" -b "$brokers" --store "$store" --stats-interval-ms 1000 2>"$dir/logs/sink.log" &
pids+=($!)
# the evaluator needs the store the sink makes on start
for _ in $(seq 1 100); do [ -f "$store/MANIFEST" ] && break; sleep 0.1; done
[ -f "$store/MANIFEST" ] || die "the sink did not start: $(tail -n 5 "$dir/logs/sink.log")"
"$bin/tracesift-evaluator" watch --store "$store" -b "$brokers" -s poll.ms=500 \
	>"$dir/logs/evaluator.out" 2>"$dir/logs/evaluator.log" &
pids+=($!)
sleep 1
for p in "${pids[@]}"; do
	kill -0 "$p" 2>/dev/null || die "a service stopped at start; see $dir/logs"
done

say "publishing $n synthetic traces of a RAG service: tracesift-loadgen -b $brokers"
since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
"$bin/tracesift-loadgen" -n "$n" --seed "$run_id" -b "$brokers" -q 2>"$dir/logs/loadgen.log" ||
	die "loadgen failed: $(tail -n 5 "$dir/logs/loadgen.log")"

# --- wait: every trace read by the sampler, every selected item stored, every batch evaluated
prom() {   # the sum of a sampler counter (all label sets)
	awk -v m="$1" 'index($0, m) == 1 { s += $NF } END { print s + 0 }' "$dir/sampler.prom" 2>/dev/null || echo 0
}
status() {
	consumed=$(prom 'tracesift_sampler_consumed_total{stage="select"}')
	selected=$(prom 'tracesift_sampler_selected_total')
	stored=0 open=0 complete=0 evaluated=0
	local ls
	if ls=$("$bin/tracesift-dataset" --store "$store" ls --json 2>/dev/null); then
		read -r stored open complete evaluated < <(jq -r '[.datasets | (map(.items) | add // 0),
			(map(.open) | add // 0), (map(.complete) | add // 0), (map(.evaluated) | add // 0)] | @tsv' <<<"$ls")
	fi
}
t0=$(date +%s)
tty=0
[ -t 2 ] && tty=1
while :; do
	status
	line=$(printf 'sampler read %s/%s, selected %s; sink stored %s; batches: %s open, %s to evaluate, %s evaluated' \
		"$consumed" "$n" "$selected" "$stored" "$open" "$complete" "$evaluated")
	if [ "$tty" = 1 ]; then printf '\r\033[K%s' "$line" >&2; fi
	if [ "$consumed" -ge "$n" ] && [ "$selected" -gt 0 ] && [ "$stored" -ge "$selected" ] &&
	   [ "$open" = 0 ] && [ "$complete" = 0 ] && [ "$evaluated" -gt 0 ]; then
		break
	fi
	for p in "${pids[@]}"; do
		kill -0 "$p" 2>/dev/null || { [ "$tty" = 1 ] && echo >&2; die "a service stopped; see $dir/logs"; }
	done
	if [ $(( $(date +%s) - t0 )) -gt "$limit" ]; then
		[ "$tty" = 1 ] && echo >&2
		die "not done after $limit s ($line); see $dir/logs"
	fi
	[ "$tty" = 1 ] || { [ $(( ($(date +%s) - t0) % 10 )) = 0 ] && echo "$line" >&2; }
	sleep 1
done
[ "$tty" = 1 ] && echo >&2
waited=$(( $(date +%s) - t0 ))
until=$(date -u -d @$(( $(date +%s) + 1 )) +%Y-%m-%dT%H:%M:%SZ)
stop_all

# --- the report (stdout)
runs_json=$("$bin/tracesift-evaluator" runs --json --store "$store")
alerts_json=$("$bin/tracesift-evaluator" alerts --json --store "$store")
nruns=$(grep -c . <<<"$runs_json" || true)
nalerts=$(grep -c . <<<"$alerts_json" || true)
judge=$(head -n 1 <<<"$runs_json" | jq -r '.judge_model // "none"')
echo
echo "tracesift demo report"
echo "====================="
printf 'traces published      %s (tracesift-loadgen, seed %s)\n' "$n" "$run_id"
printf 'traces sampled        %s read by the sampler\n' "$consumed"
echo "selected per class:"
grep '^tracesift_sampler_selected_total' "$dir/sampler.prom" |
	sed 's/.*class="\([^"]*\)"} \(.*\)/\1 \2/' | while read -r cls count; do
		printf '  %-22s %s\n' "$cls" "$count"
	done
echo "datasets (items, batches):"
"$bin/tracesift-dataset" --store "$store" ls --json | jq -r '.datasets[] | "  \(.name)\t\(.items) items\t\(.batches) batches"' |
	expand -t 24
printf 'evaluation runs       %s (one per batch; judge: %s)\n' "$nruns" \
	"$([ "$judge" = none ] && echo 'none - heuristic metrics only; set TRACESIFT_JUDGE_URL/MODEL for LLM-judge metrics' || echo "$judge")"
echo "metrics over every run (items scored; mean, worst run's p90):"
# every run's aggregates, combined: weighted mean, the highest p90
for d in "$store"/evaluations/runs/*/; do cat "$d/summary.json"; done | jq -rs '
	[.[] | .aggregates | to_entries[]] | group_by(.key)[] |
	{m: .[0].key, n: (map(.value.n) | add), e: (map(.value.errors) | add),
	 mean: ((map((.value.mean // 0) * .value.n) | add) / ([(map(.value.n) | add), 1] | max)),
	 p90: (map(.value.p90 // empty) | max)} |
	"  \(.m)\t\(.n)\t\(.e) errors\tmean \(.mean * 1000 | round / 1000)\tp90 \(if .p90 then (.p90 * 1000 | round / 1000) else "-" end)"' |
	expand -t 24,32,44,60
printf 'alerts fired          %s\n' "$nalerts"
jq -r '"  " + .text' <<<"$alerts_json" | head -n 10
echo
echo "the datasets live in   $store"
echo "look further:"
echo "  bin/tracesift-dataset --store $store ls"
echo "  bin/tracesift-dataset --store $store stats monitoring"
echo "  bin/tracesift-evaluator --store $store runs"
echo "  bin/tracesift-evaluator --store $store show $(head -n 1 <<<"$runs_json" | jq -r .run)"
echo "  bin/tracesift-evaluator --store $store alerts"
echo "  bin/tracesift-replay -b $brokers -t llm.traces --from $since --to $until --report"
echo "  bin/tracesift-replay -b $brokers -t llm.traces --from $since --to $until --explain-sampling deploy/demo/sampler.conf --store $store --summary"
echo "  kcat -C -b $brokers -t llm.alerts -e | jq .        (Kafka commands: make kafka-up first if it is stopped)"
echo "(demo took $waited s to drain after publishing; services stopped; data kept)"
