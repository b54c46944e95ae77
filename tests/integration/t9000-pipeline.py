#!/usr/bin/env python3
"""tests/integration/t9000-pipeline.py - end to end: 10,000 loadgen traces → sampler → sink →
evaluator; exact batch and run counts, every selected trace in its dataset once, a score (or a
recorded error) for every item and metric, and the selection equal to an independent oracle"""
import json
import math
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import evalib  # noqa: E402
import tslib  # noqa: E402
from tslib import BIN, BROKERS, note, timeout, wait_until, workfile  # noqa: E402

N = 10000
SEED = 42
CLASSES = [("errors", ["when = error", "rate = 1.0", "dataset = incidents"]),
           ("slow-first-token", ["when = ttft_ms > 1500", "rate = 0.5", "dataset = latency"]),
           ("default", ["rate = 0.05", "dataset = monitoring"])]


def expected(recs):
    """{dataset: [trace ids selected]} as docs/sampling.md defines it, computed here again."""
    out = {"incidents": [], "latency": [], "monitoring": []}
    for r in recs:
        ttft = (r.get("latency_ms") or {}).get("time_to_first_token")
        if r.get("error") is not None:
            ds, rate = "incidents", 1.0
        elif ttft is not None and ttft > 1500:
            ds, rate = "latency", 0.5
        else:
            ds, rate = "monitoring", 0.05
        if tslib.draw(SEED, r["trace_id"]) < rate:
            out[ds].append(r["trace_id"])
    return out


def ten_thousand_traces_end_to_end():
    lines = subprocess.run([os.path.join(BIN, "tracesift-loadgen"), "-n", str(N), "--seed", "9",
                            "--start", "2026-11-01T00:00:00Z"], capture_output=True, check=True,
                           timeout=timeout(300)).stdout.decode().splitlines()
    recs = [json.loads(l) for l in lines]
    want = expected(recs)
    note("expected: %s" % {k: len(v) for k, v in want.items()})
    t = tslib.sampler_topics("e2e", partitions=3, with_batches=True)
    conf = tslib.sampler_conf(t, {"seed": SEED, "batch.size": 50, "batch.max.wait.ms": 3000}, CLASSES)
    sampler = tslib.Sampler(conf).start()
    store = workfile("e2e-store")
    sink = tslib.Sink(store, t["output"], tslib.create_topic(tslib.topic("e2e-sdlq"), 1)).start()
    wait_until("the store", lambda: os.path.exists(os.path.join(store, "MANIFEST")), 60)
    ev = evalib.Evaluator(store, ["-b", "", "-s", "poll.ms=200"]).start()
    tslib.produce(t["input"], lines)
    batches = {ds: math.ceil(len(ids) / 50) for ds, ids in want.items()}
    total_runs = sum(batches.values())

    def finished():
        return sum(1 for s in evalib.runs(store).values() if s) >= total_runs or not ev.alive()
    wait_until("%d evaluation runs" % total_runs, finished, 600)
    assert ev.alive(), ev.stderr()[-2000:]
    for p in (ev, sink, sampler):
        assert p.stop() == 0, p.stderr()[-2000:]

    # every selected trace in its dataset exactly once, nothing else
    for ds, ids in want.items():
        got = [json.loads(l)["id"] for l in subprocess.run(
            [os.path.join(BIN, "tracesift-dataset"), "--store", store, "cat", ds],
            capture_output=True, check=True, text=True).stdout.splitlines()]
        assert len(got) == len(set(got)), "%s: an item twice" % ds
        assert set(got) == set(ids), "%s: %d stored, %d expected, %d missing, %d extra" % (
            ds, len(got), len(ids), len(set(ids) - set(got)), len(set(got) - set(ids)))
    # exact batch and run counts: batches of 50 and one partial tail per dataset
    runs = evalib.runs(store)
    assert len(runs) == total_runs, (len(runs), batches)
    for ds, n in batches.items():
        mine = {rid: s for rid, s in runs.items() if s["dataset"] == ds}
        assert sorted(mine) == ["%s@b%06d" % (ds, b) for b in range(1, n + 1)], sorted(mine)
        sizes = [mine["%s@b%06d" % (ds, b)]["items"] for b in range(1, n + 1)]
        assert sizes == [50] * (n - 1) + [len(want[ds]) - 50 * (n - 1)], sizes
        assert sorted(evalib.evaluated(store, ds)) == list(range(1, n + 1))
    # a score or a recorded error for every item and metric, once
    metrics = None
    for rid, s in runs.items():
        metrics = metrics or set(s["aggregates"])
        pairs = [(l["item"], l["metric"]) for l in evalib.scores(store, rid)]
        assert len(pairs) == len(set(pairs)) == s["items"] * len(metrics), rid
        for l in evalib.scores(store, rid):
            assert (l["score"] is None) == ("error" in l), l
    assert len(metrics) == 7, metrics


evalib.run(ten_thousand_traces_end_to_end)
tslib.exit()
