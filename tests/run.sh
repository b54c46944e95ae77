#!/usr/bin/env bash
# tests/run.sh - run unit tests, then integration tests against a local broker
#
# usage: tests/run.sh BUILD_DIR [PATTERN]
# Each test prints "ok - name" / "not ok - name" lines; a test that prints none
# and fails (a crash, a sanitizer report) counts as one failure.  The broker is
# started when it is not running, and stopped at the end only if we started it.
set -u
build=${1:?usage: tests/run.sh BUILD_DIR [PATTERN]}
pattern=${2:-}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

export TS_BROKERS=${TS_BROKERS:-127.0.0.1:${KAFKA_PORT:-9092}}
export TS_TIMEOUT_SCALE=${TS_TIMEOUT_SCALE:-3}
export TS_TOP=$top TS_BIN=$top/bin TS_BUILD=$top/$build
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=99}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=98}
# Debian's python3 first: make deps installs the test modules for it
export PATH="$top/bin:/usr/bin:$PATH"

logdir=$top/build/test-logs
mkdir -p "$logdir"
passed=0 failed=0 failures=()
started_broker=0

stop_broker() {
	if [ "$started_broker" = 1 ]; then
		deploy/kafka/kafka.sh down >/dev/null 2>&1 || true
		started_broker=0
	fi
}
trap stop_broker EXIT
trap 'exit 130' INT TERM

run_one() {
	local t=$1 name log rc ok notok
	name=$(basename "$t")
	name=${name%.*}
	[ -n "$pattern" ] && [[ $name != *$pattern* ]] && return 0
	log=$logdir/$name.log
	case $t in
	*.sh) timeout --kill-after=10 $((600 * TS_TIMEOUT_SCALE)) bash "$t" >"$log" 2>&1 ;;
	*.py) timeout --kill-after=10 $((600 * TS_TIMEOUT_SCALE)) python3 "$t" >"$log" 2>&1 ;;
	*)    timeout --kill-after=10 $((600 * TS_TIMEOUT_SCALE)) "$t" >"$log" 2>&1 ;;
	esac
	rc=$?
	ok=$(grep -c '^ok - ' "$log")
	notok=$(grep -c '^not ok - ' "$log")
	if [ "$rc" != 0 ] && [ "$notok" = 0 ]; then
		notok=1
		echo "not ok - $name: exit status $rc" >>"$log"
	fi
	passed=$((passed + ok))
	failed=$((failed + notok))
	if [ "$notok" != 0 ]; then
		failures+=("$name")
		printf '%-40s FAIL (%d ok, %d failed; log %s)\n' "$name" "$ok" "$notok" "$log"
		sed 's/^/    /' "$log" | tail -n 40
	else
		printf '%-40s ok (%d)\n' "$name" "$ok"
	fi
}

tests_in() {
	local dir=$1 t
	for t in "$build/tests/$dir"/t[0-9]* "tests/$dir"/t[0-9]*.sh "tests/$dir"/t[0-9]*.py; do
		[ -e "$t" ] || continue
		case $t in *.d|*.o) continue ;; esac
		echo "$t"
	done | sort -t/ -k1,1 | awk -F/ '{print $NF "\t" $0}' | sort | cut -f2
}

echo "== unit tests"
for t in $(tests_in unit); do run_one "$t"; done

echo "== integration tests (broker $TS_BROKERS)"
if ! deploy/kafka/kafka.sh status >/dev/null 2>&1; then
	if out=$(deploy/kafka/kafka.sh up 2>&1); then
		echo "$out"
		grep -q 'kafka: started' <<<"$out" && started_broker=1
	else
		echo "$out"
		echo "% ERROR: cannot start the local broker; integration tests not run" >&2
		failed=$((failed + 1))
	fi
fi
if deploy/kafka/kafka.sh status >/dev/null 2>&1; then
	for t in $(tests_in integration); do run_one "$t"; done
fi
stop_broker

if [ ${#failures[@]} -gt 0 ]; then
	echo "failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
