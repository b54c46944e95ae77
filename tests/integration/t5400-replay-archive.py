#!/usr/bin/env python3
"""tests/integration/t5400-replay-archive.py - replay from the sink's archive matches replay from Kafka"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tslib as T  # noqa: E402

N = 2500
ROWS = T.timed_records(N, seed=5400, step_ms=60000)
TOPIC = T.create_topic(T.topic("rp-arc"), 3, retention_ms=-1)
T.produce_at(TOPIC, [(i % 3, ts, r["trace_id"], T.dumps(r)) for i, (r, ts) in enumerate(ROWS)])
STORE = T.workfile("archive-store")
T0 = 1795651200000
FROM, TO = T.rfc3339((T0 + 5 * 3600 * 1000 + 123) * 1000), T.rfc3339((T0 + 30 * 3600 * 1000) * 1000)
# timed_records' Kafka timestamps trail start_time by up to ~11 s: the default grace covers that
WINDOW = {r["trace_id"] for r, _ in ROWS if T.tstime_us(FROM) <= T.tstime_us(r["start_time"]) < T.tstime_us(TO)}


def archive():
    dlq = T.create_topic(T.topic("rp-arc-dlq"), 1)
    s = T.Sink(STORE, TOPIC, dlq, archive="archive", name="archive").start()
    ends = T.end_offsets(TOPIC, 3)
    T.wait_until("the sink to archive the topic", lambda: T.store_offsets(STORE, TOPIC) == ends or not s.alive(), 120)
    assert s.stop() == 0, s.stderr()[-2000:]
    assert len(T.store_read(STORE)["datasets"]["archive"]["lines"]) == N


archive()


def lines(out):
    v = out.split(b"\n")
    assert v[-1] == b""
    return sorted(v[:-1])


def same_records_as_kafka():
    store = T.replay(["--store", STORE, "--from", FROM, "--to", TO])
    kafka = T.replay(["-t", TOPIC, "--by", "start_time", "--from", FROM, "--to", TO])
    a, b = lines(store.stdout), lines(kafka.stdout)
    assert {json.loads(l)["trace_id"] for l in a} == WINDOW, "%d from the store, %d in the window" % (len(a), len(WINDOW))
    assert a == b, "the archive gives %d records, Kafka %d; they differ" % (len(a), len(b))
    assert "records of store '%s' dataset 'archive'" % STORE in store.stderr.decode(), store.stderr.decode()
    T.note("%d records in [%s, %s) from the archive and from Kafka" % (len(a), FROM, TO))
    # and to a zstd file, with a filter
    path = T.workfile("arc.jsonl.zst")
    T.replay(["--store", STORE, "--dataset", "archive", "--from", FROM, "--to", TO, "--tag", "beta", "-o", path])
    z = subprocess.run(["zstdcat", path], capture_output=True, check=True).stdout
    assert lines(z) == lines(T.replay(["-t", TOPIC, "--by", "start_time", "--from", FROM, "--to", TO, "--tag",
                                       "beta"]).stdout)


def same_report_and_decisions():
    rs = json.loads(T.replay(["--store", STORE, "--from", FROM, "--to", TO, "--report", "--json"]).stdout)
    rk = json.loads(T.replay(["-t", TOPIC, "--by", "start_time", "--from", FROM, "--to", TO, "--report",
                              "--json"]).stdout)
    for k in ("source", "read"):
        rs.pop(k), rk.pop(k)
    assert rs == rk, "reports differ: %s" % {k: (rs[k], rk.get(k)) for k in rs if rs[k] != rk.get(k)}
    conf = T.workfile("s.conf")
    with open(conf, "w") as f:
        f.write(T.sampler_conf({}, {"seed": 9}, [("errors", ["when = error", "rate = 1"]),
                                                 ("default", ["rate = 0.3"])]))

    def decisions(args):
        out = [json.loads(l) for l in T.replay(args + ["--from", FROM, "--to", TO, "--explain-sampling", conf,
                                                       "--json"]).stdout.splitlines()]
        return sorted((d["trace_id"], d["class"], d["draw"], d["decision"]) for d in out[:-1]), out[-1]
    ds, ss = decisions(["--store", STORE])
    dk, sk = decisions(["-t", TOPIC, "--by", "start_time"])
    assert ds == dk and ss == sk and len(ds) == len(WINDOW)


def past_retention_says_to_use_the_archive():
    """Once Kafka has deleted the start of a window, replay says so, and the archive still has it."""
    t = T.create_topic(T.topic("rp-ret"), 2, retention_ms=-1)
    T.produce_at(t, [(i % 2, ts, r["trace_id"], T.dumps(r)) for i, (r, ts) in enumerate(ROWS[:400])])
    T.delete_before(t, 0, 50)
    p = T.replay(["-t", t, "--by", "start_time", "--from", ROWS[0][0]["start_time"]])
    err = p.stderr.decode()
    assert "WARNING: topic '%s' partition 0: its oldest record (offset 50" % t in err and "--store" in err, err
    assert "partition 1: its oldest" not in err, err
    assert len(p.stdout.splitlines()) == 350
    # a window that starts after what was deleted: no warning
    p = T.replay(["-t", t, "--by", "start_time", "--from", ROWS[200][0]["start_time"]])
    assert "WARNING" not in p.stderr.decode(), p.stderr.decode()


def archive_errors():
    p = T.replay(["--store", STORE, "--dataset", "nope"], check=False)
    err = p.stderr.decode()
    assert p.returncode == 1 and "no dataset 'nope' in store" in err and "-t TOPIC" in err, err
    p = T.replay(["--store", T.workfile("no-store-here")], check=False)
    assert p.returncode == 1 and "% ERROR:" in p.stderr.decode(), p.stderr.decode()
    p = T.replay(["--store", STORE, "--by", "timestamp"], check=False)
    assert p.returncode == 2 and "--by timestamp needs Kafka" in p.stderr.decode(), p.stderr.decode()


T.run(same_records_as_kafka)
T.run(same_report_and_decisions)
T.run(past_retention_says_to_use_the_archive)
T.run(archive_errors)
T.exit()
