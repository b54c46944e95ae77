#!/usr/bin/env python3
"""tests/integration/t5200-replay-report.py - --report: every figure against a computation in Python"""
import datetime
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tslib as T  # noqa: E402

N = 3000
ROWS = T.timed_records(N, seed=5200)      # 90 s apart: three days and more
TOPIC = T.create_topic(T.topic("rp-rep"), 3, retention_ms=-1)
MSGS = [(i % 3, ts, r["trace_id"], T.dumps(r)) for i, (r, ts) in enumerate(ROWS)]
# two invalid records in the window, each in its partition's timestamp order
MSGS[1001:1001] = [(0, ROWS[1000][1], "", "{broken"), (1, ROWS[1000][1] + 1, "", '{"v":1,"trace_id":"%s"}' % ("cd" * 16))]
T.produce_at(TOPIC, MSGS)
FROM_MS, TO_MS = ROWS[150][1], ROWS[2950][1]


def expected(recs):
    """The report replay should print for recs, computed here from the records."""
    def count(keys):
        out = {}
        for k in keys:
            out[k] = out.get(k, 0) + 1
        return out

    def fig(key):
        vals = [r["usage"][key] for r in recs if "usage" in r and key in r["usage"]]
        return {"sum": sum(vals), "count": len(vals), "mean": (sum(vals) / len(vals)) if vals else None}

    def pct(key):
        vals = [r["latency_ms"][key] for r in recs if r.get("latency_ms", {}).get(key) is not None]
        return {"count": len(vals), "p50": T.nearest_rank(vals, 50), "p90": T.nearest_rank(vals, 90),
                "p99": T.nearest_rank(vals, 99)}

    def day(r):
        return datetime.datetime.fromtimestamp(T.tstime_us(r["start_time"]) // 1000000,
                                               datetime.timezone.utc).strftime("%Y-%m-%d")
    tags = []
    for r in recs:
        t = sorted(set(x for x in r.get("tags", []) if isinstance(x, str)))
        tags += t or ["(none)"]
    errs = [r for r in recs if r.get("error") is not None]
    return {
        "traces": len(recs),
        "by_model": count(r["model"] if isinstance(r.get("model"), str) else "(none)" for r in recs),
        "by_tag": count(tags),
        "by_day": count(day(r) for r in recs),
        "errors": {"count": len(errs), "by_type": count(r["error"]["type"] for r in errs)},
        "tokens": {"input": fig("input_tokens"), "output": fig("output_tokens"), "total": fig("total_tokens")},
        "latency_ms": pct("total"),
        "ttft_ms": pct("time_to_first_token"),
    }


def close(a, b, path):
    if isinstance(a, dict) and isinstance(b, dict):
        assert set(a) == set(b), "%s: keys %s, expected %s" % (path, sorted(a), sorted(b))
        for k in a:
            close(a[k], b[k], path + "." + k)
    elif isinstance(b, float) and isinstance(a, (int, float)):
        assert abs(a - b) <= 1e-9 * max(1.0, abs(b)), "%s: %r, expected %r" % (path, a, b)
    else:
        assert a == b, "%s: %r, expected %r" % (path, a, b)


def json_report_matches_python():
    recs = [r for r, ts in ROWS if FROM_MS <= ts < TO_MS]
    p = T.replay(["-t", TOPIC, "--from", str(FROM_MS), "--to", str(TO_MS), "--report", "--json"])
    lines = p.stdout.decode().splitlines()
    assert len(lines) == 1, "stdout holds %d lines, not one JSON object" % len(lines)
    got = json.loads(lines[0])
    want = expected(recs)
    for k, v in want.items():
        close(got[k], v, k)
    assert got["invalid"] == {"count": 2, "by_reason": {"not_json": 1, "schema": 1}}, got["invalid"]
    assert got["in_window"] == len(recs) + 2 and got["filtered_out"] == 0 and got["complete"] is True
    assert got["window"] == {"from": T.rfc3339(FROM_MS * 1000), "to": T.rfc3339(TO_MS * 1000), "by": "timestamp"}
    assert len(got["by_day"]) >= 3, got["by_day"]
    T.note("%d traces over %d days; %d errors; p50/p90/p99 latency %s/%s/%s ms" % (
        got["traces"], len(got["by_day"]), got["errors"]["count"], got["latency_ms"]["p50"],
        got["latency_ms"]["p90"], got["latency_ms"]["p99"]))


def report_after_filters():
    recs = [r for r, ts in ROWS if FROM_MS <= ts < TO_MS and r.get("error") is not None
            and "rag" in r.get("tags", [])]
    p = T.replay(["-t", TOPIC, "--from", str(FROM_MS), "--to", str(TO_MS), "--report", "--json", "--error",
                  "--tag", "rag"])
    got = json.loads(p.stdout)
    for k, v in expected(recs).items():
        close(got[k], v, k)
    assert got["filtered_out"] == sum(1 for _, ts in ROWS if FROM_MS <= ts < TO_MS) - len(recs)


def text_report_says_the_same():
    recs = [r for r, ts in ROWS if FROM_MS <= ts < TO_MS]
    want = expected(recs)
    p = T.replay(["-t", TOPIC, "--from", str(FROM_MS), "--to", str(TO_MS), "--report"])
    text = p.stdout.decode()
    assert text.startswith("replay report: topic '%s'" % TOPIC), text[:200]
    assert "%d traces" % want["traces"] in text
    assert "errors: %d (" % want["errors"]["count"] in text
    assert "invalid: not_json 1, schema 1" in text
    for day, n in want["by_day"].items():
        assert any(l.split()[:2] == [day, str(n)] for l in text.splitlines()), "day %s: %d" % (day, n)
    for model, n in want["by_model"].items():
        assert any(l.split()[:2] == [model, str(n)] for l in text.splitlines()), "model %s: %d" % (model, n)
    tot = [l.split() for l in text.splitlines() if l.strip().startswith("total ") and len(l.split()) == 4]
    assert tot and tot[0][1] == "%d" % want["tokens"]["total"]["sum"], tot
    lat = [l.split() for l in text.splitlines() if l.strip().startswith("total ") and len(l.split()) == 5]
    assert lat and float(lat[0][2]) == round(want["latency_ms"]["p50"], 3), lat


def empty_window_report():
    p = T.replay(["-t", TOPIC, "--from", "2020-01-01", "--to", "2020-01-02", "--report", "--json"])
    got = json.loads(p.stdout)
    assert got["traces"] == 0 and got["latency_ms"] == {"count": 0, "p50": None, "p90": None, "p99": None}
    assert got["tokens"]["total"] == {"sum": 0, "count": 0, "mean": None}


T.run(json_report_matches_python)
T.run(report_after_filters)
T.run(text_report_says_the_same)
T.run(empty_window_report)
T.exit()
