#!/usr/bin/env python3
"""tests/integration/t2120-sampler-batches.py - triggered batches of exactly N, across kill -9 and 3 instances"""
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tslib as T  # noqa: E402

N_BATCH = 50
# 5,000 records, every 5th tagged "pick": exactly 1,000 selected (rate 1), the rest never.
RECS = T.records(5000, seed=2120, tag_every=5)
LINES = [T.dumps(r) for r in RECS]
PICKED = [r["trace_id"] for r in RECS if "pick" in r["tags"]]
assert len(PICKED) == 1000
CLASSES = [("picked", ["when = tag = pick", "rate = 1.0"]), ("default", ["rate = 0"])]


def check_batches(t, datasets=("monitoring",)):
    msgs = T.consume(t["output"])
    items = [m for m in (__import__("json").loads(x["payload"]) for x in msgs)]
    its = [v for v in items if v["type"] == "item"]
    trig = [v for v in items if v["type"] == "batch"]
    ids = [i["id"] for i in its]
    assert len(ids) == len(set(ids)) == 1000, "%d items, %d distinct" % (len(ids), len(set(ids)))
    assert set(ids) == set(PICKED), "not the picked set"
    full = [b for b in trig if not b["partial"]]
    T.note("%d items, %d trigger records (%d full)" % (len(its), len(trig), len(full)))
    assert len(trig) == 20 and len(full) == 20, "want exactly 20 complete batches, got %d" % len(trig)
    seen = set()
    for b in trig:
        assert b["size"] == N_BATCH and len(b["items"]) == N_BATCH, "batch of %d" % len(b["items"])
        assert not (seen & set(b["items"])), "an item in two batches"
        seen |= set(b["items"])
        members = [i for i in its if i["dataset"] == b["dataset"] and i["batch"] == b["batch"]]
        assert sorted(i["id"] for i in members) == sorted(b["items"]), "trigger and items disagree"
        assert sorted(i["position"] for i in members) == list(range(N_BATCH)), "positions"
    assert seen == set(PICKED), "left out of every batch: %d" % len(set(PICKED) - seen)
    for ds in datasets:
        nums = sorted(b["batch"] for b in trig if b["dataset"] == ds)
        assert nums == list(range(1, len(nums) + 1)), "batch numbers of %s: %s" % (ds, nums)


def twenty_batches_across_kill9():
    t = T.sampler_topics("bat", partitions=3, with_batches=True)
    conf = T.sampler_conf(t, {"seed": 1, "batch.size": N_BATCH}, CLASSES)
    s = T.Sampler(conf, name="bk").start()
    rnd = random.Random(3)
    # chunks of 730 records (146 picks) leave a batch open at every kill, so
    # the state of an open batch must come back from the state topic
    for chunk in range(7):
        T.produce(t["input"], LINES[chunk * 730:(chunk + 1) * 730])
        if chunk in (2, 4):
            T.wait_until("the batcher to work", lambda: s.consumed("batch") > 0 or not s.alive(), 120)
            time.sleep(rnd.uniform(0.0, 0.3))
            T.note("killing it after the batcher consumed %d" % s.consumed("batch"))
            s.kill9()
            s = T.Sampler(conf, name="bk").start()
    T.wait_until("20 batches", lambda: sum(1 for m in T.consume(t["output"]) if '"type":"batch"' in m["payload"]) >= 20, 300)
    time.sleep(1.5)
    assert s.stop() == 0, s.stderr()[-2000:]
    check_batches(t)


def twenty_batches_three_instances():
    t = T.sampler_topics("bat3", partitions=6, with_batches=True)
    conf = T.sampler_conf(t, {"seed": 1, "batch.size": N_BATCH}, CLASSES)
    ss = [T.Sampler(conf, instance=i, name="b3").start() for i in range(3)]
    for chunk in range(7):
        T.produce(t["input"], LINES[chunk * 730:(chunk + 1) * 730])
        if chunk == 3:
            ss[0].kill9()                      # the batcher of the dataset may be this one
            ss[0] = T.Sampler(conf, instance=0, name="b3").start()
    T.wait_until("20 batches", lambda: sum(1 for m in T.consume(t["output"]) if '"type":"batch"' in m["payload"]) >= 20, 300)
    time.sleep(1.5)
    for s in ss:
        assert s.stop() == 0, s.stderr()[-2000:]
    check_batches(t)


def partial_batch_after_max_wait():
    t = T.sampler_topics("batw", partitions=3, with_batches=True)
    conf = T.sampler_conf(t, {"seed": 1, "batch.size": N_BATCH, "batch.max.wait.ms": 1500}, CLASSES)
    s = T.Sampler(conf, name="bw").start()
    T.produce(t["input"], LINES[:600])  # 120 picked: 2 full batches and 20 left over
    T.wait_until("3 trigger records", lambda: sum(1 for m in T.consume(t["output"]) if '"type":"batch"' in m["payload"]) >= 3, 120)
    assert s.stop() == 0
    import json
    trig = [json.loads(m["payload"]) for m in T.consume(t["output"]) if '"type":"batch"' in m["payload"]]
    assert [b["partial"] for b in trig] == [False, False, True], [b["partial"] for b in trig]
    assert trig[2]["size"] == 20 and len(trig[2]["items"]) == 20


T.run(twenty_batches_across_kill9)
T.run(twenty_batches_three_instances)
T.run(partial_batch_after_max_wait)
T.exit()
