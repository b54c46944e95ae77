#!/usr/bin/env python3
"""tests/integration/t2130-sampler-dlq.py - bad records go to the dead-letter topic, the rest goes on"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tslib as T  # noqa: E402

GOOD = T.records(60, seed=2130)
MORE = T.records(20, seed=2131, first=1000)   # published once the bad ones are behind
LIMIT = 1048576                               # max.record.bytes, the default


def bad_records(p, with_large):
    """(reason, key, payload, text the ts-error header holds) for partition p."""
    base = dict(GOOD[0], trace_id="%032x" % (0xbad0000 + p))
    out = [("not_json", "bad-json-%d" % p, b'{"v":1,"trace_id":"' + b"a" * 32 + b'",', "invalid JSON at byte")]
    rec = T.dumps(dict(base, input={"question": "caf\u00e9 MARK"})).encode()
    out.append(("bad_utf8", "bad-utf8-%d" % p, rec.replace(b"\xc3\xa9 MARK", b"\xc3\x28 MARK"),
                "invalid UTF-8 at byte"))
    if with_large:
        big = T.dumps(dict(base, input={"question": "x" * (2 * 1024 * 1024)})).encode()
        out.append(("too_large", "bad-large-%d" % p, big,
                    "record is %d bytes, over the limit of %d" % (len(big), LIMIT)))
    deep = []
    for _ in range(70):
        deep = [deep]
    out.append(("too_deep", "bad-deep-%d" % p, T.dumps(dict(base, input=deep)).encode(),
                "nesting deeper than 64"))
    noid = dict(base)
    del noid["trace_id"]
    out.append(("no_trace_id", "bad-noid-%d" % p, T.dumps(noid).encode(), "field 'trace_id': missing"))
    out.append(("schema", "bad-schema-%d" % p,
                T.dumps(dict(base, usage={"input_tokens": -1, "output_tokens": 1})).encode(),
                "field 'usage.input_tokens'"))
    out.append(("not_json", "bad-null-%d" % p, None, "unexpected end of input"))   # an empty message
    out.append(("not_json", None, b"{oops", "invalid JSON at byte 1"))            # and one without key
    return out


def interleave(p, goods, with_large):
    """good, bad, good, bad, ... good: (key, payload, expected) where expected is
    the record for a good one and (reason, error text) for a bad one.  The last
    good record goes without a key."""
    bads = bad_records(p, with_large)
    seq = []
    for i, r in enumerate(goods):
        key = None if i == len(goods) - 1 else r["trace_id"]
        seq.append((key, T.dumps(r).encode(), r))
        if bads:
            reason, key, payload, text = bads.pop(0)
            seq.append((key, payload, (reason, text)))
    assert not bads, "more bad records than good ones"
    return seq


def bad_records_dead_lettered_good_ones_selected():
    t = T.sampler_topics("dlq", partitions=2)
    metrics_file = T.workfile("dlq.prom")
    seqs = {0: interleave(0, GOOD[:30], True), 1: interleave(1, GOOD[30:], False)}
    for p, seq in seqs.items():
        T.produce_msgs(t["input"], [(k, v) for k, v, _ in seq], partition=p)
    # what the input holds, by (partition, offset): what was published, in order
    inp = T.consume_raw(t["input"])
    expected = {}
    for p, seq in seqs.items():
        got = [m for m in inp if m["partition"] == p]
        assert [(m["key"], m["payload"]) for m in got] == \
               [(k.encode() if k else None, v) for k, v, _ in seq], "input partition %d not as published" % p
        for m, (_, _, what) in zip(got, seq):
            expected[(p, m["offset"])] = (m, what)
    n_bad = sum(1 for m, w in expected.values() if isinstance(w, tuple))
    n_first = len(expected)

    conf = T.sampler_conf(t, {"seed": 3, "batch.size": 0}, [("default", ["rate = 1.0"])])
    s = T.Sampler(conf, name="dlq", extra=["--metrics-file", metrics_file]).start()
    T.wait_until("the sampler to consume the %d records" % n_first,
                 lambda: s.consumed() >= n_first or not s.alive(), 120)
    assert s.alive(), "sampler stopped: " + s.stderr()[-2000:]
    # the partitions go on: records published after the bad ones are selected too
    T.produce_msgs(t["input"], [(r["trace_id"], T.dumps(r)) for r in MORE[:10]], partition=0)
    T.produce_msgs(t["input"], [(r["trace_id"], T.dumps(r)) for r in MORE[10:]], partition=1)
    T.wait_until("the later records", lambda: s.consumed() >= n_first + len(MORE) or not s.alive(), 120)
    assert s.alive(), "sampler stopped: " + s.stderr()[-2000:]
    rc = s.stop()
    assert rc == 0, "sampler exit status %s: %s" % (rc, s.stderr()[-2000:])
    assert "stopped cleanly" in s.stderr()

    # every bad record in the dead-letter topic, whole, with why and where from
    dlq = T.consume_raw(t["dlq"])
    assert len(dlq) == n_bad, "%d dead letters, expected %d" % (len(dlq), n_bad)
    seen = set()
    for d in dlq:
        h = d["headers"]
        assert h.get("ts-source-topic") == t["input"], h
        src = (int(h["ts-source-partition"]), int(h["ts-source-offset"]))
        assert src in expected and src not in seen, "dead letter of %s: not a bad record or twice" % (src,)
        seen.add(src)
        m, what = expected[src]
        assert isinstance(what, tuple), "a good record was dead-lettered: %s %s" % (src, h)
        reason, text = what
        assert h.get("ts-reason") == reason, "%s: reason %r, expected %r" % (src, h.get("ts-reason"), reason)
        assert text in h.get("ts-error", ""), "%s: ts-error %r lacks %r" % (src, h.get("ts-error"), text)
        assert d["key"] == m["key"], "%s: key %r, expected %r" % (src, d["key"], m["key"])
        assert d["payload"] == m["payload"], "%s (%s): payload differs from the original (%s bytes, %s)" % (
            src, reason, None if d["payload"] is None else len(d["payload"]),
            None if m["payload"] is None else len(m["payload"]))

    # every good record selected, once, in the order of its partition
    items = T.items_of(T.consume(t["output"]))
    by_part = {}
    for it in items:
        by_part.setdefault(it["source"]["partition"], []).append(it)
    for p in (0, 1):
        got = [(it["source"]["offset"], it["id"]) for it in by_part.get(p, [])]
        want = sorted((o, w["trace_id"]) for (pp, o), (_, w) in expected.items()
                      if pp == p and not isinstance(w, tuple))
        later = [r["trace_id"] for r in (MORE[:10] if p == 0 else MORE[10:])]
        assert [i for _, i in got[:len(want)]] == [i for _, i in want], "partition %d: items not the good records in order" % p
        assert [i for _, i in got[len(want):]] == later, "partition %d: the later records did not all arrive" % p
        assert [o for o, _ in got] == sorted(o for o, _ in got), "partition %d: items out of order" % p
    for it in items:
        if it["source"]["partition"] in (0, 1) and (it["source"]["partition"], it["source"]["offset"]) in expected:
            assert it["record"] == expected[(it["source"]["partition"], it["source"]["offset"])][1]
    nokey = [s2[-1][2]["trace_id"] for s2 in seqs.values()]
    assert all(any(it["id"] == i for it in items) for i in nokey), "a record without key was not selected"

    # counted: in the stats line and in the metrics file
    want = {}
    for m, w in expected.values():
        if isinstance(w, tuple):
            want[w[0]] = want.get(w[0], 0) + 1
    st = s.stats()
    T.note("dead_lettered %s, selected %s" % (st.get("dead_lettered"), st.get("selected")))
    assert st.get("dead_lettered") == want, "stats dead_lettered %s, expected %s" % (st.get("dead_lettered"), want)
    assert st.get("dead_lettered_total") == n_bad
    assert st["selected"] == {"default": len(expected) - n_bad + len(MORE)}
    prom = T.metrics(metrics_file)
    for reason in ("not_json", "bad_utf8", "too_large", "too_deep", "no_trace_id", "schema"):
        line = 'tracesift_sampler_dead_lettered_total{reason="%s"}' % reason
        assert prom.get(line) == want.get(reason, 0), "%s is %s, expected %d" % (line, prom.get(line), want.get(reason, 0))


def record_over_the_producer_limit_does_not_stop_the_sampler():
    # An input topic that takes records of up to 8 MiB: one of 5 MB is too large
    # for the sampler (max.record.bytes 1 MiB); the dead-letter topic takes it too.
    t = {"input": T.create_topic(T.topic("dlqbig-in"), 1, max_message_bytes=8388608),
         "output": T.create_topic(T.topic("dlqbig-out"), 1, max_message_bytes=8388608),
         "dlq": T.create_topic(T.topic("dlqbig-dlq"), 1, max_message_bytes=16777216),
         "group": T.topic("dlqbig-g")}
    big = T.dumps(dict(GOOD[0], input={"question": "x" * 5000000})).encode()
    T.produce_msgs(t["input"], [(GOOD[1]["trace_id"], T.dumps(GOOD[1])), ("big", big),
                                (GOOD[2]["trace_id"], T.dumps(GOOD[2]))])
    conf = T.sampler_conf(t, {"batch.size": 0})
    s = T.Sampler(conf, name="dlqbig").start()
    T.wait_until("the record after the large one", lambda: s.consumed() >= 3 or not s.alive(), 60)
    if not s.alive():
        first = s.stderr()
        again = T.Sampler(conf, name="dlqbig").start()   # what a supervisor would do
        T.wait_until("the restarted sampler", lambda: again.consumed() >= 3 or not again.alive(), 60)
        raise AssertionError("the sampler exited %s on a too_large record of %d bytes%s: %s" % (
            s.proc.returncode, len(big),
            ", and again after a restart: the partition is stalled" if not again.alive() else "",
            "\n".join(l for l in first.splitlines() if not l.startswith("{"))[-1500:]))
    assert s.stop() == 0, s.stderr()[-2000:]
    ids = [i["id"] for i in T.items_of(T.consume(t["output"]))]
    assert ids == [GOOD[1]["trace_id"], GOOD[2]["trace_id"]], ids
    dlq = T.consume_raw(t["dlq"])
    assert len(dlq) == 1 and dlq[0]["headers"].get("ts-reason") == "too_large", [d["headers"] for d in dlq]


T.run(bad_records_dead_lettered_good_ones_selected)
T.run(record_over_the_producer_limit_does_not_stop_the_sampler)
T.exit()
