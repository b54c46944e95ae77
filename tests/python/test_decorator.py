"""tests/python/test_decorator.py - @track on every kind of callable, read back from Kafka

Exceptions (recorded and re-raised unchanged), async functions and tasks,
generators and async generators (time to first token, joined output, early
close, send/throw), threads started inside a call, methods, and arguments
that are very large or cannot be serialized.
"""
import asyncio
import concurrent.futures
import contextvars
import inspect
import math
import threading
import time

import pytest

import tracesift
from conftest import outlive_trace, spans_by_name


class Refused(Exception):
    pass


# ---- exceptions -------------------------------------------------------------

def test_exceptions_recorded_and_reraised(kafka):
    @tracesift.track(type="tool")
    def lookup(key):
        raise KeyError(key)

    @tracesift.track
    def handle(n):
        try:
            lookup("a")
        except KeyError:
            pass
        if n:
            raise Refused("refused %d" % n)
        return "fine"

    err = Refused("outer")
    with pytest.raises(Refused) as info:
        handle(7)
    assert str(info.value) == "refused 7"
    assert any(f.name == "handle" for f in info.traceback)  # the traceback reaches into the function
    assert handle(0) == "fine"

    @tracesift.track
    def reraise():
        raise err
    with pytest.raises(Refused) as info:
        reraise()
    assert info.value is err  # the very object, not a copy

    recs = {r.get("input", {}).get("n"): r for r in kafka.records(3)}
    assert recs[7]["error"] == {"type": "Refused", "message": "refused 7"}
    assert "output" not in recs[7]
    assert recs[0]["error"] is None and recs[0]["output"] == "fine"
    for n in (0, 7):
        (s,) = recs[n]["spans"]
        assert s["name"] == "lookup" and s["error"] == {"type": "KeyError", "message": "'a'"}
    assert recs[None]["error"] == {"type": "Refused", "message": "outer"}


def test_exception_with_broken_str(kafka):
    class Odd(Exception):
        def __str__(self):
            raise RuntimeError("no str")

    @tracesift.track
    def f():
        raise Odd()
    with pytest.raises(Odd):
        f()
    rec = kafka.record()
    assert rec["error"]["type"] == "Odd"


# ---- async ------------------------------------------------------------------

@tracesift.track(type="retrieval")
async def fetch(i):
    await asyncio.sleep(0.02 * (3 - i))   # finish out of order
    return i * 10


@tracesift.track(type="tool")
async def inner(x):
    await asyncio.sleep(0.01)
    return x + 1


@tracesift.track
async def nested(x):
    return await inner(x)


@tracesift.track(type="llm")
async def astream(prompt):
    await asyncio.sleep(0.05)
    for w in prompt.split():
        yield w + " "
        await asyncio.sleep(0.001)


@tracesift.track
async def handle_async(q):
    got = await asyncio.gather(fetch(0), fetch(1), fetch(2))
    task = asyncio.create_task(nested(got[1]))
    words = [w async for w in astream(q)]
    return {"got": got, "nested": await task, "text": "".join(words)}


def test_async_tasks_and_async_generators(kafka):
    assert inspect.iscoroutinefunction(handle_async)
    assert inspect.isasyncgenfunction(astream)

    async def main():
        # two requests at once: contexts must not mix
        return await asyncio.gather(handle_async("a b c"), handle_async("d e"))
    outs = asyncio.run(main())
    assert outs[0] == {"got": [0, 10, 20], "nested": 11, "text": "a b c "}
    recs = {r["input"]["q"]: r for r in kafka.records(2)}
    assert set(recs) == {"a b c", "d e"}
    for q, rec in recs.items():
        by = spans_by_name(rec)
        assert sorted(by) == ["astream", "fetch", "inner", "nested"]
        assert sorted(s["input"]["i"] for s in by["fetch"]) == [0, 1, 2]
        assert all(s["parent_span_id"] is None for s in by["fetch"] + by["nested"] + by["astream"])
        assert by["inner"][0]["parent_span_id"] == by["nested"][0]["span_id"]
        (a,) = by["astream"]
        assert a["output"] == "".join(w + " " for w in q.split())
        assert 50 <= a["latency_ms"]["time_to_first_token"] <= a["latency_ms"]["total"]
        assert rec["output"]["text"] == a["output"]


def test_async_exception_and_cancel(kafka):
    @tracesift.track
    async def boom():
        await asyncio.sleep(0)
        raise Refused("async")

    @tracesift.track
    async def slow():
        await asyncio.sleep(10)

    async def main():
        with pytest.raises(Refused):
            await boom()
        t = asyncio.create_task(slow())
        await asyncio.sleep(0.05)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
    asyncio.run(main())
    recs = {r["name"]: r for r in kafka.records(2)}
    assert recs["boom"]["error"] == {"type": "Refused", "message": "async"}
    assert recs["slow"]["error"]["type"] == "CancelledError"


def test_async_generator_closed_early(kafka):
    closed = []

    @tracesift.track
    async def numbers():
        try:
            for i in range(100):
                yield i
        finally:
            closed.append(True)

    async def main():
        agen = numbers()
        got = [await agen.__anext__() for _ in range(3)]
        await agen.aclose()
        return got
    assert asyncio.run(main()) == [0, 1, 2]
    assert closed == [True]
    rec = kafka.record()
    assert rec["output"] == [0, 1, 2] and rec["error"] is None


# ---- generators -------------------------------------------------------------

def test_generators(kafka):
    finished = []

    @tracesift.track(type="llm")
    def tokens(n, delay=0.0):
        try:
            time.sleep(delay)
            for i in range(n):
                yield "t%d " % i
        finally:
            finished.append(n)

    @tracesift.track
    def echo():
        total = 0
        while True:
            x = yield total
            if x is None:
                return "sum=%d" % total
            total += x

    @tracesift.track
    def fails():
        yield {"a": 1}
        raise Refused("midway")

    @tracesift.track
    def consume():
        out = []
        for t in tokens(3, delay=0.05):
            out.append(t)
        for t in tokens(50):
            if t == "t2 ":
                break              # closes the generator: output so far
        return "".join(out)

    assert inspect.isgeneratorfunction(tokens)
    assert consume() == "t0 t1 t2 "
    assert finished == [3, 50]

    g = echo()
    assert next(g) == 0 and g.send(5) == 5 and g.send(6) == 11
    with pytest.raises(StopIteration) as stop:
        g.send(None)
    assert stop.value.value == "sum=11"   # the return value survives the wrapper

    with pytest.raises(Refused):
        list(fails())

    gt = tokens(5)
    assert next(gt) == "t0 "
    with pytest.raises(Refused):
        gt.throw(Refused("thrown in"))  # passed to the generator, which does not catch it

    recs = {r["name"]: r for r in kafka.records(4)}
    by = spans_by_name(recs["consume"])
    full, cut = sorted(by["tokens"], key=lambda s: s["input"]["n"])
    assert full["output"] == "t0 t1 t2 " and full["input"] == {"n": 3, "delay": 0.05}
    assert 50 <= full["latency_ms"]["time_to_first_token"] <= full["latency_ms"]["total"]
    assert cut["output"] == "t0 t1 t2 " and cut["error"] is None
    assert recs["echo"]["output"] == [0, 5, 11] and recs["echo"]["error"] is None
    assert "output" not in recs["fails"]  # an error: no output, even if some items came
    assert recs["fails"]["error"] == {"type": "Refused", "message": "midway"}
    assert recs["tokens"]["error"] == {"type": "Refused", "message": "thrown in"}


# ---- threads ----------------------------------------------------------------

@tracesift.track(type="tool")
def work(i):
    time.sleep(0.005)
    return i * i


def test_threads_started_inside(kafka):
    @tracesift.track
    def stage():
        threads = [threading.Thread(target=contextvars.copy_context().run, args=(work, i)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            futs = [ex.submit(contextvars.copy_context().run, work, i) for i in range(4, 8)]
            return sorted(f.result() for f in futs)

    @tracesift.track
    def root():
        return stage()

    assert root() == [16, 25, 36, 49]
    rec = kafka.record()
    by = spans_by_name(rec)
    (st,) = by["stage"]
    assert sorted(s["input"]["i"] for s in by["work"]) == list(range(8))
    assert all(s["parent_span_id"] == st["span_id"] for s in by["work"])


def test_thread_outliving_its_trace(kafka):
    """A span still open when its trace is sent is dropped and counted; a call
    made after the trace was sent begins a trace of its own.  Neither touches
    the sent trace (ASan would see it)."""
    recs, late = outlive_trace(kafka, work,
                               lambda fn: threading.Thread(target=contextvars.copy_context().run, args=(fn,)))
    assert [s["name"] for s in recs["request"]["spans"]] == ["slow_child"]  # ended with its trace
    assert recs["work"]["input"] == {"i": 99} and recs["work"]["spans"] == []
    assert late == 1


def test_many_threads_many_traces(kafka):
    @tracesift.track
    def req(t, i):
        return [work(i), work(i + 1)]

    def loop(t):
        for i in range(100):
            req(t, i)
    threads = [threading.Thread(target=loop, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    recs = kafka.records(400, seconds=60)
    assert len({(r["input"]["t"], r["input"]["i"]) for r in recs}) == 400
    for r in recs:
        assert sorted(s["input"]["i"] for s in r["spans"]) == [r["input"]["i"], r["input"]["i"] + 1]
        assert all(s["parent_span_id"] is None for s in r["spans"])


# ---- methods and forms of the decorator ---------------------------------------

def test_methods_and_forms(kafka):
    class Service:
        prefix = "svc"

        @tracesift.track
        def answer(self, q, *extra, **opts):
            return self.helper(q)

        @tracesift.track(name="help", type="tool", tags=["helper"], metadata={"v": 2}, model="m0")
        def helper(self, q):
            return "%s:%s" % (self.prefix, q)

        @tracesift.track
        @classmethod
        def build(cls, n):
            return n

        @classmethod
        @tracesift.track
        def build2(cls, n):
            return n

        @tracesift.track
        @staticmethod
        def util(a, b=2):
            return a + b

    s = Service()
    assert s.answer("q", 1, 2, mode="x") == "svc:q"
    assert Service.build(3) == 3 and Service.build2(4) == 4 and Service.util(1) == 3
    assert Service.answer.__name__ == "answer" and Service.answer.__wrapped__ is not None
    recs = {r["name"]: r for r in kafka.records(4)}
    assert recs["answer"]["input"] == {"q": "q", "extra": [1, 2], "mode": "x"}
    (h,) = recs["answer"]["spans"]
    assert h["name"] == "help" and h["type"] == "tool" and h["tags"] == ["helper"]
    assert h["metadata"] == {"v": 2} and h["model"] == "m0" and h["output"] == "svc:q"
    assert recs["build"]["input"] == {"n": 3} and recs["build2"]["input"] == {"n": 4}
    assert recs["util"]["input"] == {"a": 1} and recs["util"]["output"] == 3


def test_capture_off_and_update_outside_a_span(kafka):
    @tracesift.track(capture_input=False, capture_output=False)
    def secret(password):
        tracesift.update_current_span(output={"ok": True})
        return password

    # outside any span these do nothing, and do not fail
    tracesift.update_current_span(tags=["x"])
    tracesift.update_current_trace(metadata={"a": 1})
    tracesift.mark_first_token()
    assert tracesift.current_trace_id() is None
    assert secret("hunter2") == "hunter2"
    rec = kafka.record()
    assert "input" not in rec and rec["output"] == {"ok": True}
    assert "hunter2" not in str(rec)


def test_bad_type_is_refused_at_decoration():
    with pytest.raises(ValueError):
        tracesift.track(type="database")(lambda: None)


# ---- arguments --------------------------------------------------------------

class BadRepr:
    def __repr__(self):
        raise RuntimeError("no repr")


class LongRepr:
    def __repr__(self):
        return "L" * 50000


def test_large_and_unserializable_arguments(kafka):
    @tracesift.track
    def f(text, obj, bad, nan, cyc, deep, keys, sur, raw, aset):
        return {"n": len(text), "big": "x" * 200000}

    cyc = [1]
    cyc.append(cyc)
    deep = []
    d = deep
    for _ in range(200):
        d.append([])
        d = d[0]
    huge = "é" * 5000000
    trunc0 = tracesift.stats()["truncated"]
    out = f(huge, LongRepr(), BadRepr(), math.nan, cyc, deep, {(1, 2): "tuple key", 3: "int key"},
            "lone \ud800 surrogate", b"\x00\xff", {7})
    assert out["n"] == 5000000
    rec = kafka.record()
    inp = rec["input"]
    assert inp["text"].startswith("éééé") and "[truncated, 5000000 characters]" in inp["text"]
    assert len(inp["text"].encode()) <= 65536
    assert inp["obj"].startswith("LLLL") and inp["obj"].endswith("[truncated, 50000 characters]")
    assert inp["bad"] == "<BadRepr object>"
    assert inp["nan"] == "nan"
    assert inp["cyc"] == [1, "<cycle>"]
    assert inp["keys"] == {"(1, 2)": "tuple key", "3": "int key"}
    assert inp["sur"] == "lone ? surrogate"
    assert inp["raw"] == "b'\\x00\\xff'"
    assert inp["aset"] == [7]
    depth, d = 0, inp["deep"]
    while isinstance(d, list) and d:
        d, depth = d[0], depth + 1
    assert 10 <= depth <= 40 and isinstance(d, str)  # cut, and the rest as its repr
    assert rec["output"]["n"] == 5000000 and "[truncated, 200000 characters]" in rec["output"]["big"]
    assert tracesift.stats()["truncated"] >= trunc0 + 2


def test_values_the_library_refuses_go_as_json(kafka):
    """marshal writes these but the library will not turn them into JSON the
    way json would (sets, bytes, NaN, tuple keys, more than max_field_bytes):
    the package gives them again as JSON, through every kind of call (a span
    recorded at its end, a trace's end, a trace of one span)."""
    @tracesift.track
    def child(s, b):
        return {"nan": math.nan, "t": (1, 2)}

    @tracesift.track
    def root(k):
        child({3, 4}, b"\x01")
        return {(1, 2): "tuple key", 5: "x" * 100000}

    @tracesift.track
    def lone(s):
        return -math.inf

    root({1.5: "float key", None: 1, True: 2})
    lone(frozenset([9]))
    recs = {r["name"]: r for r in kafka.records(2)}
    rec = recs["root"]
    assert rec["input"] == {"k": {"1.5": "float key", "null": 1, "true": 2}}  # written by the library
    (c,) = rec["spans"]
    assert c["input"] == {"s": [3, 4], "b": "b'\\x01'"}
    assert c["output"] == {"nan": "nan", "t": [1, 2]}
    assert rec["output"]["(1, 2)"] == "tuple key"
    assert "[truncated, 100000 characters]" in rec["output"]["5"]
    assert recs["lone"]["input"] == {"s": [9]} and recs["lone"]["output"] == "-inf"


def test_deep_argument_the_encoder_accepts(kafka):
    """Nesting Python's json takes but the record refuses (over 61 levels) falls back."""
    @tracesift.track
    def g(x):
        return 1
    x = 0
    for _ in range(80):
        x = {"k": x}
    g(x)
    rec = kafka.record()
    assert isinstance(rec["input"]["x"], dict)


def test_trace_too_large_is_counted_not_raised(kafka):
    @tracesift.track
    def part(blob):
        return blob

    @tracesift.track
    def big():
        for i in range(20):
            part("%d" % i + "y" * 60000)   # 20 spans of 2 x 60 KB: over the 1 MiB record limit
        return "done"

    before = tracesift.stats()
    assert big() == "done"
    assert tracesift.flush(10) == 0
    after = tracesift.stats()
    assert after["rejected"] == before["rejected"] + 1
    assert after["errors"] == before["errors"] + 1
