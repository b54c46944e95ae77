#!/usr/bin/env python3
"""tests/integration/t5500-replay-sigint.py - SIGINT mid-replay leaves a whole zstd file of whole lines, and says how far it got"""
import json
import os
import random
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tslib as T  # noqa: E402

N = 2500
WORDS = ["tokens", "latency", "retrieval", "answer", "context", "model", "span", "trace", "audit", "replay",
         "kafka", "offset", "partition", "sample", "class", "rate", "seed", "draw", "dataset", "store"]
rnd = random.Random(5500)
ROWS = T.timed_records(N, seed=5500, step_ms=10000)
for r, _ in ROWS:
    # ~4 KB of text each: 10 MB to compress at level 19 takes seconds, time to interrupt it
    r["input"]["context"] = " ".join(rnd.choice(WORDS) + str(rnd.randrange(1000)) for _ in range(450))
TOPIC = T.create_topic(T.topic("rp-int"), 3, retention_ms=-1)
LINES = {r["trace_id"]: T.dumps(r) for r, _ in ROWS}
PART = {r["trace_id"]: i % 3 for i, (r, _) in enumerate(ROWS)}
ORDER = {r["trace_id"]: i for i, (r, _) in enumerate(ROWS)}
T.produce_at(TOPIC, [(i % 3, ts, r["trace_id"], LINES[r["trace_id"]]) for i, (r, ts) in enumerate(ROWS)])


def start(path, extra=()):
    args = [os.path.join(T.BIN, "tracesift-replay"), "-b", T.BROKERS, "-t", TOPIC, "-o", path] + list(extra)
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def check_file(path, err):
    """The file is whole: zstd -t passes, every line a record of the topic, each
    partition's records a prefix of it in order; as many as stderr says."""
    assert os.path.exists(path), "no output file after the signal: " + err
    assert not [f for f in os.listdir(os.path.dirname(path)) if ".tmp." in f], "a temporary file is left"
    if path.endswith(".zst"):
        t = subprocess.run(["zstd", "-tq", path], capture_output=True)
        assert t.returncode == 0, "zstd -t: %s" % t.stderr.decode()
        data = subprocess.run(["zstdcat", path], capture_output=True, check=True).stdout
    else:
        with open(path, "rb") as f:
            data = f.read()
    assert data == b"" or data.endswith(b"\n"), "the last line is cut"
    got = [json.loads(l) for l in data.split(b"\n")[:-1]]
    for rec in got:
        assert T.dumps(rec) == LINES[rec["trace_id"]], "a record changed"
    for part in range(3):
        mine = [ORDER[r["trace_id"]] for r in got if PART[r["trace_id"]] == part]
        want = [i for i, (r, _) in enumerate(ROWS) if i % 3 == part][:len(mine)]
        assert mine == want, "partition %d: not a prefix of the partition, in order" % part
    m = re.search(r"replayed \(interrupted\) (\d+) records", err)
    assert m and int(m.group(1)) == len(got), "stderr says %s, the file holds %d: %s" % (m and m.group(1), len(got),
                                                                                         err)
    assert re.search(r"interrupted after \d+ of %d offsets: partition 0 at \d+ of \[0, \d+\)" % N, err), err
    return len(got)


def sigint_mid_replay_keeps_a_whole_zstd_file():
    path = T.workfile("int.jsonl.zst")
    p = start(path, ["--zstd-level", "19"])
    tmp = "%s.tmp.%d" % (path, p.pid)
    deadline = time.monotonic() + T.timeout(30)
    while time.monotonic() < deadline and p.poll() is None:
        if os.path.exists(tmp) and os.path.getsize(tmp) > 0:
            break
        time.sleep(0.01)
    assert p.poll() is None, "replay ended before it could be interrupted: %s" % p.stderr.read().decode()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=T.timeout(30))
    err = err.decode()
    assert p.returncode == 130, "exit %d after SIGINT: %s" % (p.returncode, err)
    assert out == b"", "records on stdout with -o"
    assert "\r" not in err and "\033[" not in err, "a progress line when stderr is not a terminal"
    n = check_file(path, err)
    T.note("SIGINT after %d of %d records: %s" % (n, N, err.strip().splitlines()[-1]))
    assert 0 < n < N, "%d records: not interrupted mid-replay" % n


def sigterm_while_stdout_is_full():
    """A slow reader on stdout: SIGTERM while a write waits; what comes out is whole lines."""
    # unbuffered: communicate() reads the pipe itself, past any buffer of ours
    p = subprocess.Popen([os.path.join(T.BIN, "tracesift-replay"), "-b", T.BROKERS, "-t", TOPIC],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    first = b""
    while len(first) < 100000:
        first += p.stdout.read(100000 - len(first))
    assert p.poll() is None, "replay ended with its stdout full"
    p.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    rest, err = p.communicate(timeout=T.timeout(30))
    err = err.decode()
    data = first + rest
    assert p.returncode == 130, "exit %d after SIGTERM: %s" % (p.returncode, err)
    assert data.endswith(b"\n"), "the last line is cut"
    got = [json.loads(l) for l in data.split(b"\n")[:-1]]
    bad = [r["trace_id"] for r in got if T.dumps(r) != LINES[r["trace_id"]]]
    assert not bad, "%d of %d records changed, the first %s" % (len(bad), len(got), bad[:1])
    m = re.search(r"replayed \(interrupted\) (\d+) records", err)
    assert m and int(m.group(1)) == len(got) < N, "stderr says %s, stdout holds %d" % (m and m.group(1), len(got))
    T.note("SIGTERM with stdout full: %d whole records came out" % len(got))


def progress_on_a_terminal():
    import pty
    import select
    master, slave = pty.openpty()
    path = T.workfile("tty.jsonl.zst")
    p = subprocess.Popen([os.path.join(T.BIN, "tracesift-replay"), "-b", T.BROKERS, "-t", TOPIC, "-o", path,
                          "--zstd-level", "19"], stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    seen, deadline = b"", time.monotonic() + T.timeout(30)
    try:
        while time.monotonic() < deadline and not re.search(rb"offsets \(\d+%\), \d+ records/s, ETA \d+:\d\d", seen):
            if select.select([master], [], [], 0.1)[0]:
                seen += os.read(master, 4096)
            assert p.poll() is None, "replay ended without a progress line: %r" % seen[-500:]
        m = re.search(rb"\r% (\d+) records, (\d+) / 2500 offsets", seen)
        assert m, "no progress line on the terminal: %r" % seen[-500:]
        T.note("progress: %r" % seen[m.start():m.start() + 90].decode(errors="replace"))
        p.send_signal(signal.SIGINT)
        assert p.wait(T.timeout(30)) == 130
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)


T.run(sigint_mid_replay_keeps_a_whole_zstd_file)
T.run(sigterm_while_stdout_is_full)
T.run(progress_on_a_terminal)
T.exit()
