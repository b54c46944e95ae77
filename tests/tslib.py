"""tests/tslib.py - helpers for integration tests of the services, in Python's standard library.

Each case is a function; run(case) prints "ok - NAME" or "not ok - NAME" and
exit() ends the script with the right status.  Kafka is reached through the
project's own tools (tracesift-produce, tests/tools/t-kafka) and kcat.
"""
import json
import os
import random
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
