#!/usr/bin/env python3
"""tests/integration/t3303-sink-dedup.py - replays do not double a dataset, archive mode, dead letters, modes"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tslib as T  # noqa: E402

SEED = 3303
BATCH = 50
RECS = T.records(1000, seed=SEED)
# partition 0: dataset dd-a in batches of 50 with triggers; partition 1: dataset dd-b
MSGS = {0: [T.dumps(m).encode() for m in T.sink_messages(RECS[:600], "dd-a", BATCH, seed=SEED)],
        1: [T.dumps(m).encode() for m in T.sink_messages(RECS[600:], "dd-b", seed=SEED)]}
UMASK = 0   # the store must set its modes itself


def produce(topic, by_partition):
    for p, lines in by_partition.items():
        T.produce_msgs(topic, [(T._msg(l)[1], l) for l in lines], partition=p)


def run_to_end(store, topic, dlq, partitions, extra=(), name="sink", archive=None):
    """A sink on topic until the store's offsets reach its ends, then SIGTERM (exit 0); its last stats."""
    s = T.Sink(store, topic, dlq, archive=archive, extra=extra, name=name).start(umask=UMASK)
    ends = T.end_offsets(topic, partitions)
    T.wait_until("the store to reach the ends %r of '%s'" % (ends, topic),
                 lambda: T.store_offsets(store, topic) == ends or not s.alive(), 120)
    assert s.alive(), "sink stopped (exit %s): %s" % (s.proc.returncode, s.stderr()[-2000:])
    assert s.stop() == 0, "SIGTERM: " + s.stderr()[-2000:]
    assert "stopped cleanly" in s.stderr(), s.stderr()[-2000:]
    return s.stats()


def check_modes(store):
    bad = T.store_modes(store)
    assert not bad, "not 0600 / 0700 (sink run with umask %03o): %s" % (UMASK, ", ".join(bad))


def replays_leave_the_count_unchanged():
    topic = T.create_topic(T.topic("sink-dd"), 2, max_message_bytes=4194304)
    dlq = T.create_topic(T.topic("sink-dd-dlq"), 1)
    store = T.workfile("store-dd")   # does not exist yet: the sink creates it
    produce(topic, MSGS)
    st = run_to_end(store, topic, dlq, 2, name="dd-1")
    assert st["items"] == 1000 and st["duplicates"] == 0 and st["triggers"] == 12, st
    first, _ = T.store_expect(store, topic, MSGS, at_end=True)

    # the same lines again on the same topic, the sink still running: duplicates of staged and stored ids
    s = T.Sink(store, topic, dlq, name="dd-2").start(umask=UMASK)
    T.wait_until("the sink to start", lambda: s.stats() or not s.alive(), 60)
    produce(topic, MSGS)
    ends = T.end_offsets(topic, 2)
    T.wait_until("the store to reach %r" % ends, lambda: T.store_offsets(store, topic) == ends or not s.alive(), 120)
    assert s.stop() == 0, s.stderr()[-2000:]
    st = s.stats()
    assert st["items"] == 0 and st["duplicates"] == 1000, "replay on the same topic: %r" % st

    # a second topic with the same items (other bytes: a later selected_at) and a few repeated at once
    topic2 = T.create_topic(T.topic("sink-dd2"), 2, max_message_bytes=4194304)
    again = {p: [l.replace(b"2026-11-26T21:04:05.123456Z", b"2026-11-27T08:00:00.000001Z") for l in lines]
             for p, lines in MSGS.items()}
    again = {p: sum(([l, l] if i % 97 == 0 else [l] for i, l in enumerate(lines)), []) for p, lines in again.items()}
    produce(topic2, again)
    st = run_to_end(store, topic2, dlq, 2, name="dd-3")
    n2 = sum(1 for lines in again.values() for l in lines if T._msg(l)[0] == "item")
    assert st["items"] == 0 and st["duplicates"] == n2, "replay on a second topic: %r" % st

    after = T.store_read(store)
    for ds in ("dd-a", "dd-b"):
        a, b = first["datasets"][ds], after["datasets"][ds]
        assert a["lines"] == b["lines"], "dataset '%s': %d items before the replays, %d after" % (
            ds, len(a["lines"]), len(b["lines"]))
        assert a["batches"] == b["batches"] and not b["open"], "dataset '%s': batches changed" % ds
    assert len(after["datasets"]["dd-a"]["lines"]) == 600 and len(after["datasets"]["dd-a"]["batches"]) == 12
    assert after["offsets"][(topic2, 0)] == len(again[0]) and after["offsets"][(topic, 0)] == 2 * len(MSGS[0])
    check_modes(store)


def archive_stores_each_record_once():
    traces = T.create_topic(T.topic("sink-arch"), 2, max_message_bytes=4194304)
    dlq = T.create_topic(T.topic("sink-arch-dlq"), 1)
    store = T.workfile("store-arch")
    recs = T.records(300, seed=SEED + 1)
    T.produce(traces, [T.dumps(r) for r in recs])
    T.produce(traces, [T.dumps(r) for r in recs[:120]])            # the first 120 twice
    bad = [("b1", b'{"v":1,"trace_id":'), ("b2", T.dumps(dict(recs[0], trace_id="XYZ")).encode()),
           ("b3", T.dumps({k: v for k, v in recs[1].items() if k != "trace_id"}).encode())]
    T.produce_msgs(traces, bad, partition=1)
    raw = T.consume_raw(traces)
    assert len(raw) == 423, "the topic holds %d messages" % len(raw)
    st = run_to_end(store, traces, dlq, 2, name="arch", archive="audit-1")
    assert st["items"] == 300 and st["duplicates"] == 120 and st["dead_lettered"] == 3, st
    got = T.store_read(store)
    assert set(got["datasets"]) == {"audit-1"}, sorted(got["datasets"])
    lines = got["datasets"]["audit-1"]["lines"]
    ids = [json.loads(l)["trace_id"] for l in lines]
    assert len(ids) == 300 and set(ids) == {r["trace_id"] for r in recs}, "%d stored" % len(ids)
    published = {m["payload"] for m in raw}
    assert all(l in published for l in lines), "a stored record is not what was published"
    dead = T.consume_raw(dlq)
    assert sorted(m["headers"].get("ts-reason") for m in dead) == ["no_trace_id", "no_trace_id", "not_json"], \
        [m["headers"] for m in dead]
    assert {m["payload"] for m in dead} == {v for _, v in bad}
    check_modes(store)


OTHER = T.records(200, seed=SEED + 7)


def item(i, **fields):
    """Item i of dataset dd-ok, with fields replaced."""
    rec = OTHER[i]
    return T.dumps(dict(T.sink_item(rec, "dd-ok", offset=i), **fields)).encode()


def malformed_items_dead_lettered():
    topic = T.create_topic(T.topic("sink-bad"), 1, max_message_bytes=4194304)
    dlq = T.create_topic(T.topic("sink-bad-dlq"), 1)
    store = T.workfile("store-bad")
    good = [item(i) for i in range(10)]
    noid = json.loads(item(100))
    del noid["id"]
    nods = json.loads(item(101))
    del nods["dataset"]
    notype = json.loads(item(102))
    del notype["type"]
    bad = [  # (payload, reason, text in ts-error)
        (b'{"type":"item","id":"abc",', "malformed_item", "at byte"),
        (b"[1,2,3]", "malformed_item", "expected a JSON object"),
        (b"not json at all", "malformed_item", "JSON"),
        (T.dumps(noid).encode(), "malformed_item", "field 'id': missing"),
        (item(103, id='a"b'), "malformed_item", "field 'id'"),
        (item(104, id="x" * 129), "malformed_item", "field 'id'"),
        (item(105, id=""), "malformed_item", "field 'id'"),
        (item(106, dataset="bad/name"), "malformed_item", "field 'dataset'"),
        (item(107, dataset=".."), "malformed_item", "field 'dataset'"),
        (item(108, dataset="d" * 101), "malformed_item", "field 'dataset'"),
        (item(109, dataset="caf\u00e9"), "malformed_item", "field 'dataset'"),
        (T.dumps(nods).encode(), "malformed_item", "field 'dataset': missing"),
        (item(110, type="items"), "malformed_item", "field 'type'"),
        (T.dumps(notype).encode(), "malformed_item", "field 'type'"),
        (item(111, type=7), "malformed_item", "field 'type'"),
        (item(112, batch=3), "malformed_item", "'batch' and 'position'"),
        (item(113, batch=0, position=1), "malformed_item", "field 'batch'"),
        (item(114, batch=2, position=-1), "malformed_item", "field 'position'"),
        (item(115).replace(b'"question 115"', b'"caf\xc3\x28"'), "malformed_item", "UTF-8"),
        (item(116) + b" {}", "malformed_item", "at byte"),
        (T.dumps({"type": "batch", "dataset": "dd-ok", "batch": 1, "size": 0, "items": []}).encode(),
         "malformed_item", "no items"),
        (T.dumps({"type": "batch", "dataset": "dd-ok", "items": ["a"]}).encode(), "malformed_item", "'batch'"),
        (T.dumps({"type": "batch", "dataset": "../x", "batch": 1, "items": ["a"]}).encode(),
         "malformed_item", "field 'dataset'"),
        (T.dumps({"type": "batch", "dataset": "dd-ok", "batch": 1, "items": "a"}).encode(),
         "malformed_item", "field 'items'"),
        (None, "empty", "no value"),
    ]
    seq = []
    for i, (payload, _, _) in enumerate(bad):
        seq += [("k%d" % i, payload), ("g%d" % i, good[i % len(good)])] if i < len(good) else [("k%d" % i, payload)]
    T.produce_msgs(topic, seq, partition=0)
    msgs = T.consume_raw(topic)
    assert len(msgs) == len(seq)
    st = run_to_end(store, topic, dlq, 1, name="bad")
    assert st["dead_lettered"] == len(bad) and st["items"] == len(good), st
    got = T.store_read(store)
    assert set(got["datasets"]) == {"dd-ok"}, "datasets %s" % sorted(got["datasets"])
    assert got["datasets"]["dd-ok"]["lines"] == good, "the store does not hold exactly the good items"
    assert sorted(os.listdir(os.path.join(store, "datasets"))) == ["dd-ok"], os.listdir(os.path.join(store, "datasets"))
    dead = T.consume_raw(dlq)
    assert len(dead) == len(bad), "%d dead letters for %d bad messages" % (len(dead), len(bad))
    src = {m["payload"]: m for m in msgs}
    problems = []
    for m, (payload, reason, text) in zip(dead, bad):
        h = m["headers"]
        orig = src[payload]
        if m["payload"] != payload or h.get("ts-reason") != reason or text not in (h.get("ts-error") or "") or \
                h.get("ts-source-topic") != topic or h.get("ts-source-offset") != str(orig["offset"]) or \
                h.get("ts-source-partition") != "0" or m["key"] != orig["key"]:
            problems.append("%r: %r" % ((payload or b"")[:60], h))
    assert not problems, "dead letters not as expected:\n" + "\n".join(problems)
    check_modes(store)


def valid_json_with_line_breaks_stored():
    """JSON may have line breaks between tokens (a pretty-printed item, a record
    from another producer that the sampler copied as it was): that is valid,
    so it is stored (on one line), not dead-lettered."""
    topic = T.create_topic(T.topic("sink-nl"), 1)
    traces = T.create_topic(T.topic("sink-nl-tr"), 1)
    dlq = T.create_topic(T.topic("sink-nl-dlq"), 1)
    store = T.workfile("store-nl")
    pretty = json.dumps(json.loads(item(150)), indent=1).encode()
    crlf = item(151).replace(b',"record":', b',\r\n"record":')
    rec = OTHER[152]
    spliced = item(153).replace(b'"record":{', b'"record":\n{\n')   # what the sampler makes of such a record
    T.produce_msgs(topic, [("dd-ok", item(149)), ("dd-ok", pretty), ("dd-ok", crlf), ("dd-ok", spliced)], partition=0)
    T.produce_msgs(traces, [(rec["trace_id"], json.dumps(rec, indent=2).encode())], partition=0)
    st = run_to_end(store, topic, dlq, 1, name="nl")
    st2 = run_to_end(store, traces, dlq, 1, name="nl-arch", archive="nl-audit")
    dead = [(m["headers"].get("ts-reason"), m["headers"].get("ts-error")) for m in T.consume_raw(dlq)]
    assert not dead, "valid JSON dead-lettered: %r" % dead
    assert st["items"] == 4 and st2["items"] == 1, (st, st2)
    got = T.store_read(store)["datasets"]
    assert [json.loads(l) for l in got["dd-ok"]["lines"]] == [json.loads(x) for x in (item(149), pretty, crlf, spliced)]
    assert [json.loads(l) for l in got["nl-audit"]["lines"]] == [rec]
    check_modes(store)


def second_writer_refused():
    topic = T.create_topic(T.topic("sink-lock"), 1)
    dlq = T.create_topic(T.topic("sink-lock-dlq"), 1)
    store = T.workfile("store-lock")
    a = T.Sink(store, topic, dlq, name="lock-a").start(umask=UMASK)
    T.wait_until("the first sink to start", lambda: a.stats() or not a.alive(), 60)
    b = T.Sink(store, topic, dlq, name="lock-b").start(umask=UMASK)
    rc = b.proc.wait(T.timeout(30))
    assert rc == 1 and "locked by another writer" in b.stderr(), "second writer: exit %d: %s" % (rc, b.stderr())
    T.produce_msgs(topic, [("dd-ok", item(i)) for i in range(5)], partition=0)
    T.wait_until("the first sink to store 5 items", lambda: T.store_offsets(store, topic) == {0: 5} or
                 not a.alive(), 60)
    time.sleep(0.3)
    assert a.stop() == 0, a.stderr()[-2000:]
    assert len(T.store_read(store)["datasets"]["dd-ok"]["lines"]) == 5
    check_modes(store)


T.run(replays_leave_the_count_unchanged)
T.run(archive_stores_each_record_once)
T.run(malformed_items_dead_lettered)
T.run(second_writer_refused)
T.run(valid_json_with_line_breaks_stored)
T.exit()
