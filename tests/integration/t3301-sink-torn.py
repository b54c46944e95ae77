#!/usr/bin/env python3
"""tests/integration/t3301-sink-torn.py - a crash in the middle of a commit: the sink drops the torn tail and resumes

A store is taken before a commit (S1) and after it (S2).  A crash in the
middle of that commit leaves S1's MANIFEST with the files of S2 cut anywhere
past S1's committed lengths, and maybe a MANIFEST.tmp: each such store,
restarted, must hold every item exactly once in the end.
"""
import os
import random
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tslib as T  # noqa: E402

SEED = 3301
BATCH = 20
RECS = T.records(1000, seed=SEED)
# one partition: dataset a in batches (with triggers), dataset b without, interleaved
A = T.sink_messages(RECS[:500], "torn-a", BATCH, seed=SEED)
B = T.sink_messages(RECS[500:], "torn-b", seed=SEED)
LINES = []
for i in range(max(len(A), len(B))):
    LINES += [T.dumps(m).encode() for m in (A[i:i + 1] + B[i:i + 1])]
PHASE1 = len(LINES) * 3 // 5
ONE_COMMIT = ["--commit-interval-ms", "600000", "--commit-items", "10000000"]   # only at SIGTERM
PARALLEL = 3
HAVE_READER = os.path.exists(os.path.join(T.BIN, "tracesift-dataset"))


def key(line):
    return T._msg(line)[1]


def run_sink(store, topic, dlq, until, extra=(), name="sink"):
    """Runs a sink on store until the store's offset reaches until, then SIGTERM."""
    s = T.Sink(store, topic, dlq, extra=extra, name=name).start()
    T.wait_until("the store '%s' to reach offset %d" % (os.path.basename(store), until),
                 lambda: T.store_offsets(store, topic).get(0) == until or not s.alive(), 120)
    assert s.alive(), "sink stopped (exit %s): %s" % (s.proc.returncode, s.stderr()[-2000:])
    assert s.stop() == 0, "SIGTERM: " + s.stderr()[-2000:]
    return s


def run_sink_consumed(store, topic, dlq, n, extra=(), name="sink", linger=0):
    """Runs a sink that commits only when it stops: until it consumed n messages
    (and linger seconds more), then SIGTERM."""
    s = T.Sink(store, topic, dlq, extra=list(ONE_COMMIT) + list(extra), name=name).start()
    s.wait_consumed(n)
    time.sleep(linger)
    assert s.stop() == 0, "SIGTERM: " + s.stderr()[-2000:]
    return s


def before_and_after(topic, dlq, name, phase2_extra=()):
    """S1: the store after PHASE1 messages; S2: the same after one more commit with the rest."""
    work = T.workfile(name)
    T.produce_msgs(topic, [(key(l), l) for l in LINES[:PHASE1]], partition=0)
    run_sink_consumed(work, topic, dlq, PHASE1, name=name + "-1")
    s1 = work + ".s1"
    shutil.copytree(work, s1)
    T.produce_msgs(topic, [(key(l), l) for l in LINES[PHASE1:]], partition=0)
    run_sink_consumed(work, topic, dlq, len(LINES) - PHASE1, extra=phase2_extra, name=name + "-2",
                      linger=1.5 if phase2_extra else 0)
    T.store_expect(s1, topic, {0: LINES})
    T.store_expect(work, topic, {0: LINES}, at_end=True)
    assert T.store_offsets(s1, topic) == {0: PHASE1}
    return s1, work


def files_grown(s1, s2):
    """{path relative to the store: (committed bytes in S1, bytes in S2)} of the data files the commit wrote."""
    out = {}
    for d, _, files in os.walk(os.path.join(s2, "datasets")):
        for f in files:
            rel = os.path.relpath(os.path.join(d, f), s2)
            old = os.path.join(s1, rel)
            n1 = os.path.getsize(old) if os.path.exists(old) else -1
            n2 = os.path.getsize(os.path.join(s2, rel))
            if n2 != n1:
                out[rel] = (max(n1, 0), n2, n1 < 0)
                if n1 > 0:
                    with open(old, "rb") as a, open(os.path.join(s2, rel), "rb") as b:
                        assert b.read(n1) == a.read(), "%s: S2 does not extend S1" % rel
    return out


def torn_store(s1, s2, name, cuts, tmp_manifest=None):
    """A copy of S1 with each file of cuts ({rel: length}) replaced by S2's first length bytes."""
    d = T.workfile(name)
    shutil.copytree(s1, d)
    for rel, n in cuts.items():
        with open(os.path.join(s2, rel), "rb") as f:
            data = f.read(n)
        with open(os.path.join(d, rel), "wb") as f:
            f.write(data)
        os.chmod(os.path.join(d, rel), 0o600)
    if tmp_manifest is not None:
        with open(os.path.join(d, "MANIFEST.tmp"), "wb") as f:
            f.write(tmp_manifest)
    return d


def reader_sees(store, before):
    """tracesift-dataset, on the torn store with no writer, shows what was committed: no torn tail."""
    for ds, lines in before.items():
        p = subprocess.run([os.path.join(T.BIN, "tracesift-dataset"), "--store", store, "cat", ds],
                           capture_output=True, timeout=T.timeout(60))
        assert p.returncode == 0, "tracesift-dataset cat %s: %s" % (ds, p.stderr.decode()[-1000:])
        got = p.stdout.split(b"\n")[:-1]
        assert got == lines, "tracesift-dataset cat %s: %d lines, %d committed" % (ds, len(got), len(lines))


def recover_all(trials, topic, dlq, before):
    """Runs a sink on each torn store (PARALLEL at a time) and checks each holds everything once;
    before: {dataset: lines} committed in S1, what a reader sees before the sink runs."""
    errors = []

    def one(store, what):
        try:
            if HAVE_READER:
                reader_sees(store, before)
            s = run_sink(store, topic, dlq, len(LINES), name=os.path.basename(store))
            T.store_expect(store, topic, {0: LINES}, at_end=True)
            assert not os.path.exists(os.path.join(store, "MANIFEST.tmp")), "MANIFEST.tmp left"
            assert s.stats().get("dead_lettered") == 0, s.stats()
        except Exception as e:  # noqa: BLE001 - collected and reported below
            errors.append("%s: %s" % (what, e))
        finally:
            shutil.rmtree(store, ignore_errors=True)

    for i in range(0, len(trials), PARALLEL):
        threads = [threading.Thread(target=one, args=t) for t in trials[i:i + PARALLEL]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, "%d of %d torn stores not recovered:\n%s" % (len(errors), len(trials), "\n".join(errors))


def torn_tail_of_the_last_frame():
    topic = T.create_topic(T.topic("sink-torn"), 1, max_message_bytes=4194304)
    dlq = T.create_topic(T.topic("sink-torn-dlq"), 1)
    s1, s2 = before_and_after(topic, dlq, "torn")
    grown = files_grown(s1, s2)
    segs = sorted(r for r in grown if "/seg-" in r)
    T.note("the commit wrote: %s" % ", ".join("%s %d..%d" % (r, a, b) for r, (a, b, _) in sorted(grown.items())))
    assert len(segs) == 2 and not any(grown[r][2] for r in segs), "expected the 2 last segments to grow: %s" % grown
    seg_a = [r for r in segs if "/torn-a/" in r][0]
    lo, hi = grown[seg_a][:2]
    # 30 cuts over the last frame of torn-a's segment: its first and last bytes, and between
    cuts = sorted({lo, lo + 1, lo + 2, lo + 5, hi - 1, hi} | {lo + (hi - lo) * k // 25 for k in range(1, 25)})
    with open(os.path.join(s2, "MANIFEST"), "rb") as f:
        new_manifest = f.read()
    rnd = random.Random(SEED)
    trials = []
    for i, cut in enumerate(cuts):
        frac = (cut - lo) / (hi - lo)
        # the other files the commit wrote, cut at about the same point (each file is synced
        # before the manifest, so any mix of lengths is a crash that can happen)
        c = {r: a + int((b - a) * min(1.0, max(0.0, frac + rnd.uniform(-0.3, 0.3))))
             for r, (a, b, _) in grown.items()}
        c[seg_a] = cut
        tmp = None
        if i % 3 == 1:
            tmp = new_manifest[:rnd.randrange(len(new_manifest))]      # the crash while writing it
        elif i % 3 == 2 and cut == hi:
            tmp = new_manifest                                           # the crash before the rename
        trials.append((torn_store(s1, s2, "torn-%02d" % i, c, tmp), "cut at %d of %d..%d%s" % (
            cut, lo, hi, ", MANIFEST.tmp of %d bytes" % len(tmp) if tmp is not None else "")))
    T.note("%d torn stores" % len(trials))
    recover_all(trials, topic, dlq, {d: v["lines"] for d, v in T.store_read(s1)["datasets"].items()})


def torn_new_segment():
    """The commit opened new segments (rotation by age) and the crash came in the middle of them."""
    topic = T.create_topic(T.topic("sink-torn2"), 1, max_message_bytes=4194304)
    dlq = T.create_topic(T.topic("sink-torn2-dlq"), 1)
    s1, s2 = before_and_after(topic, dlq, "rot", phase2_extra=["--segment-age-s", "1"])
    grown = files_grown(s1, s2)
    new = sorted(r for r, (_, _, fresh) in grown.items() if fresh and "/seg-" in r)
    T.note("the commit wrote: %s" % ", ".join("%s %d..%d%s" % (r, a, b, " (new)" if f else "")
                                             for r, (a, b, f) in sorted(grown.items())))
    assert len(new) == 2, "expected 2 new segments: %s" % grown
    lo, hi = grown[new[0]][:2]
    trials = []
    for i, cut in enumerate([0, 1, 4, 40, (lo + hi) // 2, hi - 1, hi]):
        c = {r: (b if r not in new else min(b, cut)) for r, (a, b, _) in grown.items()}
        c[new[1]] = grown[new[1]][1] if i % 2 else 0
        trials.append((torn_store(s1, s2, "rot-%02d" % i, c), "new segment cut at %d of %d" % (cut, hi)))
    recover_all(trials, topic, dlq, {d: v["lines"] for d, v in T.store_read(s1)["datasets"].items()})


def committed_bytes_missing_refused():
    """A segment shorter than its committed length is lost data, not a torn tail:
    the sink refuses to start and touches nothing."""
    topic = T.create_topic(T.topic("sink-short"), 1, max_message_bytes=4194304)
    dlq = T.create_topic(T.topic("sink-short-dlq"), 1)
    s1, s2 = before_and_after(topic, dlq, "short")
    st = T.store_read(s2)
    path, committed, _ = st["datasets"]["torn-b"]["segments"][-1]
    with open(path, "r+b") as f:
        f.truncate(committed - 10)
    before = {}
    for d, _, files in os.walk(s2):
        for f in files:
            with open(os.path.join(d, f), "rb") as fh:
                before[os.path.join(d, f)] = fh.read()
    s = T.Sink(s2, topic, dlq, name="short").start()
    try:
        rc = s.proc.wait(T.timeout(60))
    except Exception:
        s.stop()
        raise AssertionError("the sink started on a store with committed bytes missing: " + s.stderr()[-2000:])
    err = s.stderr()
    assert rc == 1, "exit %d: %s" % (rc, err[-2000:])
    assert "shorter" in err and os.path.basename(path) in err, err[-2000:]
    for p, data in before.items():
        if os.path.basename(p) == "LOCK":
            continue
        with open(p, "rb") as fh:
            assert fh.read() == data, "%s changed" % p


T.run(torn_tail_of_the_last_frame)
T.run(torn_new_segment)
T.run(committed_bytes_missing_refused)
T.exit()
