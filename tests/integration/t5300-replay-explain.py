#!/usr/bin/env python3
"""tests/integration/t5300-replay-explain.py - --explain-sampling agrees with the hash oracle and with a real sampler and sink"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tslib as T  # noqa: E402

N = 2000
SEED = 4242
BASE_MS = 1795687200000
RECS = T.records(N, seed=5300, tag_every=10)
LINES = [T.dumps(r) for r in RECS]
TS = [BASE_MS + i * 100 for i in range(N)]
# invalid records the sampler dead-letters: one in the window, one before it
BAD = {600: '{"v":1,"trace_id":"%s","name":"x"}' % ("ef" * 16), 100: "{oops"}

CLASSES = [
    ("errors", ["when = error", "rate = 1.0", "dataset = incidents"]),
    ("picked", ["when = tag = pick", "rate = 1.0", "limit = 5/s"]),
    ("slow", ["when = latency_ms > 2000", "rate = 0.5", "dataset = latency"]),
    ("enterprise", ["when = metadata.user_tier = enterprise", "rate = 0.2"]),
    ("default", ["rate = 0.05"]),
]
RATE = {"errors": 1.0, "picked": 1.0, "slow": 0.5, "enterprise": 0.2, "default": 0.05}
DATASET = {"errors": "incidents", "picked": "monitoring", "slow": "latency", "enterprise": "monitoring",
           "default": "monitoring"}
FROM_MS, TO_MS = TS[300], TS[1700]


def classify(r):
    if r["error"] is not None:
        return "errors"
    if "pick" in r["tags"]:
        return "picked"
    if r["latency_ms"]["total"] > 2000:
        return "slow"
    if r["metadata"]["user_tier"] == "enterprise":
        return "enterprise"
    return "default"


def selected(r, seed):
    return T.draw(seed, r["trace_id"]) < RATE[classify(r)]


IN_WINDOW = [r for r, ts in zip(RECS, TS) if FROM_MS <= ts < TO_MS]

# the pipeline: records with known timestamps -> tracesift-sampler -> tracesift-sink -> a store
TOPICS = {"input": T.create_topic(T.topic("rp-ex-in"), 3, retention_ms=-1),
          "output": T.create_topic(T.topic("rp-ex-out"), 3, retention_ms=-1),
          "dlq": T.create_topic(T.topic("rp-ex-dlq"), 1), "group": T.topic("rp-ex-g")}
msgs = []
for i, (r, line) in enumerate(zip(RECS, LINES)):
    msgs.append((i % 3, TS[i], r["trace_id"], line))
    if i in BAD:
        msgs.append((i % 3, TS[i], "", BAD[i]))
T.produce_at(TOPICS["input"], msgs)
CONF = T.sampler_conf(TOPICS, {"seed": SEED, "batch.size": 0}, CLASSES)
CONF_PATH = T.workfile("sampler.conf")
with open(CONF_PATH, "w") as f:
    f.write(CONF)
STORE = T.workfile("store")


def run_pipeline():
    s = T.Sampler(CONF, name="explain").start()
    T.wait_until("the sampler to classify all %d records" % N,
                 lambda: '"classified":%d,' % N in s.stderr() or not s.alive(), 120)
    assert s.stop() == 0 and "stopped cleanly" in s.stderr(), s.stderr()[-2000:]
    items = T.items_of(T.consume(TOPICS["output"]))
    # the output is transactional: its end offsets count commit markers the
    # sink never sees as messages, so wait for the items themselves
    sink = T.Sink(STORE, TOPICS["output"], T.create_topic(T.topic("rp-ex-sdlq"), 1), name="explain").start()
    T.wait_until("the sink to store %d items" % len(items),
                 lambda: sink.stats().get("items") == len(items) or not sink.alive(), 120)
    assert sink.stop() == 0, sink.stderr()[-2000:]
    T.note("the sampler selected %d items: %s" % (len(items), {c: sum(1 for i in items if i["class"] == c)
                                                              for c in RATE}))
    return items


ITEMS = run_pipeline()
RECORDED = {i["id"]: i for i in ITEMS}


def explain(*args, check=True):
    return T.replay(["-t", TOPICS["input"], "--from", str(FROM_MS), "--to", str(TO_MS),
                     "--explain-sampling", CONF_PATH] + list(args), check=check)


def json_lines(p):
    out = [json.loads(l) for l in p.stdout.decode().splitlines()]
    assert out and out[-1]["type"] == "summary", "the last line is not the summary"
    return out[:-1], out[-1]


def decisions_match_the_hash_oracle():
    lines, summary = json_lines(explain("--json"))
    by_id = {d["trace_id"]: d for d in lines if d["decision"] != "dead_letter"}
    assert set(by_id) == {r["trace_id"] for r in IN_WINDOW}, "%d decisions, %d traces in the window" % (
        len(by_id), len(IN_WINDOW))
    for r in IN_WINDOW:
        d, c = by_id[r["trace_id"]], classify(r)
        want = T.draw(SEED, r["trace_id"])
        assert d["draw"] == want, "%s: draw %r, the oracle says %r" % (r["trace_id"], d["draw"], want)
        assert d["class"] == c and d["dataset"] == DATASET[c] and d["rate"] == RATE[c] and d["seed"] == SEED, d
        sel = want < RATE[c]
        assert d["decision"] == (("selected_unless_limited" if c == "picked" else "selected") if sel
                                 else "not_selected"), d
        assert d["reproducible"] == (c != "picked") and d["limit"] == ("5/s" if c == "picked" else None), d
        assert "recorded" not in d, "recorded decisions without a source"
    dead = [d for d in lines if d["decision"] == "dead_letter"]
    assert [(d["trace_id"], d["reason"]) for d in dead] == [("ef" * 16, "schema")], dead
    assert summary["traces"] == len(IN_WINDOW) + 1 and summary["dead_lettered"] == {"count": 1, "by_reason":
                                                                                      {"schema": 1}}
    for c in summary["classes"]:
        mine = [r for r in IN_WINDOW if classify(r) == c["class"]]
        assert c["traces"] == len(mine) and c["would_select"] == sum(selected(r, SEED) for r in mine), c
        assert c["recorded_selected"] is None and c["mismatches"] is None


def the_sampler_and_the_store_agree():
    """Against what the sink stored: no mismatch, and as many selected per class."""
    for source in (["--store", STORE], ["--monitoring-topic", TOPICS["output"]]):
        lines, summary = json_lines(explain("--json", *source))
        assert summary["mismatch_count"] == 0, "%s: %s" % (source[0], summary["mismatches"][:5])
        for c in summary["classes"]:
            rec = [r for r in IN_WINDOW if classify(r) == c["class"] and r["trace_id"] in RECORDED]
            assert c["recorded_selected"] == len(rec), (source[0], c)
        # what the pipeline did, checked here too: every reproducible class selected
        # exactly the oracle's set, the rate-limited one a part of it
        for r in IN_WINDOW:
            c, d = classify(r), next(x for x in lines if x["trace_id"] == r["trace_id"])
            rec = RECORDED.get(r["trace_id"])
            assert d["recorded"]["selected"] == (rec is not None)
            if c != "picked":
                assert (rec is not None) == selected(r, SEED), r["trace_id"]
            elif rec is not None:
                assert selected(r, SEED)
        if source[0] == "--store":
            assert summary["recorded"] == "store '%s' datasets 'incidents', 'monitoring', 'latency'" % STORE, \
                summary["recorded"]
    picked = [r for r in IN_WINDOW if classify(r) == "picked"]
    kept = sum(1 for r in picked if r["trace_id"] in RECORDED)
    T.note("class picked (limit 5/s): %d traces would be selected, the sampler kept %d" % (len(picked), kept))
    assert kept < len(picked), "the rate limit dropped nothing: the case proves nothing about it"
    text = explain("--store", STORE).stdout.decode()
    assert " MISMATCH: " not in text and "mismatches: 0" in text, text[-3000:]
    assert "selected_unless_limited" in text and "recorded=not_selected" in text


def another_seed_shows_exactly_the_differences():
    lines, summary = json_lines(explain("--json", "--store", STORE, "--seed", str(SEED + 1)))
    want = set()
    for r in IN_WINDOW:
        c, rec = classify(r), r["trace_id"] in RECORDED
        again = selected(r, SEED + 1)
        if (rec and not again) or (again and not rec and c != "picked"):
            want.add(r["trace_id"])
    got = {m["trace_id"] for m in summary["mismatches"]}
    T.note("seed %d instead of %d: %d mismatches" % (SEED + 1, SEED, len(got)))
    assert got == want, "%d mismatches, %d expected; %d differ" % (len(got), len(want), len(got ^ want))
    assert summary["mismatch_count"] == len(want) > 0
    assert {d["trace_id"] for d in lines if d["mismatch"]} == want
    assert summary["recorded_other_seed"] == len(RECORDED), "items recorded with seed %d" % SEED
    text = explain("--summary", "--store", STORE, "--seed", str(SEED + 1)).stdout.decode()
    assert "mismatches: %d" % len(want) in text and "name another seed" in text
    assert sum(1 for l in text.splitlines() if l.startswith("  ") and l.split()[0] in want) == len(want)


def filters_and_summary_only():
    p = explain("--summary", "--tag", "pick")
    text = p.stdout.decode()
    assert text.startswith("sampling decisions of"), "per-trace lines with --summary"
    n = sum(1 for r in IN_WINDOW if "pick" in r["tags"])
    assert "for %d traces" % n in text, text


T.run(decisions_match_the_hash_oracle)
T.run(the_sampler_and_the_store_agree)
T.run(another_seed_shows_exactly_the_differences)
T.run(filters_and_summary_only)
T.exit()
