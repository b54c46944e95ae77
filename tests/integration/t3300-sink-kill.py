#!/usr/bin/env python3
"""tests/integration/t3300-sink-kill.py - every item exactly once in the store across 20 kill -9s"""
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tslib as T  # noqa: E402

N = 100000
N_A = 40010            # dataset a: batches of 50 with triggers (800 full, one partial of 10)
BATCH = 50
KILLS = 20
STREAM_S = 25          # the stream arrives at an even pace over this long, while the sink is killed
SEED = 3300

RECS = T.records(N, seed=SEED)
A = T.sink_messages(RECS[:N_A], "mon-a", BATCH, seed=SEED)
B = T.sink_messages(RECS[N_A:], "mon-b", seed=SEED)
# partition 0: dataset a in sampler order; partitions 1 and 2: dataset b, alternating
MSGS = {0: [T.dumps(m).encode() for m in A],
        1: [T.dumps(m).encode() for m in B[0::2]],
        2: [T.dumps(m).encode() for m in B[1::2]]}
PART_OF = {line: p for p, lines in MSGS.items() for line in lines}


def sink_opts(rnd):
    """Each run its own commit size, compression level and segment size: the store
    must take over what a run with other limits left."""
    return ["--commit-interval-ms", "100", "--commit-items", str(rnd.choice([500, 2000, 5000])),
            "--zstd-level", str(rnd.choice([1, 3, 9, 15])), "--segment-items", str(rnd.choice([1000, 3000, 7000]))]


def check_store(store, topic, final):
    """The store holds exactly the items of the messages below its offsets,
    each once, in each partition's order, with the batches their triggers
    closed.  final: also every item of the topic, and nothing left over."""
    st, offs = T.store_expect(store, topic, MSGS, at_end=final)
    ds = st["datasets"]
    torn = os.path.exists(os.path.join(store, "MANIFEST.tmp")) or any(
        size > committed for d in ds.values() for _, committed, size in d["segments"])
    n = sum(len(d["lines"]) for d in ds.values())
    if final:
        a, b = ds["mon-a"], ds["mon-b"]
        assert len(a["lines"]) == N_A and len(b["lines"]) == N - N_A
        ids = [json.loads(l)["id"] for l in a["lines"] + b["lines"]]
        assert set(ids) == {r["trace_id"] for r in RECS}, "ids are not the records' ids"
        assert len(a["batches"]) == N_A // BATCH + 1 and a["batches"][-1]["partial"] and \
            a["batches"][-1]["size"] == N_A % BATCH and not a["open"], "last batches %r, open %r" % (
                a["batches"][-2:], a["open"])
        assert not b["batches"] and not b["open"], "mon-b has batches"
    return offs, n, torn


def producer(topic, errors):
    try:
        T.produce_paced(topic, MSGS, STREAM_S, key=lambda l: "mon-a" if PART_OF[l] == 0 else "mon-b")
    except Exception as e:  # noqa: BLE001 - reported by the case
        errors.append(e)


def kill9_twenty_times_mid_stream():
    topic = T.create_topic(T.topic("sink-kill"), 3, max_message_bytes=4194304)
    dlq = T.create_topic(T.topic("sink-kill-dlq"), 1)
    store = T.workfile("store-kill")
    rnd = random.Random(SEED)
    errors = []
    prod = threading.Thread(target=producer, args=(topic, errors), daemon=True)
    prod.start()
    s = T.Sink(store, topic, dlq, extra=sink_opts(rnd), name="kill").start()
    mid = early = torn_tails = 0
    for k in range(KILLS):
        # once this run has consumed something, at a random point after
        T.wait_until("the sink to consume (run %d)" % (k + 1),
                     lambda: s.consumed() > 0 or not s.alive() or
                     (not prod.is_alive() and T.store_offsets(store, topic) == T.end_offsets(topic, 3)), 120)
        time.sleep(rnd.uniform(0.0, 0.8))
        assert s.alive(), "sink died: " + s.stderr()[-2000:]
        consumed = s.consumed()
        s.kill9()
        offs, n, torn = check_store(store, topic, final=False)
        torn_tails += torn
        behind = prod.is_alive() or offs != T.end_offsets(topic, 3)
        mid += behind
        T.note("kill %d: this run consumed %d, the store holds %d items, offsets %s%s%s" %
               (k + 1, consumed, n, offs, "" if behind else " (caught up)", " (in a commit)" if torn else ""))
        s = T.Sink(store, topic, dlq, extra=sink_opts(rnd), name="kill").start()
        if k % 4 == 3:
            # and now and then one more while it starts: opening the store, cutting torn tails
            time.sleep(rnd.uniform(0.0, 0.3))
            s.kill9()
            check_store(store, topic, final=False)
            early += 1
            s = T.Sink(store, topic, dlq, extra=sink_opts(rnd), name="kill").start()
    prod.join()
    assert not errors, "producing: %r" % errors
    ends = T.end_offsets(topic, 3)
    assert sum(ends.values()) == sum(len(x) for x in MSGS.values()), "the topic holds %r" % ends
    T.wait_until("the store to reach the end of the topic %r" % ends,
                 lambda: T.store_offsets(store, topic) == ends or not s.alive(), 120)
    assert s.alive(), "sink died: " + s.stderr()[-2000:]
    time.sleep(0.5)
    assert s.stop() == 0, "SIGTERM: " + s.stderr()[-2000:]
    assert "stopped cleanly" in s.stderr()
    assert s.stats().get("dead_lettered") == 0, s.stats()
    offs, n, _ = check_store(store, topic, final=True)
    T.note("%d kills, %d of them with the sink behind the stream, and %d more while it started; %d items, "
           "offsets %s; %d kills came in a commit (torn tail or MANIFEST.tmp left)" %
           (KILLS, mid, early, n, offs, torn_tails))
    assert mid >= KILLS // 2, "only %d kills landed while the stream was going on" % mid
    assert not T.store_modes(store), "modes: %s" % T.store_modes(store)


T.run(kill9_twenty_times_mid_stream)
T.exit()
