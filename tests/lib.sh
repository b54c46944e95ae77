# tests/lib.sh - helpers for test scripts: cases print "ok - NAME" / "not ok - NAME"
#
# A case is a function that ends with t_ok or t_fail "reason"; t_run runs it,
# t_exit exits non-zero when any case failed.  The runner sets TS_BROKERS,
# TS_BIN, TS_BUILD, TS_TOP and TS_TIMEOUT_SCALE.

: "${TS_BROKERS:=127.0.0.1:9092}" "${TS_TOP:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${TS_BIN:=$TS_TOP/bin}" "${TS_BUILD:=$TS_TOP/build/san}" "${TS_TIMEOUT_SCALE:=1}"
t__failed=0
t__case=
t__result=

t_ok() { t__result=ok; }
t_fail() { t__result=fail; echo "# $t__case: $*"; }

t_run() {
	t__case=$1
	t__result=
	"$1"
	if [ "$t__result" = ok ]; then
		echo "ok - $1"
	else
		[ -n "$t__result" ] || echo "# $1: ended without a verdict"
		echo "not ok - $1"
		t__failed=1
	fi
}

t_exit() { exit "$t__failed"; }

# Sets $work to a fresh directory for a test's files, removed at exit.
t_workdir() {
	work=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
	trap 'rm -rf "$work"' EXIT
}

t_topic() { echo "t-$1-$$-$RANDOM$RANDOM"; }

t_kafka() { "$TS_BUILD/tests/tools/t-kafka" "$@"; }

# t_consume TOPIC MAX: the values of the messages now in TOPIC (at most MAX), one per line
t_consume() {
	timeout $((60 * TS_TIMEOUT_SCALE)) kcat -C -b "$TS_BROKERS" -t "$1" -o beginning -c "$2" -e \
		-X isolation.level=read_committed -q -f '%s\n' 2>/dev/null
}
