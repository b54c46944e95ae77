#!/usr/bin/env python3
"""tests/integration/t3302-sink-diskfull.py - the disk fills: the sink stops, says why, and resumes exactly once"""
import base64
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tslib as T  # noqa: E402

SEED = 3302
N = 6000               # items of about 4 kB that do not compress: some 18 MB, the disk has 8
BATCH = 50


def big_records():
    rnd = random.Random(SEED)
    recs = T.records(N, seed=SEED)
    for r in recs:
        r["input"] = {"question": base64.b64encode(rnd.randbytes(3000)).decode()}
    return recs


RECS = big_records()
MSGS = {0: [T.dumps(m).encode() for m in T.sink_messages(RECS[:N // 2], "full-a", BATCH, seed=SEED)],
        1: [T.dumps(m).encode() for m in T.sink_messages(RECS[N // 2:], "full-b", seed=SEED)]}
SINK_OPTS = ["--commit-interval-ms", "200", "--commit-items", "300"]


def mount(path, size):
    os.makedirs(path, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs", path],
                       capture_output=True)
    return p.returncode == 0, p.stderr.decode().strip()


def since_resume(s, k):
    """What the sink said after it resumed for the k-th time (k = 0: since it started)."""
    parts = s.stderr().split("store writable again")
    return parts[k] if len(parts) > k else ""


def full_then_stopped(s, store, topic, k):
    """Waits for the disk-full message after the k-th resume, then checks the sink
    stopped advancing with what its MANIFEST says durable and exact; returns its offsets."""
    T.wait_until("the sink to say the disk is full (%d)" % (k + 1),
                 lambda: "No space left on device" in since_resume(s, k) or not s.alive(), 120)
    assert s.alive(), "sink stopped on a full disk (exit %s): %s" % (s.proc.returncode, s.stderr()[-2000:])
    T.wait_until("a stats line with store_writable false", lambda: s.stats().get("store_writable") is False, 30)
    with open(os.path.join(store, "MANIFEST"), "rb") as f:
        manifest = f.read()
    consumed, failures = s.consumed(), s.stats()["commit_failures"]
    time.sleep(T.timeout(1) + 2.5)
    assert s.alive(), "sink stopped on a full disk: " + s.stderr()[-2000:]
    st = s.stats()
    assert st["store_writable"] is False and st["consumed"] == consumed, "still consuming: %r" % st
    assert st["commit_failures"] >= failures + 2, "not retrying every second: %r" % st
    with open(os.path.join(store, "MANIFEST"), "rb") as f:
        assert f.read() == manifest, "the MANIFEST changed while the disk was full"
    _, offs = T.store_expect(store, topic, MSGS)
    errors = [l for l in s.stderr().splitlines() if "No space left on device" in l]
    T.note("disk full at offsets %s after consuming %d: %s" % (offs, consumed, errors[-1]))
    assert errors[-1].startswith("% ERROR: ") and "not advancing" in errors[-1], errors[-1]
    return offs


def disk_full_then_space_again():
    disk = T.workfile("disk")
    ok, why = mount(disk, "8m")
    assert ok, "mount: " + why
    s = None
    try:
        topic = T.create_topic(T.topic("sink-full"), 2, max_message_bytes=4194304)
        dlq = T.create_topic(T.topic("sink-full-dlq"), 1)
        store = os.path.join(disk, "store")
        s = T.Sink(store, topic, dlq, extra=SINK_OPTS, name="full").start()
        T.produce_paced(topic, MSGS, 3, key=lambda l: T._msg(l)[1])
        ends = T.end_offsets(topic, 2)
        # full three times, each time a little more room, then enough
        for k, size in enumerate(["11m", "14m", "64m"]):
            offs = full_then_stopped(s, store, topic, k)
            assert offs != ends, "the whole topic fit on the disk: make the items bigger"
            subprocess.run(["mount", "-o", "remount,size=" + size, disk], check=True)
            T.wait_until("the sink to resume", lambda: s.stderr().count("store writable again") > k or
                         not s.alive(), 60)
        T.wait_until("the sink to reach the end of the topic %r" % ends,
                     lambda: T.store_offsets(store, topic) == ends or not s.alive(), 120)
        assert s.alive(), "sink stopped: " + s.stderr()[-2000:]
        assert s.stop() == 0, "SIGTERM: " + s.stderr()[-2000:]
        st, offs = T.store_expect(store, topic, MSGS, at_end=True)
        counts = {d: len(v["lines"]) for d, v in st["datasets"].items()}
        assert counts == {"full-a": N // 2, "full-b": N - N // 2}, counts
        assert len(st["datasets"]["full-a"]["batches"]) == N // 2 // BATCH
        assert s.stats().get("dead_lettered") == 0, s.stats()
        assert not T.store_modes(store), "modes: %s" % T.store_modes(store)
    finally:
        if s and s.alive():
            s.proc.kill()
            s.proc.wait()
        if subprocess.run(["umount", disk]).returncode != 0:
            subprocess.run(["umount", "-l", disk])


def sigterm_while_full():
    """Stopped while the disk is full: it exits 1 saying what it could not commit,
    and a sink started once there is room again stores everything once."""
    disk = T.workfile("disk2")
    ok, why = mount(disk, "8m")
    assert ok, "mount: " + why
    s = None
    try:
        topic = T.create_topic(T.topic("sink-full2"), 2, max_message_bytes=4194304)
        dlq = T.create_topic(T.topic("sink-full2-dlq"), 1)
        store = os.path.join(disk, "store")
        for p, lines in MSGS.items():
            T.produce_msgs(topic, [(T._msg(l)[1], l) for l in lines], partition=p)
        s = T.Sink(store, topic, dlq, extra=SINK_OPTS, name="full2").start()
        offs = full_then_stopped(s, store, topic, 0)
        rc = s.stop()
        err = s.stderr()
        assert rc == 1, "exit %s after SIGTERM with uncommitted items: %s" % (rc, err[-2000:])
        assert "stopping with uncommitted items" in err, err[-2000:]
        _, after = T.store_expect(store, topic, MSGS)
        assert after == offs, "offsets moved from %r to %r" % (offs, after)
        subprocess.run(["mount", "-o", "remount,size=64m", disk], check=True)
        s = T.Sink(store, topic, dlq, extra=SINK_OPTS, name="full2").start()
        ends = T.end_offsets(topic, 2)
        T.wait_until("the sink to reach the end of the topic %r" % ends,
                     lambda: T.store_offsets(store, topic) == ends or not s.alive(), 120)
        assert s.stop() == 0, "SIGTERM: " + s.stderr()[-2000:]
        st, _ = T.store_expect(store, topic, MSGS, at_end=True)
        assert sum(len(v["lines"]) for v in st["datasets"].values()) == N
    finally:
        if s and s.alive():
            s.proc.kill()
            s.proc.wait()
        if subprocess.run(["umount", disk]).returncode != 0:
            subprocess.run(["umount", "-l", disk])


probe = T.workfile("probe")
can, why = mount(probe, "1m")
if can:
    subprocess.run(["umount", probe], check=True)
    T.run(disk_full_then_space_again)
    T.run(sigterm_while_full)
else:
    for name in ("disk_full_then_space_again", "sigterm_while_full"):
        print("ok - %s # skip: cannot mount tmpfs (%s)" % (name, why), flush=True)
T.exit()
