#!/usr/bin/env bash
# tests/integration/t1100-produce-cli.sh - tracesift-produce: every good line once, byte for byte; bad lines reported
set -u
. "$(dirname "$0")/../lib.sh"

produce=$TS_BIN/tracesift-produce
t_workdir t1100

# gen N FIRST: N valid records, ids from FIRST
gen() {
	python3 - "$1" "$2" <<'PY'
import json, sys
n, first = int(sys.argv[1]), int(sys.argv[2])
for i in range(first, first + n):
    rec = {"v": 1, "trace_id": "%032x" % (0xc11 << 64 | i + 1), "name": "cli",
           "project": "t", "start_time": "2026-11-26T10:00:00.000001Z",
           "end_time": "2026-11-26T10:00:01.250000Z",
           "input": {"question": "q%d caf\u00e9 \u6f22\u5b57" % i}, "output": {"answer": "a" * (i % 700)},
           "tags": ["cli"], "metadata": {"i": i}, "spans": []}
    print(json.dumps(rec, ensure_ascii=False, separators=(",", ":")))
PY
}

# 20,000 lines through the CLI arrive exactly once and byte for byte.
case_20000_lines() {
	local topic
	topic=$(t_topic cli) && t_kafka create "$topic" 3 || { t_fail "create topic"; return; }
	gen 20000 0 >"$work/in.jsonl"
	if ! "$produce" -b "$TS_BROKERS" -t "$topic" "$work/in.jsonl" 2>"$work/err"; then
		t_fail "exit status $? ($(cat "$work/err"))"
		return
	fi
	grep -q 'read 20000, sent 20000, invalid 0, failed 0' "$work/err" || { t_fail "summary: $(cat "$work/err")"; return; }
	t_consume "$topic" 30000 >"$work/out.jsonl"
	sort "$work/in.jsonl" >"$work/a"
	sort "$work/out.jsonl" >"$work/b"
	[ "$(wc -l <"$work/b")" = 20000 ] || { t_fail "consumed $(wc -l <"$work/b") records"; return; }
	[ -z "$(uniq -d "$work/b")" ] || { t_fail "duplicates"; return; }
	cmp -s "$work/a" "$work/b" || { t_fail "records differ"; return; }
	t_ok
}

# Bad lines are reported with their line number and reason, not sent; good ones are.
case_bad_input() {
	local topic rc
	topic=$(t_topic clibad) && t_kafka create "$topic" 1 || { t_fail "create topic"; return; }
	gen 5 100 >"$work/good"
	{
		sed -n 1p "$work/good"
		echo '{"v":1, not json'
		sed -n 2p "$work/good"
		sed -n 3p "$work/good" | sed 's/"v":1/"v":2/'
		python3 -c 'import sys; sys.stdout.write("{\"v\":1,\"pad\":\"" + "x" * 5_000_000 + "\"}\n")'
		printf '{"v":1,"trace_id":"%s","name":"\xc3\x28"}\n' 0af7651916cd43dd8448eb211c80319c
		echo
		sed -n 4p "$work/good"
		echo '{"v":1,"name":"no id","start_time":"2026-11-26T10:00:00Z","end_time":"2026-11-26T10:00:00Z"}'
		sed -n 5p "$work/good"
	} >"$work/mixed.jsonl"
	"$produce" -b "$TS_BROKERS" -t "$topic" "$work/mixed.jsonl" 2>"$work/err"
	rc=$?
	[ "$rc" = 1 ] || { t_fail "exit status $rc, want 1"; return; }
	local want
	for want in "mixed.jsonl:2: invalid JSON" "mixed.jsonl:4: field 'v'" "mixed.jsonl:5: record is" \
	            "mixed.jsonl:6: invalid UTF-8" "mixed.jsonl:9: field 'trace_id'" \
	            "read 9, sent 4, invalid 5, failed 0"; do
		grep -qF "$want" "$work/err" || { t_fail "stderr lacks '$want': $(head -c 2000 "$work/err")"; return; }
	done
	[ "$(grep -c 'ERROR' "$work/err")" = 5 ] || { t_fail "want 5 error lines: $(cat "$work/err")"; return; }
	t_consume "$topic" 100 | sort >"$work/got"
	sort "$work/good" >"$work/want"
	# line 3 of good was sent with v=2 (invalid), so the delivered set is good minus that line
	grep -vxF "$(sed -n 3p "$work/good")" "$work/want" >"$work/want4"
	[ "$(wc -l <"$work/got")" = 4 ] || { t_fail "consumed $(wc -l <"$work/got"), want 4"; return; }
	cmp -s "$work/got" "$work/want4" || { t_fail "wrong records delivered"; return; }
	t_ok
}

case_empty_and_missing_files() {
	local topic rc
	topic=$(t_topic cliempty) && t_kafka create "$topic" 1 || { t_fail "create topic"; return; }
	: >"$work/empty"
	"$produce" -b "$TS_BROKERS" -t "$topic" "$work/empty" 2>"$work/err"
	rc=$?
	[ "$rc" = 0 ] || { t_fail "empty file: exit $rc"; return; }
	grep -q 'read 0, sent 0' "$work/err" || { t_fail "empty summary: $(cat "$work/err")"; return; }
	gen 3 200 >"$work/three"
	"$produce" -b "$TS_BROKERS" -t "$topic" "$work/nope.jsonl" "$work/three" 2>"$work/err"
	rc=$?
	[ "$rc" = 1 ] || { t_fail "missing file: exit $rc"; return; }
	grep -q "cannot open '$work/nope.jsonl': No such file" "$work/err" || { t_fail "missing: $(cat "$work/err")"; return; }
	[ "$(t_consume "$topic" 100 | wc -l)" = 3 ] || { t_fail "good file after a missing one not delivered"; return; }
	t_ok
}

case_stdin_and_config() {
	local topic
	topic=$(t_topic clistdin) && t_kafka create "$topic" 1 || { t_fail "create topic"; return; }
	printf '# comment\nbootstrap.servers = %s\ntopic = no.such.topic.here\nlinger.ms=5\n' "$TS_BROKERS" >"$work/conf"
	gen 10 300 | "$produce" -c "$work/conf" -t "$topic" -q 2>"$work/err" || { t_fail "stdin + config: $(cat "$work/err")"; return; }
	[ ! -s "$work/err" ] || { t_fail "-q printed: $(cat "$work/err")"; return; }
	[ "$(t_consume "$topic" 100 | wc -l)" = 10 ] || { t_fail "not delivered (-t must override the file)"; return; }
	printf 'bogus.property=1\n' >"$work/badconf"
	"$produce" -c "$work/badconf" -b "$TS_BROKERS" </dev/null 2>"$work/err"
	[ $? = 2 ] && grep -q "bogus.property" "$work/err" || { t_fail "bad config: $(cat "$work/err")"; return; }
	t_ok
}

case_usage_errors() {
	"$produce" --help >"$work/help" 2>&1 || { t_fail "--help exit $?"; return; }
	grep -q 'usage: tracesift-produce' "$work/help" || { t_fail "--help text"; return; }
	"$produce" --bogus </dev/null 2>"$work/err"
	[ $? = 2 ] && grep -q "unknown option '--bogus'" "$work/err" || { t_fail "unknown option"; return; }
	"$produce" -t x </dev/null 2>"$work/err"
	[ $? = 2 ] && grep -q "no brokers" "$work/err" || { t_fail "no brokers: $(cat "$work/err")"; return; }
	"$produce" -b "$TS_BROKERS" -X acks=sometimes </dev/null 2>"$work/err"
	[ $? = 2 ] && grep -q "acks" "$work/err" || { t_fail "bad -X: $(cat "$work/err")"; return; }
	t_ok
}

# An unreachable broker: the CLI gives up after message.timeout.ms and says so.
case_unreachable_broker() {
	local rc start
	gen 50 400 >"$work/fifty"
	start=$(date +%s)
	"$produce" -b 127.0.0.1:19099 -t x -X message.timeout.ms=2000 "$work/fifty" 2>"$work/err"
	rc=$?
	[ "$rc" = 1 ] || { t_fail "exit $rc, want 1"; return; }
	grep -q 'read 50, sent 0, invalid 0, failed 50' "$work/err" || { t_fail "summary: $(cat "$work/err")"; return; }
	[ $(( $(date +%s) - start )) -lt $((30 * TS_TIMEOUT_SCALE)) ] || { t_fail "took too long"; return; }
	t_ok
}

t_run case_20000_lines
t_run case_bad_input
t_run case_empty_and_missing_files
t_run case_stdin_and_config
t_run case_usage_errors
t_run case_unreachable_broker
t_exit
