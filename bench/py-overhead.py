#!/usr/bin/env python3
"""bench/py-overhead.py - what a traced call costs the calling thread: @tracesift.track, opik's @track, a hand-written producer

Times, on the calling thread, each call of the same small functions, plain
and traced three ways, interleaved in one process:

  - plain: the undecorated functions;
  - @tracesift.track (python/ in the tree over lib/libtracesift.so.1), to the
    live local broker, a new topic;
  - opik's @track (from PyPI), its backend pointed at an unreachable local
    URL (OPIK_URL_OVERRIDE=http://127.0.0.1:1/api), as the issue asks;
  - a hand-written decorator over confluent_kafka.Producer.produce(json.dumps(...))
    (+ poll(0)) with tracesift's producer settings, same broker, its own topic.
    It does less than the others: no parent ids, no error capture, no JSON
    safety, input as {"args", "kwargs"}; nested calls are collected in a list
    and sent with the outermost one.

Two shapes: one decorated function called alone (a trace of one span), and a
request of five (generate -> expand, retrieve, rerank, call_llm: a trace of 5
spans), timed as a whole.  Each round runs every candidate for BENCH_PY_CALLS
calls (BENCH_PY_OPIK_CALLS for opik, which is much slower), in a rotating
order, after a warm-up; figures are medians over BENCH_PY_ROUNDS rounds of
each round's percentile.  Overhead = traced percentile - plain percentile of
the same round.

Run by bench/run.sh (make bench) with the venv it makes (BENCH_PY_PYTHON: this
script re-executes itself with it); writes its section to
$BENCH_OUT/py-overhead.py.md, or stdout without BENCH_OUT.
"""
import contextvars
import functools
import json
import os
import platform
import statistics
import sys
import time
import uuid

_venv = os.environ.get("BENCH_PY_PYTHON")
if _venv and os.path.exists(_venv) and os.path.realpath(sys.prefix) != os.path.realpath(
        os.path.dirname(os.path.dirname(_venv))):
    os.execv(_venv, [_venv] + sys.argv)

os.environ.setdefault("OPIK_URL_OVERRIDE", "http://127.0.0.1:1/api")
os.environ.setdefault("OPIK_PROJECT_NAME", "tracesift-bench")

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "python"))
import tracesift  # noqa: E402

BROKERS = os.environ.get("TS_BROKERS", "127.0.0.1:9092")
CALLS = int(os.environ.get("BENCH_PY_CALLS", "5000"))
OPIK_CALLS = int(os.environ.get("BENCH_PY_OPIK_CALLS", "500"))
ROUNDS = int(os.environ.get("BENCH_PY_ROUNDS", "7"))
WARMUP = 200
PRODUCER = {"enable.idempotence": True, "acks": "all", "compression.codec": "zstd", "linger.ms": 50,
            "batch.size": 1000000}


def say(msg):
    print("%% bench: py-overhead: %s" % msg, file=sys.stderr, flush=True)


try:
    import confluent_kafka
    import confluent_kafka.admin
except ImportError:
    confluent_kafka = None
try:
    import logging
    import opik
    logging.getLogger("opik").setLevel(logging.CRITICAL)  # it reports every failed send
except Exception as e:  # ImportError, or whatever opik's import does wrong
    say("no opik: %r" % (e,))
    opik = None


# ---- the functions: plain, then decorated three ways ------------------------

DOCS = [{"id": "kb-%d" % i, "text": "passage %d about rotating API keys" % i, "score": 1 - i / 10} for i in range(5)]


def make(track):
    """The functions of both shapes, decorated with track (identity: plain)."""
    @track
    def answer(question, k=3):
        return {"answer": question.upper(), "k": k}

    @track
    def expand(question):
        return {"queries": [question, question.lower()]}

    @track
    def retrieve(queries, top_k=5):
        return {"documents": DOCS[:top_k]}

    @track
    def rerank(question, documents, keep=3):
        return documents[:keep]

    @track
    def call_llm(question, context):
        return {"content": "Open Settings and press Rotate.", "finish_reason": "stop"}

    @track
    def generate(question):
        q = expand(question)["queries"]
        docs = rerank(question, retrieve(q)["documents"])
        return {"answer": call_llm(question, [d["text"] for d in docs])["content"],
                "context": [d["text"] for d in docs]}
    return answer, generate


def handwritten(producer, topic):
    """A decorator a service might write over confluent-kafka."""
    spans = contextvars.ContextVar("spans", default=None)

    def track(fn):
        name = fn.__name__

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            mine = spans.get()
            root = mine is None
            if root:
                mine = []
                token = spans.set(mine)
            start = time.time()
            try:
                out = fn(*args, **kwargs)
            finally:
                if root:
                    spans.reset(token)
            rec = {"name": name, "input": {"args": args, "kwargs": kwargs}, "output": out,
                   "start_time": start, "end_time": time.time()}
            if root:
                rec["trace_id"] = uuid.uuid4().hex
                rec["spans"] = mine
                producer.produce(topic, json.dumps(rec), key=rec["trace_id"])
                producer.poll(0)
            else:
                mine.append(rec)
            return out
        return wrapper
    return track


# ---- measuring ---------------------------------------------------------------

QUESTIONS = ["How do I rotate the API key of service account %d?" % i for i in range(64)]


def timed(fn, n):
    clock = time.perf_counter_ns
    qs = QUESTIONS
    out = [0] * n
    for i in range(n):
        q = qs[i & 63]
        t0 = clock()
        fn(q)
        out[i] = clock() - t0
    out.sort()
    return out


def pct(sorted_ns, p):
    return sorted_ns[min(len(sorted_ns) - 1, int(len(sorted_ns) * p / 100))] / 1000.0


def main():
    out_path = os.path.join(os.environ["BENCH_OUT"], os.path.basename(__file__) + ".md") \
        if os.environ.get("BENCH_OUT") else None
    lines = []
    w = lines.append
    w("## Python: what a traced call costs the calling thread\n")
    if confluent_kafka is None:
        w("Not run: confluent-kafka is not installed for %s (bench/run.sh makes a venv in "
          "build/py-bench-venv with it and opik; python3-venv and PyPI are needed).\n" % sys.executable)
        return finish(lines, out_path, 1)

    admin = confluent_kafka.admin.AdminClient({"bootstrap.servers": BROKERS})
    run_id = "%d-%d" % (os.getpid(), int(time.time()))
    topics = ["bench-py-ts-" + run_id, "bench-py-ck-" + run_id]
    for f in admin.create_topics([confluent_kafka.admin.NewTopic(t, 6, 1) for t in topics]).values():
        f.result(30)
    try:
        return measure(lines, out_path, topics)
    finally:
        for f in admin.delete_topics(topics).values():
            try:
                f.result(30)
            except Exception:
                pass


def measure(lines, out_path, topics):
    w = lines.append
    ok = tracesift.configure(brokers=BROKERS, topic=topics[0], project="bench")
    if not ok:
        w("Not run: tracesift.configure failed: %s\n" % tracesift.stats()["package_error"])
        return finish(lines, out_path, 1)
    producer = confluent_kafka.Producer(dict(PRODUCER, **{"bootstrap.servers": BROKERS}))
    cands = [("plain", make(lambda f: f)),
             ("@tracesift.track", make(tracesift.track)),
             ("hand-written confluent-kafka produce(json.dumps(...))", make(handwritten(producer, topics[1])))]
    if opik is not None:
        cands.append(("opik @track (backend unreachable)", make(opik.track)))
    names = [c[0] for c in cands]
    res = {(n, shape): [] for n in names for shape in (0, 1)}   # per round: sorted ns
    for shape in (0, 1):
        for n, fns in cands:
            timed(fns[shape], WARMUP)
    tracesift.flush(10)
    producer.flush(10)
    t_start = time.monotonic()
    for r in range(ROUNDS):
        order = cands[r % len(cands):] + cands[:r % len(cands)]
        for shape in (0, 1):
            for n, fns in order:
                calls = OPIK_CALLS if n.startswith("opik") else CALLS
                res[(n, shape)].append(timed(fns[shape], calls))
                if n.startswith("@tracesift"):
                    tracesift.flush(10)     # untimed: each round starts with an empty queue
                elif n.startswith("hand"):
                    producer.flush(10)
        say("round %d of %d done" % (r + 1, ROUNDS))
    elapsed = time.monotonic() - t_start
    left_ts = tracesift.flush(30)
    left_ck = producer.flush(30)
    st = tracesift.stats()

    versions = "Python %s (%s)" % (platform.python_version(), sys.executable)
    ck = confluent_kafka.version()
    versions += "; confluent-kafka %s with its own librdkafka %s" % (ck if isinstance(ck, str) else ck[0],
                                                                   confluent_kafka.libversion()[0])
    if opik is not None:
        try:
            from importlib.metadata import version
            versions += "; opik %s" % version("opik")
        except Exception:
            pass
    with open(st["library"] if os.sep in st["library"] else os.path.join(TOP, "lib", "libtracesift.so.1"), "rb") as f:
        build = "an ASan build (make SAN=1): figures not representative" if b"libasan.so" in f.read() \
            else "the -O2 build"
    w("Time on the calling thread per call (`time.perf_counter_ns` around the call, which costs "
      "about 0.1 µs), in one process, interleaved.  %s.  tracesift: this tree's package over "
      "`lib/libtracesift.so.1` (%s), to the live local broker, a new 6-partition topic, "
      "default settings (linger.ms=50, batch.size=1000000, zstd, idempotent, acks=all).  "
      "Hand-written: `Producer.produce(topic, json.dumps(record), key=trace_id)` and `poll(0)`, "
      "same broker and settings, its own topic; it records less (no parent ids, no errors, no "
      "JSON safety).  opik: `@opik.track` with its backend at an unreachable local URL "
      "(OPIK_URL_OVERRIDE=http://127.0.0.1:1/api): its sending thread fails in the background.  "
      "%d rounds of %d calls per candidate and shape (%d for opik), the order rotating each "
      "round, after %d warm-up calls; a flush between rounds (untimed).  Figures are medians over "
      "the rounds of each round's percentile; overhead = traced minus plain, round by round.\n"
      % (versions, build, ROUNDS, CALLS, OPIK_CALLS, WARMUP))

    def med(n, shape, p):
        return statistics.median(pct(x, p) for x in res[(n, shape)])

    def over(n, shape, p):
        return statistics.median(pct(x, p) - pct(b, p) for x, b in zip(res[(n, shape)], res[("plain", shape)]))

    titles = ("### One decorated function: `answer(question, k=3)` (a trace of one span)",
              "### A request of five: `generate` calling `expand`, `retrieve`, `rerank`, `call_llm` "
              "(a trace of 5 spans), timed as a whole")
    for shape in (0, 1):
        w(titles[shape] + "\n")
        w("| candidate | p50 µs | p99 µs | overhead p50 µs | overhead p99 µs | overhead p50 / tracesift's | overhead p99 / tracesift's |")
        w("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        ts50, ts99 = over(names[1], shape, 50), over(names[1], shape, 99)
        for n in names:
            if n == "plain":
                w("| plain | %.2f | %.2f | | | | |" % (med(n, shape, 50), med(n, shape, 99)))
                continue
            o50, o99 = over(n, shape, 50), over(n, shape, 99)
            w("| %s | %.2f | %.2f | %.2f | %.2f | %s | %s |" % (
                n, med(n, shape, 50), med(n, shape, 99), o50, o99,
                "1x" if n == names[1] else "**%.2fx**" % (o50 / ts50),
                "1x" if n == names[1] else "**%.2fx**" % (o99 / ts99)))
        w("")
    w("Goal: tracesift's overhead lower than both (a ratio above 1x means the other costs more).  "
      "Delivered by the end: tracesift %d of %d traces enqueued (%d dropped, %d still queued); "
      "hand-written %d still queued.  Timed part: %.0f s.\n"
      % (st["delivered"], st["enqueued"], st["dropped"], left_ts, left_ck, elapsed))
    return finish(lines, out_path, 0 if not left_ts and not st["dropped"] else 1)


def finish(lines, out_path, rc):
    text = "\n".join(lines) + "\n"
    if out_path:
        with open(out_path, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return rc


if __name__ == "__main__":
    sys.exit(main())
