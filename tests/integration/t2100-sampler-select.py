#!/usr/bin/env python3
"""tests/integration/t2100-sampler-select.py - weighted random selection: rates, exact sets, determinism"""
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tslib as T  # noqa: E402

N = 50000
RECS = T.records(N, seed=2100)
LINES = [T.dumps(r) for r in RECS]
INPUT = T.create_topic(T.topic("sel-in"), 3)
T.produce(INPUT, LINES)

CLASSES = [
    ("errors", ["when = error", "rate = 1.0", "dataset = incidents"]),
    ("slow", ["when = latency_ms > 2000", "rate = 0.5"]),
    ("enterprise", ["when = metadata.user_tier = enterprise", "rate = 0.2"]),
    ("default", ["rate = 0.05"]),
]


def classify(r):
    if r["error"] is not None:
        return "errors", 1.0
    if r["latency_ms"]["total"] > 2000:
        return "slow", 0.5
    if r["metadata"]["user_tier"] == "enterprise":
        return "enterprise", 0.2
    return "default", 0.05


def run_sampler(seed, classes, prefix):
    """Runs a sampler with a new group and output over INPUT; returns its items."""
    t = {"input": INPUT, "output": T.create_topic(T.topic(prefix + "-out"), 3),
         "dlq": T.create_topic(T.topic(prefix + "-dlq"), 1), "group": T.topic(prefix + "-g")}
    s = T.Sampler(T.sampler_conf(t, {"seed": seed, "batch.size": 0}, classes), name=prefix).start()
    T.wait_until("the sampler to read all %d records" % N,
                 lambda: '"classified":%d,' % N in s.stderr() or not s.alive(), 240)
    assert s.stop() == 0, "sampler exit status not 0: " + s.stderr()[-2000:]
    assert "stopped cleanly" in s.stderr()
    return T.items_of(T.consume(t["output"]))


def expected(seed, rate_of):
    return {r["trace_id"] for r in RECS if T.draw(seed, r["trace_id"]) < rate_of(r)[1]}


def single_rate_within_4_sigma():
    items = run_sampler(7, [("default", ["rate = 0.2"])], "sel1")
    ids = [i["id"] for i in items]
    sigma = math.sqrt(N * 0.2 * 0.8)
    T.note("selected %d of %d at 0.2 (expected %d +- %.0f)" % (len(ids), N, N * 0.2, 4 * sigma))
    assert abs(len(ids) - N * 0.2) < 4 * sigma, "selected %d" % len(ids)
    assert len(ids) == len(set(ids)), "duplicates"
    assert set(ids) == expected(7, lambda r: ("default", 0.2)), "not the set the documented hash gives"
    one = items[0]
    assert one["class"] == "default" and one["rate"] == 0.2 and one["seed"] == 7
    assert one["dataset"] == "monitoring" and one["source"]["topic"] == INPUT
    assert one["record"]["trace_id"] == one["id"]


def per_class_rates():
    items = run_sampler(11, CLASSES, "sel2")
    by_class = {}
    for i in items:
        by_class.setdefault(i["class"], []).append(i)
    want = expected(11, classify)
    got = {i["id"] for i in items}
    assert got == want, "%d selected, %d expected, %d differ" % (len(got), len(want), len(got ^ want))
    assert len(got) == len(items), "duplicates"
    for name, rate in (("errors", 1.0), ("slow", 0.5), ("enterprise", 0.2), ("default", 0.05)):
        n_class = sum(1 for r in RECS if classify(r)[0] == name)
        k = len(by_class.get(name, []))
        sigma = math.sqrt(n_class * rate * (1 - rate)) or 0.5
        T.note("class %s: %d of %d at %.2f" % (name, k, n_class, rate))
        assert abs(k - n_class * rate) < 4 * sigma, "class %s: %d of %d" % (name, k, n_class)
    assert all(i["dataset"] == "incidents" for i in by_class["errors"])
    assert all(i["dataset"] == "monitoring" for i in by_class["default"])


def same_config_same_set_other_seed_other_set():
    a = {i["id"] for i in run_sampler(99, CLASSES, "det-a")}
    b = {i["id"] for i in run_sampler(99, CLASSES, "det-b")}
    c = {i["id"] for i in run_sampler(100, CLASSES, "det-c")}
    T.note("runs a/b/c selected %d/%d/%d" % (len(a), len(b), len(c)))
    assert a == b, "two runs with the same seed differ in %d ids" % len(a ^ b)
    assert a != c, "another seed selected the same set"


T.run(single_rate_within_4_sigma)
T.run(per_class_rates)
T.run(same_config_same_set_other_seed_other_set)
T.exit()
