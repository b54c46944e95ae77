#!/usr/bin/env bash
# bench/run.sh - run every benchmark and write bench/RESULTS.md
#
# usage: bench/run.sh BUILD_DIR      (make bench runs: bench/run.sh build/rel)
#
# Each benchmark is a program BUILD_DIR/bench/NAME (from bench/NAME.c) that writes its
# own section to $BENCH_OUT/NAME.md; this script runs them one after the other (the
# machine is small: they must not overlap), then writes bench/RESULTS.md: a header
# describing the machine and the software, then the sections.  A benchmark added by a
# later issue only needs its bench/NAME.c (programs listed in helpers below are run by
# the benchmarks, not as benchmarks).  The broker is started when it is not
# running, and stopped at the end only if this script started it.
#
# Environment: BENCH_RECORDS (100000: records of the throughput input), BENCH_ONLY
# (run only the benchmarks whose names contain it; RESULTS.md is then not replaced;
# when they are all "standalone" below, the broker and the input are not set up),
# and the knobs each benchmark documents (BENCH_REPS, BENCH_CALLS, ...).
set -u
build=${1:?usage: bench/run.sh BUILD_DIR}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

export TS_BROKERS=${TS_BROKERS:-127.0.0.1:${KAFKA_PORT:-9092}}
export BENCH_OUT=$top/build/bench
export BENCH_PRODUCE=$top/bin/tracesift-produce
export BENCH_RECORDS_FILE=$BENCH_OUT/records.jsonl
records=${BENCH_RECORDS:-100000}
only=${BENCH_ONLY:-}
# The order of the sections in RESULTS.md; benchmarks not listed follow by name.
order=(caller throughput latency memory sampler sampler-rss eval_judge)
# Programs the benchmarks run, not benchmarks themselves.
helpers=(passthrough)
# Benchmarks that need neither the broker nor the throughput input (eval_judge
# talks to a fake HTTP server): when BENCH_ONLY picks only these, neither is set up.
standalone=(eval_judge)

say() { printf '%% bench: %s\n' "$*" >&2; }

started_broker=0
stop_broker() {
	if [ "$started_broker" = 1 ]; then
		deploy/kafka/kafka.sh down >/dev/null 2>&1 || true
		started_broker=0
	fi
	rm -f "$BENCH_RECORDS_FILE" "$BENCH_RECORDS_FILE.keyed"
}
trap stop_broker EXIT
trap 'exit 130' INT TERM

mkdir -p "$BENCH_OUT"

needs_broker=1
if [ -n "$only" ]; then
	needs_broker=0
	for p in "$build"/bench/* bench/py-overhead.py; do
		[ -x "$p" ] && [ -f "$p" ] || continue
		name=$(basename "$p")
		[[ $name == *$only* ]] || continue
		[[ " ${standalone[*]} ${helpers[*]} " == *" $name "* ]] || needs_broker=1
	done
fi

if [ "$needs_broker" = 1 ] && ! deploy/kafka/kafka.sh status >/dev/null 2>&1; then
	if out=$(deploy/kafka/kafka.sh up 2>&1); then
		grep -q 'kafka: started' <<<"$out" && started_broker=1
		say "$(grep '^kafka:' <<<"$out")"
	else
		echo "$out" >&2
		echo "% ERROR: cannot start the local broker" >&2
		exit 1
	fi
fi
kafka_status=$( [ "$needs_broker" = 1 ] && deploy/kafka/kafka.sh status 2>/dev/null)
kafka_version=$(sed -n 's/.*kafka \([0-9][0-9.]*\)[,)].*/\1/p' <<<"$kafka_status")

# The throughput input: tracesift-loadgen's synthetic RAG traffic, or (if loadgen is
# not built) bench/gen-records.py's simpler stand-in.
if [ "$needs_broker" = 0 ]; then
	input_desc="(not made: BENCH_ONLY=$only needs no input)"
elif [ -x bin/tracesift-loadgen ]; then
	input_desc="\`tracesift-loadgen -n $records --seed 1 --start 2026-01-01T00:00:00Z\`"
	bin/tracesift-loadgen -n "$records" --seed 1 --start 2026-01-01T00:00:00Z >"$BENCH_RECORDS_FILE" ||
		{ echo "% ERROR: tracesift-loadgen failed" >&2; exit 1; }
else
	input_desc="\`bench/gen-records.py $records 1\` (tracesift-loadgen was not built)"
	python3 bench/gen-records.py "$records" 1 >"$BENCH_RECORDS_FILE" ||
		{ echo "% ERROR: bench/gen-records.py failed" >&2; exit 1; }
fi

# The sampler benchmark's Python baseline (bench/py_sampler.py) needs confluent-kafka: a
# venv in build/bench-venv, made once (pip fetches it from PyPI).  Without it the sampler
# benchmark runs without the Python comparison and says so.
if [ -z "$only" ] || [[ sampler == *$only* ]]; then
	venv=$top/build/bench-venv
	pin=2.16.1
	has_pin() { "$venv/bin/python" -c "import confluent_kafka as c, sys; sys.exit(c.version() != '$pin')" 2>/dev/null; }
	if ! has_pin; then
		say "making $venv with confluent-kafka $pin"
		{ python3 -m venv "$venv" && "$venv/bin/pip" install -q "confluent-kafka==$pin"; } >&2 ||
			say "cannot make $venv: the sampler benchmark leaves out the Python sampler"
	fi
	if has_pin; then
		export BENCH_PYTHON=$venv/bin/python
		BENCH_PYTHON_VERSIONS=$("$BENCH_PYTHON" -c 'import platform, confluent_kafka as c
print("Python %s, confluent-kafka %s with its own librdkafka %s" % (platform.python_version(), c.version(), c.libversion()[0]))')
		export BENCH_PYTHON_VERSIONS
	fi
fi

# Every benchmark program, in section order.
progs=()
for name in "${order[@]}"; do
	[ -x "$build/bench/$name" ] && progs+=("$build/bench/$name")
done
for p in "$build"/bench/*; do
	[ -x "$p" ] && [ -f "$p" ] || continue
	name=$(basename "$p")
	[[ " ${order[*]} ${helpers[*]} " == *" $name "* ]] || progs+=("$p")
done

# bench/py-overhead.py (the Python package): @tracesift.track against opik's @track and a
# hand-written confluent-kafka producer, in a venv made once in build/py-bench-venv
# (PyPI); without the venv its section says it did not run.
if [ -z "$only" ] || [[ py-overhead.py == *$only* ]]; then
	pyvenv=$top/build/py-bench-venv
	if ! "$pyvenv/bin/python" -c 'import opik, confluent_kafka' 2>/dev/null; then
		say "making $pyvenv with opik and confluent-kafka"
		{ python3 -m venv "$pyvenv" && "$pyvenv/bin/pip" install -q "opik==2.2.122" "confluent-kafka==2.16.1"; } >&2 ||
			say "cannot make $pyvenv (python3-venv, PyPI): the py-overhead section says so"
	fi
	[ -x "$pyvenv/bin/python" ] && export BENCH_PY_PYTHON=$pyvenv/bin/python
	progs+=("$top/bench/py-overhead.py")
fi

failed=()
sections=()
t_start=$(date +%s)
for p in "${progs[@]}"; do
	name=$(basename "$p")
	[ -n "$only" ] && [[ $name != *$only* ]] && continue
	rm -f "$BENCH_OUT/$name.md"
	say "running $name"
	t0=$(date +%s)
	timeout --kill-after=10 900 "$p" 2> >(tee "$BENCH_OUT/$name.log" >&2)
	rc=$?
	say "$name: exit status $rc, $(( $(date +%s) - t0 )) s"
	if [ "$rc" != 0 ]; then
		failed+=("$name")
		if [ ! -s "$BENCH_OUT/$name.md" ]; then
			printf '## %s\n\nFAILED (exit status %d) before writing results; see build/bench/%s.log.\n\n' \
				"$name" "$rc" "$name" >"$BENCH_OUT/$name.md"
		else
			printf '**%s exited with status %d: some runs failed (see build/bench/%s.log).**\n\n' \
				"$name" "$rc" "$name" >>"$BENCH_OUT/$name.md"
		fi
	fi
	sections+=("$BENCH_OUT/$name.md")
done
elapsed=$(( $(date +%s) - t_start ))

if [ -n "$only" ]; then
	say "BENCH_ONLY=$only: sections in $BENCH_OUT, bench/RESULTS.md left as it was"
	cat "${sections[@]}" 2>/dev/null
	[ ${#failed[@]} = 0 ]
	exit
fi

pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
rev=$(git rev-parse --short HEAD 2>/dev/null || echo "no commit")
dirty=$(git status --porcelain 2>/dev/null | grep -q . && echo " + uncommitted changes" || true)

{
	echo "# Benchmark results"
	echo
	echo "Written by \`make bench\` (bench/run.sh); do not edit by hand: rerun it.  How to read"
	echo "the figures and what each benchmark compares: bench/README.md.  The machine is small"
	echo "and shared, so every comparison runs candidate and baseline interleaved in the same run"
	echo "and quotes medians of several repetitions; ratios are the meaningful figures."
	echo
	echo "| | |"
	echo "| --- | --- |"
	echo "| date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
	echo "| source | $rev$dirty |"
	echo "| CPU | $(nproc) cores ($cpu) |"
	echo "| memory | $mem |"
	echo "| kernel | $(uname -sr) |"
	echo "| compiler | $(${CC:-cc} --version | head -n 1), -O2 |"
	echo "| librdkafka | $(pkg-config --modversion rdkafka 2>/dev/null || echo ?) (Debian $(pkgver librdkafka1)) |"
	echo "| zstd | $(pkgver libzstd1) |"
	echo "| kcat | $(pkgver kcat) |"
	echo "| Kafka | ${kafka_version:-?}, one local KRaft node at $TS_BROKERS, replication factor 1, on the same machine |"
	echo "| throughput input | $input_desc |"
	echo "| total time | ${elapsed} s |"
	echo
	if [ ${#failed[@]} -gt 0 ]; then
		echo "**Failed: ${failed[*]}** (logs in build/bench/)."
		echo
	fi
	cat "${sections[@]}"
} >bench/RESULTS.md.tmp && mv bench/RESULTS.md.tmp bench/RESULTS.md
say "wrote bench/RESULTS.md (${elapsed} s)"

[ ${#failed[@]} = 0 ]
