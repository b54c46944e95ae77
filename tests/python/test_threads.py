"""tests/python/test_threads.py - threads and thread pools started inside a trace join it, with no help

A plain threading.Thread, a ThreadPoolExecutor (whose threads are shared by
requests), a Thread subclass with its own run(), a thread created in one call
and started in another, threads outliving the span or the trace that started
them, and threads started outside any trace (left as they were).  Each
asserts the span tree of the records read back from Kafka.
"""
import concurrent.futures
import contextvars
import threading
import time

import tracesift
import tracesift._threads
from tracesift._span import current
from conftest import outlive_trace, spans_by_name


@tracesift.track(type="tool")
def work(i):
    time.sleep(0.002)
    return i * i


def parents(rec, name):
    """The names of the parents of the spans called name (None: the root)."""
    ids = {s["span_id"]: s["name"] for s in rec["spans"]}
    return sorted((ids.get(s["parent_span_id"]) or "") for s in rec["spans"] if s["name"] == name)


def test_plain_thread_joins_the_trace(kafka):
    @tracesift.track
    def stage():
        threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
        threads.append(threading.Thread(target=work, kwargs={"i": 3}))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all("run" not in vars(t) for t in threads)  # the wrapper is gone once run() returned
        return "ok"

    @tracesift.track
    def request():
        return stage()

    assert request() == "ok"
    rec = kafka.record()
    by = spans_by_name(rec)
    assert sorted(s["input"]["i"] for s in by["work"]) == [0, 1, 2, 3]
    assert parents(rec, "work") == ["stage"] * 4
    assert [s["output"] for s in sorted(by["work"], key=lambda s: s["input"]["i"])] == [0, 1, 4, 9]


def test_thread_pool_tasks_join_the_trace_that_submits_them(kafka):
    """The pool's threads start during the first request and serve the
    second: each task nests in the trace that submitted it, so the context
    must be copied at submit, not when a thread starts.  A task submitted
    outside any trace is a trace of its own."""
    pool = concurrent.futures.ThreadPoolExecutor(2)

    @tracesift.track
    def request(n):
        futs = [pool.submit(work, n * 10 + i) for i in range(3)]
        done = list(pool.map(work, [n * 10 + 3]))
        return sorted(f.result() for f in futs) + done

    try:
        assert request(1) == [100, 121, 144, 169]
        assert request(2) == [400, 441, 484, 529]
        assert pool.submit(work, 7).result() == 49
        out = pool.submit(current.get).result()
    finally:
        pool.shutdown()
    assert out is None  # the pool's threads carry no request's context
    recs = kafka.records(3)
    by_req = {r["input"]["n"]: r for r in recs if r["name"] == "request"}
    for n in (1, 2):
        rec = by_req[n]
        assert sorted(s["input"]["i"] for s in rec["spans"]) == [n * 10 + i for i in range(4)]
        assert all(s["parent_span_id"] is None for s in rec["spans"])
    (alone,) = [r for r in recs if r["name"] == "work"]
    assert alone["input"] == {"i": 7} and alone["spans"] == []


def test_thread_subclass_with_its_own_run(kafka):
    class Worker(threading.Thread):
        def __init__(self, items):
            super().__init__(name="worker")
            self.items = items
            self.results = []

        def run(self):
            for i in self.items:
                self.results.append(work(i))

    class Timed(threading.Timer):
        pass

    @tracesift.track
    def request():
        w = Worker([1, 2])
        w.start()
        t = Timed(0.001, work, args=(3,))
        t.start()
        w.join()
        t.join()
        return w.results

    assert request() == [1, 4]
    rec = kafka.record()
    assert sorted(s["input"]["i"] for s in rec["spans"]) == [1, 2, 3]
    assert parents(rec, "work") == ["", "", ""]  # children of the root (parent_span_id null)


def test_thread_created_in_one_call_started_in_another(kafka):
    """Created inside a span and started outside any: the context of its
    creation.  Started inside one: the context of its start."""
    @tracesift.track
    def make(i):
        return threading.Thread(target=work, args=(i,))

    @tracesift.track
    def starter(t):
        t.start()
        t.join()

    @tracesift.track
    def request():
        a = make(1)
        b = make(2)
        saved = contextvars.Context()
        saved.run(a.start)   # outside any span: a keeps make's context
        a.join()
        starter(b)           # inside starter: b takes starter's
        return "ok"

    request()
    rec = kafka.record()
    by = spans_by_name(rec)
    span_of = {s["span_id"]: s for s in rec["spans"]}
    (w1,) = [s for s in by["work"] if s["input"]["i"] == 1]
    (w2,) = [s for s in by["work"] if s["input"]["i"] == 2]
    assert span_of[w1["parent_span_id"]]["name"] == "make"
    assert span_of[w2["parent_span_id"]]["name"] == "starter"


def test_thread_outliving_the_span_that_started_it(kafka):
    """The call that started the thread returned (its span ended); the trace
    is still open: the thread's spans are still that span's children."""
    go = threading.Event()
    threads = []

    @tracesift.track
    def spawn():
        t = threading.Thread(target=lambda: (go.wait(10), work(5)))
        t.start()
        threads.append(t)
        return "spawned"

    @tracesift.track
    def request():
        spawn()
        go.set()
        threads[0].join()
        return "ok"

    request()
    rec = kafka.record()
    by = spans_by_name(rec)
    (sp,), (w,) = by["spawn"], by["work"]
    assert w["parent_span_id"] == sp["span_id"]
    assert w["start_time"] >= sp["end_time"]
    assert w["output"] == 25


def test_thread_outliving_its_trace_without_help(kafka):
    """A span still open when its trace is sent is in the record, ended with
    the trace, and its own end is counted; a call the thread makes after the
    trace was sent begins a trace of its own.  Nothing touches the sent trace
    (ASan would see it)."""
    recs, late = outlive_trace(kafka, work, lambda fn: threading.Thread(target=fn))
    (child,) = recs["request"]["spans"]
    assert child["name"] == "slow_child" and "output" not in child
    assert child["end_time"] <= recs["request"]["end_time"]
    assert recs["work"]["input"] == {"i": 99} and recs["work"]["spans"] == []
    assert late == 1


def test_threads_outside_any_trace_are_untouched(kafka):
    seen = []

    def probe():
        seen.append(current.get())
        work(1)

    t = threading.Thread(target=probe)
    assert "_tracesift_context" not in vars(t)
    t.start()
    assert "run" not in vars(t)  # started as it would be without tracesift
    t.join()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(probe).result()
    assert seen == [None, None]
    recs = kafka.records(2)
    assert [r["name"] for r in recs] == ["work", "work"] and all(r["spans"] == [] for r in recs)


def test_install_is_idempotent_and_start_failures_restore_the_thread():
    start = threading.Thread.start
    submit = concurrent.futures.ThreadPoolExecutor.submit
    tracesift._threads.install()
    tracesift._threads.install()
    assert threading.Thread.start is start and concurrent.futures.ThreadPoolExecutor.submit is submit
    assert start.__wrapped__ is not None and start.__name__ == "start"

    @tracesift.track
    def twice():
        t = threading.Thread(target=lambda: None)
        t.start()
        t.join()
        try:
            t.start()  # a thread starts once: RuntimeError, as without tracesift
        except RuntimeError:
            return "run" in vars(t)
        return "started twice"
    assert twice() is False
