#!/usr/bin/env python3
"""tests/integration/t2110-sampler-eos.py - exactly once under kill -9, several instances and rebalances"""
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tslib as T  # noqa: E402

N = 100000
SEED = 2110
RATE = 0.3
RECS = T.records(N, seed=SEED)
LINES = [T.dumps(r) for r in RECS]
EXPECTED = {r["trace_id"] for r in RECS if T.draw(SEED, r["trace_id"]) < RATE}
CLASSES = [("default", ["rate = %s" % RATE])]


def check_output(t, what):
    items = T.items_of(T.consume(t["output"]))
    ids = [i["id"] for i in items]
    dups = len(ids) - len(set(ids))
    missing = len(EXPECTED - set(ids))
    extra = len(set(ids) - EXPECTED)
    T.note("%s: %d items, expected %d: %d duplicates, %d missing, %d unexpected" %
           (what, len(ids), len(EXPECTED), dups, missing, extra))
    assert dups == 0 and missing == 0 and extra == 0, what


def consumed_all(samplers, t):
    """True once the group has committed offsets at the end of every input partition."""
    out = T.consume(t["output"])
    return len(T.items_of(out)) >= len(EXPECTED)


def kill9_three_times():
    t = T.sampler_topics("eos", partitions=3)
    T.produce(t["input"], LINES)
    conf = T.sampler_conf(t, {"seed": SEED, "batch.size": 0, "commit.interval.ms": 100}, CLASSES)
    rnd = random.Random(7)
    s = T.Sampler(conf, instance=0, name="kill").start()
    for k in range(3):
        # kill it while it works: once it consumes, at a random point after
        T.wait_until("the sampler to consume", lambda: s.consumed() > 0 or not s.alive(), 120)
        time.sleep(rnd.uniform(0.1, 1.5))
        assert s.alive(), "sampler died: " + s.stderr()[-2000:]
        T.note("killing it after it consumed %d" % s.consumed())
        s.kill9()
        T.note("killed with SIGKILL (%d)" % (k + 1))
        s = T.Sampler(conf, instance=0, name="kill").start()
    T.wait_until("every expected item", lambda: consumed_all([s], t), 300)
    time.sleep(2)  # anything left to commit twice would show now
    assert s.stop() == 0, s.stderr()[-2000:]
    check_output(t, "after 3 kills")


def three_instances_and_rebalances():
    t = T.sampler_topics("eos3", partitions=6)
    T.produce(t["input"], LINES[: N // 2])
    conf = T.sampler_conf(t, {"seed": SEED, "batch.size": 0}, CLASSES)
    a = T.Sampler(conf, instance=1, name="inst").start()
    b = T.Sampler(conf, instance=2, name="inst").start()
    time.sleep(2)
    c = T.Sampler(conf, instance=3, name="inst").start()   # joins: rebalance
    T.produce(t["input"], LINES[N // 2:])
    time.sleep(1.5)
    assert b.stop() == 0, b.stderr()[-2000:]                # leaves: rebalance, commits on revoke
    time.sleep(1)
    a.kill9()                                               # dies: its partitions move after the session timeout
    a = T.Sampler(conf, instance=1, name="inst").start()   # and it comes back, fencing its zombie
    T.wait_until("every expected item", lambda: consumed_all([a, c], t), 300)
    time.sleep(2)
    assert a.stop() == 0 and c.stop() == 0
    check_output(t, "3 instances")


T.run(kill9_three_times)
T.run(three_instances_and_rebalances)
T.exit()
