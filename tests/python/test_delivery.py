"""tests/python/test_delivery.py - the library under test, delivery at exit, a broker that is down, failures

Processes that exit right after their last call deliver everything (the
exit flush); with the broker down a decorated call costs what it costs with
the broker up, and the exit is bounded; tracing failures never reach the
application; the package installs with pip and finds the system's library.
"""
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

import tracesift
import tslib
from conftest import BROKERS, LIBRARY, PRELOAD, PYDIR, SCALE, Kafka, run_python


def test_library_under_test_is_loaded(kafka):
    """The package loads the tree's library (under make test: the ASan build,
    whose runtime the runner preloads) and traces through it."""
    s = tracesift.stats()
    assert s["configured"] and os.path.realpath(s["library"]) == os.path.realpath(LIBRARY)
    with open("/proc/self/maps") as f:
        maps = f.read()
    assert os.path.realpath(LIBRARY) in maps
    with open(LIBRARY, "rb") as f:
        asan = b"libasan.so" in f.read()
    if os.environ.get("TS_EXPECT_ASAN"):
        assert asan, "the runner preloaded ASan for a library built without it"
    if asan:
        assert "libasan" in maps and PRELOAD
    tracesift.track(lambda: 1)()
    assert kafka.record()["name"] == "<lambda>"


CHILD = textwrap.dedent("""
    import os, sys, time, tracesift
    assert tracesift.configure(brokers=os.environ["B"], topic=os.environ["T"], project=os.environ["P"],
                               exit_timeout=float(os.environ.get("EXIT_TIMEOUT", "5")))

    @tracesift.track(type="tool")
    def inner(i):
        return i * 2

    @tracesift.track
    def handle(i):
        return inner(i) + 1

    for i in range(int(os.environ["N"])):
        handle(i)
    if os.environ.get("LAST") == "raise":
        @tracesift.track
        def last():
            raise RuntimeError("last call")
        last()
    # and nothing else: exit right after the last call
""")


@pytest.mark.parametrize("ending", ["return", "raise"])
def test_exit_right_after_last_call_delivers_everything(ending):
    k = Kafka()
    n = 300
    p = run_python(CHILD, B=BROKERS, T=k.topic, P=k.project, N=n, LAST=ending)
    assert p.returncode == (0 if ending == "return" else 1), p.stderr
    assert "not delivered" not in p.stderr
    recs = [json.loads(m["payload"]) for m in tslib.consume(k.topic)]
    expect = n + (ending == "raise")
    assert len(recs) == expect, "%d of %d records delivered" % (len(recs), expect)
    assert sorted(r["input"]["i"] for r in recs if r["name"] == "handle") == list(range(n))
    assert all(r["spans"][0]["output"] == 2 * r["input"]["i"] for r in recs if r["name"] == "handle")
    if ending == "raise":
        (last,) = [r for r in recs if r["name"] == "last"]
        assert last["error"] == {"type": "RuntimeError", "message": "last call"}


LATENCY = textwrap.dedent("""
    import json, os, statistics, time, tracesift
    props = {"queue.buffering.max.messages": os.environ["QUEUE"]}
    ok = tracesift.configure(brokers=os.environ["B"], topic=os.environ["T"], project="latency",
                             exit_timeout=float(os.environ["EXIT_TIMEOUT"]), **props)

    def plain(question, k=3):
        return {"answer": question.upper(), "k": k}

    traced = tracesift.track(plain)
    for i in range(200):      # warm up (and let the client try to connect)
        plain("warm up"); traced("warm up")
    p, d = [], []
    clock = time.perf_counter_ns
    for i in range(int(os.environ["N"])):
        t0 = clock(); plain("how are you %d" % i); t1 = clock(); traced("how are you %d" % i); t2 = clock()
        p.append(t1 - t0); d.append(t2 - t1)
    p.sort(); d.sort()
    s = tracesift.stats()
    print(json.dumps({"ok": ok, "plain_p50": p[len(p) // 2], "traced_p50": d[len(d) // 2],
                      "traced_p99": d[len(d) * 99 // 100], "traced_max": d[-1],
                      "enqueued": s["enqueued"], "dropped": s["dropped"], "delivered": s["delivered"],
                      "errors": s["errors"]}), flush=True)
""")


def _latency(brokers, topic, queue, n=3000, exit_timeout=1.0):
    t0 = time.monotonic()
    p = run_python(LATENCY, B=brokers, T=topic, N=n, EXIT_TIMEOUT=exit_timeout, QUEUE=queue)
    took = time.monotonic() - t0
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout.strip().splitlines()[-1])
    r["took"] = took
    r["stderr"] = p.stderr
    return r


def test_broker_down_does_not_slow_calls():
    """Overhead (median of decorated minus plain, same process, interleaved)
    with nothing listening at the brokers' address, against the same with the
    broker up; and no call waits on the network (p99, max)."""
    k = Kafka()
    up = _latency(BROKERS, k.topic, 100000)
    down = _latency("127.0.0.1:1", k.topic, 1000)    # fills up with the broker down: drops
    over_up = (up["traced_p50"] - up["plain_p50"]) / 1000.0
    over_down = (down["traced_p50"] - down["plain_p50"]) / 1000.0
    tslib.note("overhead per call, median: broker up %.1f us, broker down %.1f us; "
               "down p99 %.1f us, max %.1f ms; exit with the broker down took %.1f s"
               % (over_up, over_down, down["traced_p99"] / 1000.0, down["traced_max"] / 1e6, down["took"]))
    assert up["ok"] and down["ok"]
    assert up["dropped"] == 0 and up["errors"] == 0
    # the broker down: the queue filled (1000), the rest was dropped and counted, not waited for
    assert down["delivered"] == 0 and down["enqueued"] + down["dropped"] == 3200
    assert down["dropped"] >= 3200 - 1000
    assert down["stderr"].count("queue is full") == 1          # logged once
    assert "traces not delivered at exit" in down["stderr"]
    # the bound: a generous one, scaled
    assert over_down <= 3 * max(over_up, 1.0) + 50 * SCALE, (over_up, over_down)
    assert down["traced_p99"] / 1000.0 <= 20000 * SCALE         # 20 ms: no network wait
    # the exit flush waits at most exit_timeout (1 s) for the unreachable broker
    assert down["took"] <= 1.0 + 15 * SCALE


def test_library_missing_never_raises():
    code = textwrap.dedent("""
        import tracesift
        assert tracesift.configure() is False

        @tracesift.track
        def f(x):
            return x + 1

        @tracesift.track
        def g():
            raise KeyError("mine")

        assert [f(i) for i in range(3)] == [1, 2, 3]
        try:
            g()
        except KeyError as e:
            assert e.args == ("mine",)
        else:
            raise SystemExit("no exception")
        s = tracesift.stats()
        assert not s["configured"] and s["errors"] >= 1 and s["library"] is None, s
        assert tracesift.flush(1) == 0
        print("fine")
    """)
    p = run_python(code, TRACESIFT_LIBRARY="/nonexistent/libtracesift.so.1")
    assert p.returncode == 0 and p.stdout.strip() == "fine", p.stderr
    assert p.stderr.count("cannot load libtracesift") == 1, p.stderr


def test_bad_configuration_never_raises(kafka):
    assert tracesift.configure(brokers=BROKERS, no_such_property_here=1) is False
    assert "no.such.property.here" in tracesift.stats()["package_error"]

    @tracesift.track
    def f(x):
        return x * 3
    assert f(2) == 6                       # untraced, unharmed

    @tracesift.track
    def gen():
        got = yield 1
        yield got * 2

    @tracesift.track
    async def agen():
        got = yield 1
        yield got * 2

    g = gen()
    assert next(g) == 1 and g.send(21) == 42

    async def main():
        a = agen()
        return [await a.__anext__(), await a.asend(4)]
    assert asyncio.run(main()) == [1, 8]
    kafka.configure()
    assert f(3) == 9
    assert kafka.record()["output"] == 9


def test_failure_inside_tracing_never_raises(kafka, monkeypatch):
    import tracesift._span as span_mod

    def broken(value, arg):
        raise RuntimeError("encoder broke")

    @tracesift.track
    def f(x):
        return x
    errors0 = tracesift.stats()["errors"]
    monkeypatch.setattr(span_mod, "_dumps", broken)    # what begin() encodes the input with,
    monkeypatch.setattr(span_mod, "_encode", broken)   # and what it falls back on
    assert f(1) == 1 and f(2) == 2
    monkeypatch.undo()
    assert tracesift.stats()["errors"] == errors0 + 2
    assert f(3) == 3
    assert kafka.record()["input"] == {"x": 3}


def test_environment_configuration():
    k = Kafka()
    code = textwrap.dedent("""
        import tracesift

        @tracesift.track
        def f():
            return "from env"
        f()
        assert tracesift.stats()["configured"]
    """)
    p = run_python(code, TRACESIFT_BROKERS=BROKERS, TRACESIFT_TOPIC=k.topic, TRACESIFT_PROJECT=k.project)
    assert p.returncode == 0, p.stderr
    recs = [json.loads(m["payload"]) for m in tslib.consume(k.topic)]
    assert [(r["project"], r["output"]) for r in recs] == [(k.project, "from env")]


def test_fork_child_traces_on_its_own_client(kafka):
    @tracesift.track
    def who(pid):
        return pid

    who("parent")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: trace, flush, report, leave without running the parent's exit handlers
        try:
            who("child")
            left = tracesift.flush(tslib.timeout(10))
            os.write(w, b"%d" % left)
        finally:
            os._exit(0)
    os.close(w)
    left = os.read(r, 16)
    os.waitpid(pid, 0)
    assert left == b"0"
    recs = kafka.records(2)
    assert sorted(x["output"] for x in recs) == ["child", "parent"]


def test_pip_install_and_system_library():
    """pip install of python/ (offline, into a directory), then the package
    finds libtracesift.so.1 through the dynamic loader (LD_LIBRARY_PATH)."""
    pip = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True)
    try:  # offline, so what pip builds with must be here already
        import setuptools
        import wheel  # noqa: F401
        usable = int(setuptools.__version__.split(".")[0]) >= 61
    except (ImportError, ValueError):
        usable = False
    if pip.returncode != 0 or not usable:
        pytest.skip("pip, setuptools>=61 or wheel missing for %s (Debian: python3-pip)" % sys.executable)
    work = tempfile.mkdtemp(prefix="tspip.")
    try:
        src = os.path.join(work, "src")
        shutil.copytree(PYDIR, src, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
        target = os.path.join(work, "site")
        p = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                            "--no-build-isolation", "--target", target, src],
                           capture_output=True, text=True, timeout=tslib.timeout(300))
        assert p.returncode == 0, p.stdout + p.stderr
        assert os.path.exists(os.path.join(target, "tracesift", "__init__.py"))
        k = Kafka()
        env = dict(os.environ, PYTHONPATH=target, LD_LIBRARY_PATH=os.path.dirname(LIBRARY))
        env.pop("TRACESIFT_LIBRARY", None)
        if PRELOAD:
            env["LD_PRELOAD"] = PRELOAD
        code = textwrap.dedent("""
            import sys, tracesift
            assert tracesift.__file__.startswith(sys.argv[1]), tracesift.__file__
            assert tracesift.configure(brokers=sys.argv[2], topic=sys.argv[3], project="pip")
            assert tracesift.stats()["library"] == "libtracesift.so.1"

            @tracesift.track
            def installed():
                return "yes"
            installed()
        """)
        p = subprocess.run([sys.executable, "-c", code, target, BROKERS, k.topic], capture_output=True,
                           text=True, cwd=work, env=env, timeout=tslib.timeout(60))
        assert p.returncode == 0, p.stderr
        recs = [json.loads(m["payload"]) for m in tslib.consume(k.topic)]
        assert [r["output"] for r in recs] == ["yes"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
