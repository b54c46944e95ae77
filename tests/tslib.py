"""tests/tslib.py - helpers for integration tests of the services, in Python's standard library.

Each case is a function; run(case) prints "ok - NAME" or "not ok - NAME" and
exit() ends the script with the right status.  Kafka is reached through the
project's own tools (tracesift-produce, tests/tools/t-kafka) and kcat.
"""
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback

TOP = os.environ.get("TS_TOP") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("TS_BIN") or os.path.join(TOP, "bin")
BUILD = os.environ.get("TS_BUILD") or os.path.join(TOP, "build", "san")
BROKERS = os.environ.get("TS_BROKERS") or "127.0.0.1:9092"
SCALE = max(1.0, float(os.environ.get("TS_TIMEOUT_SCALE") or "1"))
LOGS = os.path.join(TOP, "build", "test-logs")

_failed = False
_work = tempfile.mkdtemp(prefix="tstest.")


def note(msg):
    print("# " + str(msg).replace("\n", "\n# "), flush=True)


def run(case):
    global _failed
    try:
        case()
        print("ok - " + case.__name__, flush=True)
    except Exception as e:  # a failed assertion or anything unexpected
        _failed = True
        note("".join(traceback.format_exception(type(e), e, e.__traceback__))[-3000:])
        print("not ok - " + case.__name__, flush=True)
    finally:
        Sampler.stop_all()


def exit():
    subprocess.run(["rm", "-rf", _work])
    sys.exit(1 if _failed else 0)


def workfile(name):
    return os.path.join(_work, name)


def timeout(seconds):
    return seconds * SCALE


def wait_until(what, fn, seconds):
    deadline = time.monotonic() + timeout(seconds)
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout(seconds), what))
        time.sleep(0.3)


# ---- Kafka --------------------------------------------------------------

def topic(prefix):
    return "t-%s-%d-%d" % (prefix, os.getpid(), random.randrange(1 << 40))


def create_topic(name, partitions=1, **configs):
    args = [os.path.join(BUILD, "tests", "tools", "t-kafka"), "create", name, str(partitions)]
    args += ["%s=%s" % (k.replace("_", "."), v) for k, v in configs.items()]
    subprocess.run(args, check=True, env=dict(os.environ, TS_BROKERS=BROKERS))
    return name


def produce(topic_name, lines, check=True):
    """Publishes JSONL lines (str or bytes) through tracesift-produce; returns its stderr."""
    data = b"".join((l if isinstance(l, bytes) else l.encode()) + b"\n" for l in lines)
    p = subprocess.run([os.path.join(BIN, "tracesift-produce"), "-b", BROKERS, "-t", topic_name],
                       input=data, capture_output=True, timeout=timeout(300))
    if check and p.returncode != 0:
        raise AssertionError("tracesift-produce exit %d: %s" % (p.returncode, p.stderr.decode()[-2000:]))
    return p.stderr.decode()


def produce_raw(topic_name, payloads, key=None):
    """Publishes raw payloads with kcat (for records tracesift-produce would refuse)."""
    for pl in payloads:
        args = ["kcat", "-P", "-b", BROKERS, "-t", topic_name, "-X", "message.max.bytes=8000000"]
        if key is not None:
            args += ["-k", key]
        subprocess.run(args, input=pl, check=True, timeout=timeout(60))


def consume(topic_name, committed=True, limit=None):
    """Every message now in the topic, as dicts (key, payload, headers, partition, offset)."""
    args = ["kcat", "-C", "-b", BROKERS, "-t", topic_name, "-o", "beginning", "-e", "-q", "-J",
            "-X", "isolation.level=" + ("read_committed" if committed else "read_uncommitted"),
            "-X", "fetch.message.max.bytes=8000000"]
    if limit:
        args += ["-c", str(limit)]
    p = subprocess.run(args, capture_output=True, timeout=timeout(120))
    out = []
    for line in p.stdout.splitlines():
        if not line.strip():
            continue
        m = json.loads(line)
        h = m.get("headers") or []
        m["headers"] = dict(zip(h[0::2], h[1::2]))
        out.append(m)
    return out


# ---- records and the sampling decision ----------------------------------

_M = (1 << 64) - 1


def _mix(x):
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & _M
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & _M
    x ^= x >> 31
    return x


def draw(seed, trace_id):
    """The sampling draw as docs/sampling.md defines it, written again here."""
    hi, lo = int(trace_id[:16], 16), int(trace_id[16:], 16)
    h = _mix((seed + 0x9E3779B97F4A7C15) & _M)
    h = _mix(h ^ hi)
    h = _mix(h ^ lo)
    return (h >> 11) * 2.0 ** -53


def records(n, seed=1, first=0, tag_every=0):
    """n small valid records with varied classes: ~5% errors, ~10% slow, ~15% enterprise."""
    rnd = random.Random(seed)
    out = []
    for i in range(first, first + n):
        tid = "%016x%016x" % (rnd.getrandbits(64), rnd.getrandbits(64) | 1)
        err = rnd.random() < 0.05
        lat = rnd.choice([300, 800, 1500]) if rnd.random() > 0.10 else 2500 + rnd.randrange(3000)
        tier = "enterprise" if rnd.random() < 0.15 else rnd.choice(["free", "pro"])
        tags = ["rag"] + (["pick"] if tag_every and i % tag_every == 0 else [])
        rec = {"v": 1, "trace_id": tid, "name": "rag_query", "project": "t",
               "start_time": "2026-11-26T10:00:00.000001Z", "end_time": "2026-11-26T10:00:02.500000Z",
               "input": {"question": "question %d" % i}, "output": {"answer": "answer %d" % i},
               "tags": tags, "metadata": {"user_tier": tier, "i": i}, "model": "m1",
               "usage": {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120},
               "latency_ms": {"total": lat, "time_to_first_token": lat / 4},
               "error": {"type": "Timeout", "message": "slow"} if err else None, "spans": []}
        out.append(rec)
    return out


def dumps(rec):
    return json.dumps(rec, separators=(",", ":"), ensure_ascii=False)


# ---- the sampler --------------------------------------------------------

class Sampler:
    """A tracesift-sampler process with its own topics named in settings."""
    running = []

    def __init__(self, conf_text, instance=0, extra=(), name="sampler"):
        self.conf = workfile("%s-%d-%d.conf" % (name, instance, random.randrange(1 << 30)))
        with open(self.conf, "w") as f:
            f.write(conf_text)
        self.instance = instance
        self.extra = list(extra)
        self.name = name
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        self.log = os.path.join(LOGS, "%s-%s-%d-%d.log" % (os.path.basename(sys.argv[0]).split(".")[0],
                                                           self.name, self.instance, self.starts))
        logf = open(self.log, "wb")
        self.proc = subprocess.Popen([os.path.join(BIN, "tracesift-sampler"), "-c", self.conf,
                                      "-b", BROKERS, "--instance", str(self.instance)] + self.extra,
                                     stdout=subprocess.DEVNULL, stderr=logf)
        logf.close()
        Sampler.running.append(self)
        return self

    def stop(self, sig=signal.SIGTERM, wait=60):
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout(wait))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            raise AssertionError("sampler did not stop within %d s of signal %d" % (wait, sig))
        return rc

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stats(self):
        """The last stats line this process printed, as a dict ({} before the first)."""
        last = {}
        for line in self.stderr().splitlines():
            if line.startswith("{"):
                try:
                    last = json.loads(line)
                except ValueError:
                    pass
        return last

    def consumed(self, stage="select"):
        return self.stats().get(stage, {}).get("consumed", 0)

    def stderr(self):
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace")

    @classmethod
    def stop_all(cls):
        for s in cls.running:
            if s.alive():
                s.proc.kill()
                s.proc.wait()
        cls.running = []


def sampler_conf(topics, settings=None, classes=None, redact=None):
    """Config text: topics is a dict input/output/pending/state/dlq/group -> name."""
    lines = ["[sampler]"]
    for k in ("input", "output", "pending", "state", "dlq", "group"):
        if k in topics:
            lines.append("%s = %s" % (k, topics[k]))
    lines.append("stats.interval.ms = 200")
    for k, v in (settings or {}).items():
        lines.append("%s = %s" % (k, v))
    for name, body in (classes or [("default", ["rate = 1.0"])]):
        lines.append("[class %s]" % name)
        lines.extend(body)
    if redact:
        lines.append("[redact]")
        lines.extend(redact)
    return "\n".join(lines) + "\n"


def sampler_topics(prefix, partitions=3, with_batches=False):
    t = {"input": topic(prefix + "-in"), "output": topic(prefix + "-out"), "dlq": topic(prefix + "-dlq"),
         "group": topic(prefix + "-g")}
    create_topic(t["input"], partitions, max_message_bytes=4194304)
    create_topic(t["output"], partitions, max_message_bytes=4194304)
    create_topic(t["dlq"], 1, max_message_bytes=8388608)
    t["pending"] = topic(prefix + "-pend")
    t["state"] = topic(prefix + "-state")
    if with_batches:
        create_topic(t["pending"], partitions, max_message_bytes=4194304)
        create_topic(t["state"], partitions, cleanup_policy="compact")
    return t


def items_of(msgs):
    """The item records of a consumed output topic, parsed."""
    out = []
    for m in msgs:
        v = json.loads(m["payload"])
        if v.get("type") == "item":
            out.append(v)
    return out


# ---- raw messages (added for the dead-letter tests) ----------------------

_KDELIM, _MDELIM = b"\x1f", b"\x1e"


def produce_msgs(topic_name, msgs, partition=None):
    """Publishes (key, payload) pairs with one kcat, in order: key None gives a
    message without key, payload None one with a null value (bytes or str).
    Neither may contain the bytes 0x1e or 0x1f, nor be empty (empty means null)."""
    data = bytearray()
    for key, payload in msgs:
        k = key.encode() if isinstance(key, str) else (key or b"")
        v = payload.encode() if isinstance(payload, str) else (payload or b"")
        for part in (k, v):
            assert _KDELIM not in part and _MDELIM not in part, "a delimiter byte in a message"
        data += k + _KDELIM + v + _MDELIM
    args = ["kcat", "-P", "-b", BROKERS, "-t", topic_name, "-K", "\\x1f", "-D", "\\x1e", "-Z",
            "-X", "message.max.bytes=16000000"]
    if partition is not None:
        args += ["-p", str(partition)]
    subprocess.run(args, input=bytes(data), check=True, timeout=timeout(120))


def consume_raw(topic_name, committed=True):
    """Every message now in the topic, with key and payload as bytes (None when
    null): dicts (partition, offset, key, payload, headers), in each partition's order."""
    iso = "isolation.level=" + ("read_committed" if committed else "read_uncommitted")
    base = ["kcat", "-C", "-b", BROKERS, "-t", topic_name, "-o", "beginning", "-e", "-q",
            "-X", iso, "-X", "fetch.message.max.bytes=16000000"]
    p = subprocess.run(base + ["-f", "%p %o %K %S\\n%k%s\\n"], capture_output=True, timeout=timeout(120))
    out, buf, i = {}, p.stdout, 0
    while i < len(buf):
        nl = buf.index(b"\n", i)
        part, off, klen, vlen = (int(x) for x in buf[i:nl].split())
        i = nl + 1
        key = buf[i:i + klen] if klen >= 0 else None
        i += max(klen, 0)
        val = buf[i:i + vlen] if vlen >= 0 else None
        i += max(vlen, 0)
        assert buf[i:i + 1] == b"\n", "kcat output out of step at byte %d" % i
        i += 1
        out[(part, off)] = {"partition": part, "offset": off, "key": key, "payload": val, "headers": {}}
    # headers from the JSON envelope (payloads that are not UTF-8 survive surrogateescape)
    p = subprocess.run(base + ["-J"], capture_output=True, timeout=timeout(120))
    for line in p.stdout.decode("utf-8", "surrogateescape").splitlines():
        if line.strip():
            m = json.loads(line)
            h = m.get("headers") or []
            if (m["partition"], m["offset"]) in out:
                out[(m["partition"], m["offset"])]["headers"] = dict(zip(h[0::2], h[1::2]))
    return [out[k] for k in sorted(out)]


def metrics(path):
    """A Prometheus text file as {'name{labels}': value}; raises on a line that is not
    '# ...' or 'name{labels} value'."""
    import re
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
                         r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*,?)?\})? '
                         r'([-+]?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|NaN|[-+]Inf))( [-+]?[0-9]+)?$')
    out = {}
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    assert text.endswith("\n"), "metrics file does not end with a newline"
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("#") or not line.strip():
            continue
        m = line_re.match(line)
        assert m, "metrics line %d is not 'name{labels} value': %r" % (n, line)
        name = m.group(1) + (m.group(2) or "")
        assert name not in out, "metrics line %d repeats %s" % (n, name)
        out[name] = float(m.group(3))
    return out


# ---- the sink and the dataset store (added for the sink tests) ------------

class Sink(Sampler):
    """A tracesift-sink process on its own store; stats every 200 ms.  Runs
    register with Sampler.running, so run() kills what a case left behind."""

    def __init__(self, store, topic_name, dlq, archive=None, extra=(), name="sink"):
        self.store = store
        self.args = ["-b", BROKERS, "-t", topic_name, "--store", store, "--dlq", dlq,
                     "--stats-interval-ms", "200"]
        if archive:
            self.args += ["--archive", archive]
        self.args += list(extra)
        self.name = name
        self.instance = 0
        self.proc = None
        self.starts = 0

    def start(self, umask=None, env=None):
        """env: variables to add to the environment of this run."""
        self.starts += 1
        os.makedirs(LOGS, exist_ok=True)
        self.log = os.path.join(LOGS, "%s-%s-%d.log" % (os.path.basename(sys.argv[0]).split(".")[0],
                                                        self.name, self.starts))
        logf = open(self.log, "wb")
        kw = {} if umask is None else {"umask": umask}
        if env:
            kw["env"] = dict(os.environ, **env)
        self.proc = subprocess.Popen([os.path.join(BIN, "tracesift-sink")] + self.args,
                                     stdout=subprocess.DEVNULL, stderr=logf, **kw)
        logf.close()
        Sampler.running.append(self)
        return self

    def stop(self, sig=signal.SIGTERM, wait=60):
        """Signals it and returns its exit status (AssertionError if it does not stop)."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout(wait))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("sink did not stop within %d s of signal %d: %s" %
                                 (wait, sig, self.stderr()[-2000:]))

    def consumed(self):
        """Messages this process consumed, as of its last stats line."""
        return self.stats().get("consumed", 0)

    def wait_consumed(self, n, seconds=120):
        """Waits until this process consumed at least n messages (or died)."""
        wait_until("the sink to consume %d messages" % n, lambda: self.consumed() >= n or not self.alive(),
                   seconds)
        assert self.alive(), "sink stopped (exit %s): %s" % (self.proc.returncode, self.stderr()[-2000:])


def sink_item(rec, dataset, batch=None, position=None, seed=1, offset=0):
    """The item the sampler writes for rec selected into dataset (docs/sampling.md)."""
    item = {"type": "item", "id": rec["trace_id"]}
    if batch is not None:
        item.update(batch=batch, position=position)
    item.update({"dataset": dataset, "class": "default", "rate": 1.0, "seed": seed, "draw": 0.5,
                 "source": {"topic": "llm.traces", "partition": 0, "offset": offset},
                 "selected_at": "2026-11-26T21:04:05.123456Z", "record": rec})
    return item


def sink_trigger(dataset, batch, ids, batch_size):
    return {"type": "batch", "dataset": dataset, "batch": batch, "size": len(ids), "batch_size": batch_size,
            "partial": len(ids) < batch_size, "closed_at": "2026-11-26T21:04:06.000001Z", "items": list(ids)}


def sink_messages(recs, dataset, batch_size=0, seed=1, partial_tail=True):
    """What the sampler writes for recs selected into dataset, as dicts: the items,
    and with batch_size > 0 the batch numbers and a trigger after every
    batch_size items (and a partial trigger for a rest when partial_tail)."""
    out, ids = [], []
    for i, rec in enumerate(recs):
        if batch_size:
            out.append(sink_item(rec, dataset, i // batch_size + 1, i % batch_size, seed, i))
            ids.append(rec["trace_id"])
            if len(ids) == batch_size:
                out.append(sink_trigger(dataset, i // batch_size + 1, ids, batch_size))
                ids = []
        else:
            out.append(sink_item(rec, dataset, seed=seed, offset=i))
    if ids and partial_tail:
        out.append(sink_trigger(dataset, len(recs) // batch_size + 1, ids, batch_size))
    return out


def end_offsets(topic_name, partitions):
    """{partition: the offset the next message will get}."""
    args = ["kcat", "-Q", "-b", BROKERS]
    for p in range(partitions):
        args += ["-t", "%s:%d:-1" % (topic_name, p)]
    out = subprocess.run(args, capture_output=True, check=True, timeout=timeout(60)).stdout.decode()
    ends = {}
    for line in out.splitlines():
        parts = line.split()       # TOPIC [P] offset N
        if len(parts) == 4 and parts[2] == "offset":
            ends[int(parts[1].strip("[]"))] = int(parts[3])
    assert len(ends) == partitions, "kcat -Q: %r" % out
    return ends


def store_modes(store):
    """Paths in the store whose mode is not 0700 (folders) or 0600 (files), with the mode."""
    bad = []
    for d, dirs, files in os.walk(store):
        for name, want in [(None, 0o700)] + [(f, 0o600) for f in files]:
            path = d if name is None else os.path.join(d, name)
            mode = os.lstat(path).st_mode & 0o7777
            if mode != want:
                bad.append("%s %04o" % (os.path.relpath(path, os.path.dirname(store)), mode))
    return bad


def _zstd(args, data, what):
    p = subprocess.run(["zstd", "-q"] + args, input=data, capture_output=True, timeout=timeout(120))
    assert p.returncode == 0, "zstd %s %s: %s" % (" ".join(args), what, p.stderr.decode()[-500:])
    return p.stdout


def store_read(store):
    """The store as its MANIFEST says, read with zstd and no tracesift code:
    {"offsets": {(topic, partition): next}, "manifest": {...}, "datasets": {name:
    {"lines": [item bytes...], "batches": [dicts from the batches file], "open": [...],
    "segments": [(path, committed bytes, size on disk)]}}}.  Asserts that every
    segment's committed bytes pass `zstd -t` and decode to as many lines as it says."""
    with open(os.path.join(store, "MANIFEST"), "rb") as f:
        mf = json.loads(f.read())
    assert mf.get("format") == "tracesift-store" and mf.get("version") == 1, "MANIFEST: %r" % mf
    out = {"manifest": mf, "datasets": {}, "offsets": {}}
    for key, nxt in mf["offsets"].items():
        t, p = key.rsplit("/", 1)
        out["offsets"][(t, int(p))] = nxt
    for name, ds in mf["datasets"].items():
        folder = os.path.join(store, "datasets", name)
        lines, segs = [], []
        for seg in ds["segments"]:
            path = os.path.join(folder, seg["file"])
            with open(path, "rb") as f:
                data = f.read()
            assert len(data) >= seg["bytes"], "%s: %d bytes on disk, %d committed" % (path, len(data), seg["bytes"])
            data = data[:seg["bytes"]]
            _zstd(["-t", "-"], data, path)
            text = _zstd(["-dc", "-"], data, path)
            got = text.split(b"\n")
            assert got[-1] == b"", "%s: does not end with a newline" % path
            assert len(got) - 1 == seg["items"], "%s: %d lines, manifest says %d" % (path, len(got) - 1, seg["items"])
            lines += got[:-1]
            segs.append((path, seg["bytes"], os.path.getsize(path)))
        assert len(lines) == ds["items"], "%s: %d lines, manifest says %d items" % (name, len(lines), ds["items"])
        batches = []
        if ds["batches"]["bytes"]:
            with open(os.path.join(folder, "batches"), "rb") as f:
                text = f.read()[:ds["batches"]["bytes"]]
            batches = [json.loads(l) for l in text.split(b"\n")[:-1]]
            assert len(batches) == ds["batches"]["count"], "%s: batches file and manifest disagree" % name
        out["datasets"][name] = {"lines": lines, "batches": batches, "open": ds["open_batches"],
                                 "segments": segs}
    return out


def store_offsets(store, topic_name):
    """{partition: next offset} of topic_name in the store's MANIFEST ({} before one)."""
    try:
        with open(os.path.join(store, "MANIFEST"), "rb") as f:
            offs = json.loads(f.read())["offsets"]
    except (OSError, ValueError):
        return {}
    return {int(k.rsplit("/", 1)[1]): v for k, v in offs.items() if k.rsplit("/", 1)[0] == topic_name}


def produce_paced(topic_name, by_partition, seconds, key=None):
    """Publishes {partition: [payload bytes]} at an even pace over about seconds
    (one kcat per partition fed as time goes), so that a consumer sees a stream.
    key: a function payload -> key (bytes or str), or None."""
    procs = {}
    for p in by_partition:
        procs[p] = subprocess.Popen(["kcat", "-P", "-b", BROKERS, "-t", topic_name, "-p", str(p),
                                     "-K", "\\x1f", "-D", "\\x1e", "-Z", "-X", "message.max.bytes=16000000"],
                                    stdin=subprocess.PIPE)
    sent = {p: 0 for p in by_partition}
    start = time.monotonic()
    try:
        while any(sent[p] < len(v) for p, v in by_partition.items()):
            frac = min(1.0, (time.monotonic() - start) / seconds)
            for p, lines in by_partition.items():
                hi = int(len(lines) * frac)
                if hi > sent[p]:
                    data = bytearray()
                    for line in lines[sent[p]:hi]:
                        k = key(line) if key else b""
                        k = k.encode() if isinstance(k, str) else k
                        assert _KDELIM not in line + k and _MDELIM not in line + k, "a delimiter byte in a message"
                        data += k + _KDELIM + line + _MDELIM
                    procs[p].stdin.write(bytes(data))
                    procs[p].stdin.flush()
                    sent[p] = hi
            time.sleep(0.05)
    finally:
        for p, proc in procs.items():
            proc.stdin.close()
        rcs = {p: proc.wait(timeout(120)) for p, proc in procs.items()}
    assert not any(rcs.values()), "kcat -P exit status %r" % rcs


_parsed = {}


def _msg(line):
    """(type, dataset, id or batch, trigger item ids) of an item or trigger line (cached)."""
    m = _parsed.get(line)
    if m is None:
        v = json.loads(line)
        m = (v["type"], v["dataset"], v["id"] if v["type"] == "item" else v["batch"], v.get("items"),
             v.get("partial"))
        _parsed[line] = m
    return m


def store_expect(store, topic_name, by_partition, at_end=False):
    """Asserts that the store holds exactly the items of the messages of
    topic_name below the offsets its MANIFEST records ({partition: [item and
    trigger lines]}, no id twice): each once, byte for byte, in each
    partition's order, and a complete batch for every trigger read.  at_end:
    the offsets are the ends of the topic, and no file holds bytes past its
    committed length.  Returns (store_read(store), offsets)."""
    st = store_read(store)
    offs = {p: st["offsets"].get((topic_name, p), 0) for p in by_partition}
    extra = {k for k in st["offsets"] if k[0] == topic_name and k[1] not in by_partition}
    assert not extra, "offsets of partitions that were not written: %s" % extra
    part_of, want, triggers = {}, {}, {}
    for p, lines in by_partition.items():
        assert offs[p] <= len(lines), "partition %d: offset %d past the %d messages" % (p, offs[p], len(lines))
        for line in lines[:offs[p]]:
            kind, ds, key, ids, partial = _msg(line)
            want.setdefault(ds, {}).setdefault(p, [])
            if kind == "item":
                want[ds][p].append(line)
                part_of[line] = p
            else:
                triggers.setdefault(ds, []).append((key, ids, partial))
    names = set(st["datasets"])
    assert names <= set(want), "datasets %s, expected at most %s" % (sorted(names), sorted(want))
    for ds in want:
        got = st["datasets"].get(ds, {"lines": [], "batches": [], "open": []})
        n = sum(len(v) for v in want[ds].values())
        assert len(got["lines"]) == n, "dataset '%s': %d items stored, %d below the offsets %r" % (
            ds, len(got["lines"]), n, offs)
        for p, lines in want[ds].items():
            mine = [l for l in got["lines"] if part_of.get(l) == p]
            if mine != lines:
                i = next((i for i, (x, y) in enumerate(zip(mine, lines)) if x != y), min(len(mine), len(lines)))
                raise AssertionError("dataset '%s', partition %d: %d items stored, %d expected, first "
                                     "difference at item %d" % (ds, p, len(mine), len(lines), i))
        seq = {_msg(l)[2]: i for i, l in enumerate(got["lines"])}
        trig = triggers.get(ds, [])
        batches = sorted(got["batches"], key=lambda b: b["batch"])
        assert [b["batch"] for b in batches] == sorted(t[0] for t in trig), \
            "dataset '%s': complete batches %s, triggers read %s" % (
                ds, [b["batch"] for b in batches][-5:], sorted(t[0] for t in trig)[-5:])
        for b, (num, ids, partial) in zip(batches, sorted(trig)):
            assert b["size"] == len(ids) and b["partial"] == partial and \
                b["first_seq"] == min(seq[i] for i in ids), "dataset '%s': batch %r, trigger of %d items" % (
                    ds, b, len(ids))
        assert all(not o["trigger"] for o in got["open"]), "open batches with a trigger: %r" % got["open"]
    if at_end:
        ends = end_offsets(topic_name, len(by_partition))
        assert offs == ends, "store offsets %r, ends of the topic %r" % (offs, ends)
        for ds, d in st["datasets"].items():
            for path, committed, size in d["segments"]:
                assert size == committed, "%s: %d bytes, %d committed" % (path, size, committed)
            folder = os.path.join(store, "datasets", ds)
            listed = {os.path.basename(s[0]) for s in d["segments"]}
            unlisted = [f for f in os.listdir(folder) if f.startswith("seg-") and f not in listed]
            assert not unlisted, "segments the MANIFEST does not list: %s" % unlisted
            mf = st["manifest"]["datasets"][ds]
            for f in ("ids", "batches"):
                path = os.path.join(folder, f)
                size = os.path.getsize(path) if os.path.exists(path) else 0
                assert size == mf[f]["bytes"], "%s: %d bytes, %d committed" % (path, size, mf[f]["bytes"])
    return st, offs


# ---- replay (added for the replay tests) -----------------------------------

def produce_at(topic_name, rows):
    """Publishes (partition, timestamp_ms, key, value) rows with those Kafka timestamps
    (tests/tools/t-produce-at): partition -1 lets the key decide, key "" or None sends
    no key, value "" or None a null value.  Neither may hold a tab or a newline."""
    lines = []
    for part, ts, key, value in rows:
        key = key or ""
        value = value if isinstance(value, str) else (value or b"").decode()
        assert "\t" not in key + value and "\n" not in key + value, "a tab or newline in a message"
        lines.append("%d\t%d\t%s\t%s\n" % (part, ts, key, value))
    p = subprocess.run([os.path.join(BUILD, "tests", "tools", "t-produce-at"), topic_name],
                       input="".join(lines).encode(), capture_output=True, timeout=timeout(120),
                       env=dict(os.environ, TS_BROKERS=BROKERS))
    if p.returncode != 0:
        raise AssertionError("t-produce-at exit %d: %s" % (p.returncode, p.stderr.decode()[-2000:]))


def delete_before(topic_name, partition, offset):
    """Deletes the records of a partition before offset, as retention would."""
    p = subprocess.run([os.path.join(BUILD, "tests", "tools", "t-produce-at"), "--delete-before", topic_name,
                        str(partition), str(offset)], capture_output=True, timeout=timeout(60),
                       env=dict(os.environ, TS_BROKERS=BROKERS))
    if p.returncode != 0:
        raise AssertionError("t-produce-at --delete-before: %s" % p.stderr.decode()[-2000:])


def rfc3339(us):
    """Microseconds since the epoch as the record format writes them (6 digits, Z)."""
    import datetime
    t = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(microseconds=us)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def tstime_us(s):
    """An RFC 3339 timestamp of the form rfc3339() writes, as microseconds since the epoch."""
    import datetime
    t = datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    d = t - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    return (d.days * 86400 + d.seconds) * 1000000 + d.microseconds


def timed_records(n, seed=1, t0_ms=1795651200000, step_ms=90000):
    """n valid records whose start_time steps step_ms apart from t0_ms (3,000 of them
    span three days), each with the Kafka timestamp it was produced at: its end_time
    plus up to 2 s, so timestamps are a little out of order.  Varied names, models
    (some null or absent), tags (some empty, one repeated), metadata, errors of
    three types, tokens and latencies (some absent or null).  Returns [(rec, ts_ms)]."""
    rnd = random.Random(seed)
    models = ["gpt-4o-mini-2024-07-18", "llama-3.1-8b-instruct", "claude-3-5-haiku", None, "absent"]
    out = []
    for i in range(n):
        tid = "%016x%016x" % (rnd.getrandbits(64), rnd.getrandbits(64) | 1)
        start = t0_ms * 1000 + i * step_ms * 1000 + rnd.randrange(step_ms * 500)
        lat = round(rnd.choice([rnd.uniform(80, 900), rnd.uniform(900, 2500), rnd.uniform(2500, 9000)]), 3)
        end = start + int(lat * 1000)
        rec = {"v": 1, "trace_id": tid, "name": rnd.choice(["rag_query", "chat", "summarize"]),
               "project": "replay", "start_time": rfc3339(start), "end_time": rfc3339(end),
               "input": {"question": "q%d" % i}, "output": {"answer": "a%d" % i}}
        tags = rnd.sample(["rag", "production", "beta", "pick", "caf\u00e9"], rnd.randrange(0, 3))
        if i % 97 == 0:
            tags = ["rag", "rag"]
        if i % 7 != 3:
            rec["tags"] = tags
        rec["metadata"] = {"user_tier": rnd.choice(["free", "pro", "enterprise"]), "build": rnd.choice([41, 42]),
                           "beta": rnd.random() < 0.3}
        m = rnd.choice(models)
        if m != "absent":
            rec["model"] = m
        if i % 11 != 5:
            usage = {"input_tokens": rnd.randrange(10, 2000), "output_tokens": rnd.randrange(1, 500)}
            if i % 13 != 7:
                usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
            rec["usage"] = usage
        if i % 17 != 2:
            rec["latency_ms"] = {"total": lat if i % 19 != 4 else None,
                                 "time_to_first_token": round(lat * rnd.uniform(0.1, 0.6), 3)}
        if rnd.random() < 0.08:
            rec["error"] = {"type": rnd.choice(["timeout", "RateLimitError", "429"]), "message": "failed"}
        elif rnd.random() < 0.5:
            rec["error"] = None
        out.append((rec, end // 1000 + rnd.randrange(2000)))
    return out


def replay(args, check=True, timeout_s=120, **kw):
    """Runs tracesift-replay -b BROKERS ARGS; returns the CompletedProcess (stdout as
    bytes).  check: the exit status must be 0."""
    p = subprocess.run([os.path.join(BIN, "tracesift-replay"), "-b", BROKERS] + list(args),
                       capture_output=True, timeout=timeout(timeout_s), **kw)
    if check and p.returncode != 0:
        raise AssertionError("tracesift-replay %s: exit %d: %s" % (" ".join(args), p.returncode,
                                                                  p.stderr.decode()[-2000:]))
    return p


def nearest_rank(values, pct):
    """The percentile as replay and tracesift-dataset compute it (None for no values)."""
    if not values:
        return None
    v = sorted(values)
    rank = (len(v) * pct + 99) // 100
    return v[max(rank, 1) - 1]


# ---- Kafka properties: what a program made its clients with, what it refused ----

def kafka_confs(text):
    """{client name: {property: value}} that librdkafka printed under -X debug=conf
    (every property not at its default) for each client a program made."""
    confs = {}
    for line in text.splitlines():
        m = re.match(r"%7\|[0-9.]+\|CONF\|([^|]*#(?:consumer|producer)-[0-9]+)\| \[thrd:[^]]*\]: +(.*)$", line)
        if m and " = " in m.group(2):
            k, v = m.group(2).split(" = ", 1)
            confs.setdefault(m.group(1), {})[k.strip()] = v.strip()
    return confs


def assert_refused(args, rc, err, *want):
    """A program refused args before it made a Kafka client: exit 2, and its
    stderr is one "% ERROR: " line holding each string of want."""
    note("%r: exit %d: %s" % (args, rc, err.strip()[-300:]))
    assert rc == 2, "%r: exit %d, want 2: %s" % (args, rc, err[-1500:])
    for w in want:
        assert w in err, "%r: %r not in: %s" % (args, w, err[-1500:])
    assert err.startswith("% ERROR: ") and len(err.strip().splitlines()) == 1, \
        "%r: more than the one message (a client was made before the refusal?): %s" % (args, err[-1500:])
