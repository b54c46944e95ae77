#!/usr/bin/env bash
# tests/integration/t1200-loadgen.sh - tracesift-loadgen: reproducible, valid, realistic traffic
#
# Run by tests/run.sh (TS_BIN, TS_TOP, TS_BROKERS, TS_TIMEOUT_SCALE); prints one
# "ok - NAME" / "not ok - NAME" line per case and exits non-zero if any failed.
# The last case publishes to a broker when one answers at TS_BROKERS.
set -u
top=${TS_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${TS_BIN:-$top/bin}
lg=$bin/tracesift-loadgen
brokers=${TS_BROKERS:-127.0.0.1:9092}
scale=${TS_TIMEOUT_SCALE:-1}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t1200.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failed=0

ok() { echo "ok - $1"; }
not_ok() {
	echo "not ok - $1"
	failed=1
}
note() { sed 's/^/# /' "$@"; }
# check NAME COMMAND...: one case, its output shown as diagnostics when it fails
check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		printf '%s\n' "$out" | grep '^# ' || true
		ok "$name"
	else
		printf '%s\n' "$out" | note
		not_ok "$name"
	fi
}

if [ ! -x "$lg" ]; then
	echo "# $lg not built"
	not_ok build
	exit 1
fi

# ---- command line -----------------------------------------------------------

help_lists_every_option() {
	"$lg" --help >"$tmp/help" 2>"$tmp/help.err" || { echo "--help exited $?"; return 1; }
	[ -s "$tmp/help.err" ] && { echo "--help wrote to stderr"; return 1; }
	local o
	for o in usage --count --seed --rate --start --brokers --topic -X --project \
	         --error-rate --pii-rate --quiet --verbose --help default: examples:; do
		grep -q -e "$o" "$tmp/help" || { echo "--help does not mention '$o'"; return 1; }
	done
}
check help_lists_every_option help_lists_every_option

bad_arguments_exit_2() {
	local args rc
	while IFS= read -r args; do
		# shellcheck disable=SC2086
		"$lg" $args >"$tmp/bad.out" 2>"$tmp/bad.err"
		rc=$?
		[ "$rc" = 2 ] || { echo "'$args' exited $rc, not 2"; return 1; }
		[ -s "$tmp/bad.out" ] && { echo "'$args' wrote to stdout"; return 1; }
		grep -q '^% ERROR: ' "$tmp/bad.err" || { echo "'$args': no '% ERROR:' on stderr"; return 1; }
	done <<-'EOF'
		--bogus
		-n 5 -z
		-n
		-n -3
		-n abc
		-n 5 extra
		-n 5 --seed x
		-n 5 --rate -1
		-n 5 --error-rate 1.5
		-n 5 --pii-rate nan
		-n 5 --start yesterday
		-n 5 --start 2026-13-01T00:00:00Z
		-n 5 -X linger.ms=1
		-n 5 -t some.topic
		-n 5 -b 127.0.0.1:9 -X novalue
		-n 5 -b 127.0.0.1:9 -X no.such.property=1
		--seed 1
	EOF
}
check bad_arguments_exit_2 bad_arguments_exit_2

# ---- reproducibility -----------------------------------------------------------

same_seed_same_bytes() {
	"$lg" -n 2000 --seed 42 --start 2026-01-01T00:00:00Z >"$tmp/a" || return 1
	"$lg" -n 2000 --seed 42 --start 1767225600000 >"$tmp/b" || return 1
	cmp "$tmp/a" "$tmp/b" || return 1
	[ "$(wc -l <"$tmp/a")" = 2000 ] || { echo "not 2000 lines"; return 1; }
}
check same_seed_same_bytes same_seed_same_bytes

different_seed_different_traffic() {
	"$lg" -n 200 --seed 43 --start 2026-01-01T00:00:00Z >"$tmp/c" || return 1
	head -n 200 "$tmp/a" >"$tmp/a200"
	if cmp -s "$tmp/a200" "$tmp/c"; then
		echo "seeds 42 and 43 gave the same output"
		return 1
	fi
	# not one trace id in common
	python3 - "$tmp/a200" "$tmp/c" <<-'EOF'
		import json, sys
		ids = [{json.loads(l)["trace_id"] for l in open(p)} for p in sys.argv[1:]]
		common = ids[0] & ids[1]
		assert not common, f"{len(common)} trace ids in common"
	EOF
}
check different_seed_different_traffic different_seed_different_traffic

# The start time moves the times and nothing else: same ids, same sizes.
start_moves_only_times() {
	"$lg" -n 300 --seed 42 --start 2030-06-01T12:00:00.5Z >"$tmp/d" || return 1
	python3 - "$tmp/a200" "$tmp/d" <<-'EOF'
		import json, sys
		a = [json.loads(l) for l in open(sys.argv[1])]
		b = [json.loads(l) for l in open(sys.argv[2])][:len(a)]
		for x, y in zip(a, b):
		    assert x["trace_id"] == y["trace_id"], "trace ids differ"
		    assert len(json.dumps(x)) == len(json.dumps(y)), "sizes differ"
		    assert x["input"] == y["input"] and x["output"] == y["output"], "content differs"
		    assert [s["span_id"] for s in x["spans"]] == [s["span_id"] for s in y["spans"]]
		assert b[0]["start_time"] == "2030-06-01T12:00:00.500000Z", b[0]["start_time"]
	EOF
}
check start_moves_only_times start_moves_only_times

# ---- what the traffic looks like ------------------------------------------------

# 2000 records with the default shares: every line a valid trace record with
# the RAG shape, and sizes, errors and personal data as documented.
records_are_valid_rag_traces() {
	python3 - "$tmp/a" <<-'EOF'
		import json, re, statistics, sys
		from datetime import datetime

		HEX32 = re.compile(r"^[0-9a-f]{32}$")
		HEX16 = re.compile(r"^[0-9a-f]{16}$")
		TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
		EMAIL = re.compile(r"[a-z0-9._]+@[a-z.]*example\.(com|org|net)")
		PHONE = re.compile(r"(\+1 \d{3}-555-01\d\d|\(\d{3}\) 555-01\d\d|\+44 20 7946 0\d{3}|\d{3}\.555\.01\d\d)")
		ERRORS = {"RateLimitError", "Timeout", "ContextLengthExceeded"}
		TYPES = {"llm", "retrieval", "tool", "general"}

		def t(s):
		    assert TIME.match(s), f"bad time {s!r}"
		    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")

		sizes, errors, pii, emails, phones, nonascii, ids = [], 0, 0, 0, 0, 0, set()
		for n, line in enumerate(open(sys.argv[1]), 1):
		    where = f"line {n}"
		    raw = line.rstrip("\n").encode()
		    sizes.append(len(raw))
		    r = json.loads(raw)
		    assert r["v"] == 1, where
		    assert HEX32.match(r["trace_id"]), where
		    assert r["trace_id"] not in ids, f"{where}: duplicate trace id"
		    ids.add(r["trace_id"])
		    for k in ("name", "project", "model"):
		        assert isinstance(r[k], str) and r[k], f"{where}: {k}"
		    t0, t1 = t(r["start_time"]), t(r["end_time"])
		    assert t0 <= t1, where
		    q = r["input"]["question"]
		    assert isinstance(q, str) and q, where
		    assert isinstance(r["output"]["context"], list), where
		    assert all(isinstance(c, str) and c for c in r["output"]["context"]), where
		    assert isinstance(r["tags"], list) and "rag" in r["tags"], where
		    assert all(isinstance(x, str) for x in r["tags"]), where
		    md = r["metadata"]
		    assert md["user_tier"] in ("free", "pro", "enterprise"), where
		    for k in ("endpoint", "region", "prompt_version", "user_id"):
		        assert isinstance(md[k], str) and md[k], f"{where}: metadata.{k}"
		    u = r["usage"]
		    assert u["total_tokens"] == u["input_tokens"] + u["output_tokens"], where
		    lat = r["latency_ms"]
		    assert abs(lat["total"] - (t1 - t0).total_seconds() * 1000) < 0.002, where
		    if "time_to_first_token" in lat:
		        assert 0 < lat["time_to_first_token"] <= lat["total"], where

		    spans = {s["span_id"]: s for s in r["spans"]}
		    assert len(spans) == len(r["spans"]) >= 2, f"{where}: span ids"
		    llm_in = llm_out = 0
		    prev_start = t0
		    for s in r["spans"]:
		        sw = f"{where} span {s.get('name')}"
		        assert HEX16.match(s["span_id"]), sw
		        p = s["parent_span_id"]
		        assert p is None or (p in spans and p != s["span_id"]), sw
		        assert s["type"] in TYPES, sw
		        s0, s1 = t(s["start_time"]), t(s["end_time"])
		        assert t0 <= s0 <= s1 <= t1, f"{sw}: times outside the trace"
		        if p is None:
		            assert s0 >= prev_start, f"{sw}: steps out of order"
		            prev_start = s0
		        else:
		            par = spans[p]
		            assert t(par["start_time"]) <= s0 and s1 <= t(par["end_time"]), sw
		        if s["type"] == "llm" and s.get("usage"):
		            su = s["usage"]
		            assert su["total_tokens"] == su["input_tokens"] + su["output_tokens"], sw
		            llm_in += su["input_tokens"]
		            llm_out += su["output_tokens"]
		    assert (llm_in, llm_out) == (u["input_tokens"], u["output_tokens"]), \
		        f"{where}: usage is not the sum of the llm spans"
		    names = [s["name"] for s in r["spans"]]

		    if "cache_hit" not in r["tags"]:
		        for want in ("retrieval", "rerank", "format_prompt", "llm_call"):
		            assert want in names, f"{where}: no {want} span"
		        rt = r["spans"][names.index("retrieval")]
		        docs = rt["output"]["documents"]
		        assert 3 <= len(docs) <= 8, f"{where}: {len(docs)} documents"
		        for d in docs:
		            assert isinstance(d["id"], str) and d["text"] and 0 <= d["score"] <= 1, where
		        llm = r["spans"][names.index("llm_call")]
		        assert llm["type"] == "llm" and llm["model"] == r["model"], where
		        prompt = r["spans"][names.index("format_prompt")]["output"]
		        assert q in prompt, f"{where}: the question is not in the prompt"
		        for c in r["output"]["context"]:
		            assert c in prompt, f"{where}: a context passage is not in the prompt"
		        if llm["error"] is None:
		            assert r["output"]["answer"], where
		            assert llm["usage"]["output_tokens"] > 0, where
		            ll = llm["latency_ms"]
		            assert ll["time_to_first_token"] > 0 and ll["inter_token_mean"] > 0, where
		            assert "time_to_first_token" in lat and "inter_token_mean" in lat, where
		            # tokens follow text sizes (about 4 characters a token)
		            n_out = llm["usage"]["output_tokens"]
		            assert abs(n_out - len(r["output"]["answer"]) / 4) <= 2, where

		    e = r["error"]
		    if e is not None:
		        errors += 1
		        assert e["type"] in ERRORS and isinstance(e["message"], str) and e["message"], where
		        assert r["output"].get("answer", "") == "", f"{where}: an answer despite the error"
		        assert r["spans"][names.index("llm_call")]["error"] == e, where
		    if EMAIL.search(q) or PHONE.search(q):
		        pii += 1
		        emails += bool(EMAIL.search(q))
		        phones += bool(PHONE.search(q))
		        if "cache_hit" not in r["tags"]:
		            prompt = r["spans"][names.index("format_prompt")]["output"]
		            assert q in prompt, where
		    nonascii += not q.isascii()

		n = len(sizes)
		assert n == 2000, f"{n} records"
		med = statistics.median(sizes)
		print(f"# sizes: min {min(sizes)}, median {med:.0f}, max {max(sizes)}; "
		      f"errors {errors}, pii {pii} ({emails} emails, {phones} phones), non-ASCII {nonascii}")
		assert min(sizes) >= 1000, f"smallest record {min(sizes)} bytes"
		assert max(sizes) <= 25000, f"largest record {max(sizes)} bytes"
		assert 3000 <= med <= 8000, f"median size {med}"
		assert max(sizes) >= 2.0 * med, "no long tail"
		assert 0.008 <= errors / n <= 0.035, f"error share {errors / n}"
		assert 0.07 <= pii / n <= 0.13, f"pii share {pii / n}"
		assert emails >= 20 and phones >= 20, "too few emails or phone numbers"
		assert 1 <= nonascii <= 60, f"{nonascii} non-ASCII questions"
	EOF
}
check records_are_valid_rag_traces records_are_valid_rag_traces

# The records also pass the published JSON Schema (when jsonschema is installed).
records_match_the_schema() {
	local schema=$top/docs/trace-v1.schema.json
	if [ ! -f "$schema" ] || ! python3 -c 'import jsonschema' 2>/dev/null; then
		echo "# skipped: no schema or no python3 jsonschema"
		return 0
	fi
	python3 - "$schema" "$tmp/a" <<-'EOF'
		import json, sys, jsonschema
		v = jsonschema.Draft202012Validator(json.load(open(sys.argv[1])))
		for n, line in enumerate(open(sys.argv[2]), 1):
		    err = next(v.iter_errors(json.loads(line)), None)
		    assert err is None, f"line {n}: {err.message[:300]} at {list(err.absolute_path)}"
	EOF
}
check records_match_the_schema records_match_the_schema

shares_follow_the_options() {
	"$lg" -n 500 --seed 7 --error-rate 0 --pii-rate 0 >"$tmp/clean" || return 1
	"$lg" -n 300 --seed 7 --error-rate 1 --pii-rate 1 --project other >"$tmp/dirty" || return 1
	python3 - "$tmp/clean" "$tmp/dirty" <<-'EOF'
		import json, re, sys
		PII = re.compile(r"@[a-z.]*example\.|555[-.]01|7946 0")
		clean = [json.loads(l) for l in open(sys.argv[1])]
		dirty = [json.loads(l) for l in open(sys.argv[2])]
		assert all(r["error"] is None for r in clean), "errors at --error-rate 0"
		assert not any(PII.search(r["input"]["question"]) for r in clean), "pii at --pii-rate 0"
		assert all(r["error"] is not None for r in dirty), "a trace without error at --error-rate 1"
		assert all(PII.search(r["input"]["question"]) for r in dirty), "no pii at --pii-rate 1"
		assert {r["error"]["type"] for r in dirty} == {"RateLimitError", "Timeout", "ContextLengthExceeded"}
		assert all(r["project"] == "other" for r in dirty)
	EOF
}
check shares_follow_the_options shares_follow_the_options

rate_paces_output() {
	local t0 t1
	t0=$(date +%s%N)
	"$lg" -n 30 --rate 100 --seed 1 --start 2026-01-01T00:00:00Z >"$tmp/paced" || return 1
	t1=$(date +%s%N)
	local ms=$(((t1 - t0) / 1000000))
	[ "$ms" -ge 250 ] || { echo "30 records at 100/s took ${ms} ms"; return 1; }
	python3 - "$tmp/paced" <<-'EOF'
		import json, sys
		starts = [json.loads(l)["start_time"] for l in open(sys.argv[1])]
		assert len(starts) == 30
		assert starts[1] == "2026-01-01T00:00:00.010000Z", starts[1]
		assert starts[29] == "2026-01-01T00:00:00.290000Z", starts[29]
	EOF
}
check rate_paces_output rate_paces_output

# ---- publishing -------------------------------------------------------------------

publishes_through_libtracesift() {
	if ! command -v kcat >/dev/null || ! kcat -b "$brokers" -L -m 5 >/dev/null 2>&1; then
		echo "# skipped: no broker answers at $brokers"
		return 0
	fi
	local topic=t1200-loadgen-$$-$RANDOM
	if ! "$top/deploy/kafka/kafka.sh" run-class org.apache.kafka.tools.TopicCommand \
		--bootstrap-server "$brokers" --create --topic "$topic" --partitions 3 \
		--replication-factor 1 >"$tmp/topic.log" 2>&1; then
		note "$tmp/topic.log"
		echo "cannot create topic '$topic'"
		return 1
	fi
	"$lg" -n 300 --seed 9 -b "$brokers" -t "$topic" -X "close.timeout.ms=$((10000 * scale))" \
		>"$tmp/pub.out" 2>"$tmp/pub.err" || { note "$tmp/pub.err"; echo "exit $?"; return 1; }
	[ -s "$tmp/pub.out" ] && { echo "wrote to stdout with -b"; return 1; }
	grep -q '300 generated, 300 enqueued, 300 delivered, 0 failed' "$tmp/pub.err" ||
		{ note "$tmp/pub.err"; echo "no summary"; return 1; }
	timeout $((30 * scale)) kcat -b "$brokers" -C -t "$topic" -e -q -f '%k\n' | sort >"$tmp/keys"
	"$lg" -n 300 --seed 9 | python3 -c '
import json, sys
for l in sys.stdin: print(json.loads(l)["trace_id"])' | sort >"$tmp/want"
	cmp "$tmp/keys" "$tmp/want" || { echo "the topic does not hold the 300 trace ids as keys"; return 1; }
	# a topic that does not exist: nothing delivered, exit status 1
	"$lg" -n 3 --seed 9 -b "$brokers" -t "$topic-missing" -X message.timeout.ms=2000 \
		>/dev/null 2>"$tmp/miss.err"
	local rc=$?
	[ "$rc" = 1 ] || { note "$tmp/miss.err"; echo "undelivered records: exit $rc, not 1"; return 1; }
	grep -q '^% ERROR: .*0 delivered, 3 failed' "$tmp/miss.err" ||
		{ note "$tmp/miss.err"; echo "no error summary"; return 1; }
}
check publishes_through_libtracesift publishes_through_libtracesift

config_file_under_flags() {
	printf '# loadgen settings\ncount = 5\nseed = 42\nstart = 2026-01-01T00:00:00Z\nproject = fromfile\n' >"$tmp/lg.conf"
	"$lg" -c "$tmp/lg.conf" >"$tmp/c1" || return 1
	"$lg" -n 5 --seed 42 --start 2026-01-01T00:00:00Z --project fromfile >"$tmp/c2" || return 1
	cmp "$tmp/c1" "$tmp/c2" || { echo "the file's settings were not applied"; return 1; }
	"$lg" -c "$tmp/lg.conf" -n 2 --project flag >"$tmp/c3" || return 1
	[ "$(wc -l <"$tmp/c3")" = 2 ] && ! grep -q fromfile "$tmp/c3" || { echo "flags do not win over the file"; return 1; }
	printf 'bogus = 1\n' >"$tmp/bad.conf"
	"$lg" -c "$tmp/bad.conf" >/dev/null 2>"$tmp/bad.err"
	[ $? = 2 ] && grep -q "bogus" "$tmp/bad.err" || { echo "a bad file is not refused"; return 1; }
}
check config_file_under_flags config_file_under_flags

exit $failed
