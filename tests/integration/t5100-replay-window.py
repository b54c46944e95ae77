#!/usr/bin/env python3
"""tests/integration/t5100-replay-window.py - replay a time range: exactly its records, filters, zstd, --to-topic"""
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tslib as T  # noqa: E402

N = 3000
# every 20 s a trace; its Kafka timestamp is its end plus up to 2 s
GEN = T.timed_records(N, seed=5100, step_ms=20000)
TOPIC = T.create_topic(T.topic("rp-win"), 3, retention_ms=-1)
LINE = {r["trace_id"]: T.dumps(r) for r, _ in GEN}
PART = {r["trace_id"]: i % 3 for i, (r, _) in enumerate(GEN)}
FROM_MS = GEN[700][1]           # a record's timestamp exactly: --from is inclusive
TO_MS = GEN[2101][1]            # and exactly: --to is exclusive


def production():
    """What each partition gets, in order: the records, every 40th of a partition
    with a timestamp 5 s before its predecessor's (out of order, as producers with
    other clocks make them), and invalid messages (not JSON, no name, no value),
    also out of order, three of them in the window."""
    seq, rows, last = {0: [], 1: [], 2: []}, [], {}
    for i, (r, ts) in enumerate(GEN):
        p = PART[r["trace_id"]]
        if len(seq[p]) % 40 == 39 and i not in (700, 2101):
            ts = last[p] - 5000
        seq[p].append((p, ts, r["trace_id"], LINE[r["trace_id"]]))
        rows.append((r, ts))
        last[p] = ts
        if i in (900, 1301, 1802):
            bad = {900: "{not json", 1301: '{"v":1,"trace_id":"%s"}' % ("ab" * 16), 1802: None}[i]
            seq[p].append((p, ts - 3000, "bad%d" % i, bad))
        if i in (300, 2500):
            seq[p].append((p, ts - 3000, "", "nope"))
    return [m for p in range(3) for m in seq[p]], rows


MSGS, ROWS = production()
BY_ID = {r["trace_id"]: (r, ts) for r, ts in ROWS}
T.produce_at(TOPIC, MSGS)


def window(from_ms, to_ms):
    return {r["trace_id"] for r, ts in ROWS if (from_ms is None or ts >= from_ms) and (to_ms is None or ts < to_ms)}


def ids_of(out):
    lines = out.split(b"\n")
    assert lines[-1] == b"", "output does not end with a newline"
    ids = [json.loads(l)["trace_id"] for l in lines[:-1]]
    assert len(ids) == len(set(ids)), "%d records, %d ids" % (len(ids), len(set(ids)))
    return ids


def check_partition_order(ids):
    """Each partition's records come in the order they were produced."""
    pos = {r["trace_id"]: i for i, (r, _) in enumerate(ROWS)}
    for p in range(3):
        mine = [pos[i] for i in ids if PART[i] == p]
        assert mine == sorted(mine), "partition %d out of order" % p


def exact_window_by_timestamp():
    want = window(FROM_MS, TO_MS)
    assert any(ts == FROM_MS for _, ts in ROWS) and any(ts == TO_MS for _, ts in ROWS)
    out_of_order = sum(1 for a, b in zip(MSGS, MSGS[1:]) if a[0] == b[0] and b[1] < a[1])
    T.note("window [%d, %d): %d of %d records; %d timestamps out of order in their partition" %
           (FROM_MS, TO_MS, len(want), N, out_of_order))
    p = T.replay(["-t", TOPIC, "--from", str(FROM_MS), "--to", str(TO_MS)])
    ids = ids_of(p.stdout)
    assert set(ids) == want, "%d records, %d expected: %d missing, %d extra" % (
        len(ids), len(want), len(want - set(ids)), len(set(ids) - want))
    check_partition_order(ids)
    # the records are the bytes produced
    assert sorted(p.stdout.split(b"\n")[:-1]) == sorted(LINE[i].encode() for i in want)
    err = p.stderr.decode()
    assert "%d in the window, 3 invalid (not_json 1, schema 1, empty 1)" % (len(want) + 3) in err, err
    # RFC 3339 with an offset names the same instants
    f = T.rfc3339(FROM_MS * 1000).replace("Z", "+00:00")
    t = T.rfc3339(TO_MS * 1000)
    assert set(ids_of(T.replay(["-t", TOPIC, "--from", f, "--to", t]).stdout)) == want


def open_ends_and_empty_windows():
    assert set(ids_of(T.replay(["-t", TOPIC, "--to", str(TO_MS)]).stdout)) == window(None, TO_MS)
    assert set(ids_of(T.replay(["-t", TOPIC, "--from", str(FROM_MS)]).stdout)) == window(FROM_MS, None)
    assert set(ids_of(T.replay(["-t", TOPIC]).stdout)) == window(None, None)
    last = max(ts for _, ts in ROWS)
    p = T.replay(["-t", TOPIC, "--from", str(last + 3600 * 1000)])
    assert p.stdout == b"" and "replayed 0 records" in p.stderr.decode(), p.stderr.decode()
    p = T.replay(["-t", TOPIC, "--from", "2020-01-01", "--to", "2020-01-02"])
    assert p.stdout == b""


def by_start_time():
    lo, hi = 1795651200000 + 3600 * 1000, 1795651200000 + 9 * 3600 * 1000 + 17
    want = {r["trace_id"] for r, _ in ROWS if lo * 1000 <= T.tstime_us(r["start_time"]) < hi * 1000}
    # the test's timestamps stray up to ~70 s from start_time: a grace to match
    p = T.replay(["-t", TOPIC, "--by", "start_time", "--grace-ms", "120000", "--from", T.rfc3339(lo * 1000),
                  "--to", str(hi)])
    assert set(ids_of(p.stdout)) == want, "by start_time: %d, expected %d" % (len(ids_of(p.stdout)), len(want))


def filters():
    def expect(pred):
        return {i for i in window(FROM_MS, TO_MS) if pred(BY_ID[i][0])}

    def run(*args):
        return set(ids_of(T.replay(["-t", TOPIC, "--from", str(FROM_MS), "--to", str(TO_MS)] + list(args)).stdout))

    cases = [
        (["--tag", "rag"], lambda r: "rag" in r.get("tags", [])),
        (["--tag", "rag", "--tag", "beta"], lambda r: {"rag", "beta"} <= set(r.get("tags", []))),
        (["--tag", "caf\u00e9"], lambda r: "caf\u00e9" in r.get("tags", [])),
        (["--model", "claude-3-5-haiku"], lambda r: r.get("model") == "claude-3-5-haiku"),
        (["--name", "chat"], lambda r: r["name"] == "chat"),
        (["--meta", "user_tier=enterprise"], lambda r: r["metadata"]["user_tier"] == "enterprise"),
        (["--meta", "build=42", "--meta", "beta=true"], lambda r: r["metadata"]["build"] == 42 and r["metadata"]["beta"]),
        (["--error"], lambda r: r.get("error") is not None),
        (["--no-error", "--model", "llama-3.1-8b-instruct"],
         lambda r: r.get("error") is None and r.get("model") == "llama-3.1-8b-instruct"),
        (["--meta", "user_tier=Enterprise"], lambda r: False),
    ]
    for args, pred in cases:
        got, want = run(*args), expect(pred)
        assert got == want, "%s: %d records, %d expected" % (" ".join(args), len(got), len(want))
        T.note("%-45s %4d records" % (" ".join(args), len(got)))
    p = T.replay(["-t", TOPIC, "--from", str(FROM_MS), "--to", str(TO_MS), "--error"])
    assert "filtered out" in p.stderr.decode()


def zstd_and_plain_files_hold_the_stdout_records():
    args = ["-t", TOPIC, "--from", str(FROM_MS), "--to", str(TO_MS)]
    out = T.replay(args).stdout
    zpath, ppath = T.workfile("w.jsonl.zst"), T.workfile("w.jsonl")
    p = T.replay(args + ["-o", zpath])
    assert p.stdout == b"", "records on stdout with -o"
    T.replay(args + ["-o", ppath, "--zstd-level", "19"])
    z = subprocess.run(["zstdcat", zpath], capture_output=True, check=True).stdout
    subprocess.run(["zstd", "-tq", zpath], check=True)
    with open(ppath, "rb") as f:
        plain = f.read()
    # the same records, byte for byte; partitions interleave differently each run
    assert sorted(z.split(b"\n")) == sorted(out.split(b"\n")), "zstd output differs from stdout"
    assert sorted(plain.split(b"\n")) == sorted(out.split(b"\n")), "plain file differs from stdout"
    check_partition_order(ids_of(z))
    with open(zpath, "rb") as f:
        assert f.read(4) == b"\x28\xb5\x2f\xfd", "not a zstd frame"
    assert not [f for f in os.listdir(os.path.dirname(zpath)) if ".tmp." in f], "temporary files left"
    T.note("%d records, %d bytes as JSONL, %d as zstd" % (len(ids_of(out)), len(plain), os.path.getsize(zpath)))


def to_topic_copies_with_keys_and_timestamps():
    dest = T.create_topic(T.topic("rp-copy"), 3, retention_ms=-1)
    p = T.replay(["-t", TOPIC, "--from", str(FROM_MS), "--to", str(TO_MS), "--to-topic", dest])
    assert p.stdout == b"", "records on stdout with --to-topic"
    want = window(FROM_MS, TO_MS)
    assert ("%d copied to topic" % len(want)) in p.stderr.decode(), p.stderr.decode()
    got = T.consume(dest)
    assert len(got) == len(want), "%d messages in the copy, %d expected" % (len(got), len(want))
    for m in got:
        rec = json.loads(m["payload"])
        tid = rec["trace_id"]
        assert m["key"] == tid, "key %r of %s" % (m["key"], tid)
        assert m["payload"] == LINE[tid], "payload of %s changed" % tid
        assert m["ts"] == BY_ID[tid][1], "timestamp of %s: %d, original %d" % (tid, m["ts"], BY_ID[tid][1])
    assert {json.loads(m["payload"])["trace_id"] for m in got} == want
    # a key decides the partition, as for the original
    by_key = {}
    for m in got:
        by_key.setdefault(m["key"], set()).add(m["partition"])
    assert all(len(v) == 1 for v in by_key.values())
    # and the copy replays the same window
    again = set(ids_of(T.replay(["-t", dest, "--from", str(FROM_MS), "--to", str(TO_MS)]).stdout))
    assert again == want


def stops_at_the_end_offsets_while_the_topic_grows():
    """Records keep arriving (and one partition stays empty): replay ends at the
    offsets the range had when it started."""
    t = T.create_topic(T.topic("rp-grow"), 3, retention_ms=-1)
    first = [T.dumps(r) for r, _ in T.timed_records(300, seed=5101)]
    T.produce_at(t, [(i % 2, 1795651200000 + i, "", l) for i, l in enumerate(first)])
    more = [T.dumps(r).encode() for r, _ in T.timed_records(3000, seed=5102)]
    prod = threading.Thread(target=T.produce_paced, args=(t, {0: more[0::2], 1: more[1::2]}, 8), daemon=True)
    prod.start()
    time.sleep(1.0)
    ends_before = T.end_offsets(t, 3)
    start = time.monotonic()
    p = T.replay(["-t", t], timeout_s=60)
    took = time.monotonic() - start
    growing = prod.is_alive()
    ends_after = T.end_offsets(t, 3)
    n = len(ids_of(p.stdout))
    T.note("topic held %d records before, %d after; replay read %d in %.2f s" %
           (sum(ends_before.values()), sum(ends_after.values()), n, took))
    assert sum(ends_before.values()) <= n <= sum(ends_after.values())
    assert ends_before[2] == 0, "partition 2 should stay empty"
    assert growing, "the topic stopped growing before the replay ended"
    prod.join()
    assert sum(T.end_offsets(t, 3).values()) == 3300


def kafka_errors_exit_1():
    p = T.replay(["-t", T.topic("rp-none")], check=False)
    err = p.stderr.decode()
    assert p.returncode == 1 and "% ERROR: topic 't-rp-none" in err and p.stdout == b"", (p.returncode, err)


T.run(exact_window_by_timestamp)
T.run(open_ends_and_empty_windows)
T.run(by_start_time)
T.run(filters)
T.run(zstd_and_plain_files_hold_the_stdout_records)
T.run(to_topic_copies_with_keys_and_timestamps)
T.run(stops_at_the_end_offsets_while_the_topic_grows)
T.run(kafka_errors_exit_1)
T.exit()
