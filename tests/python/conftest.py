"""tests/python/conftest.py - fixtures for the Python package's tests, and their ok/not ok lines

Run by tests/integration/t6000-python.sh (make test), or by hand:
    python3 -m pytest -p no:cacheprovider tests/python
The package is imported from python/ in the tree; the library is the one it
finds (TRACESIFT_LIBRARY, else lib/).  Each test that traces gets its own
topic and project (the `kafka` fixture); records are read back with kcat -J
as tests/tslib.py does.
"""
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid

import pytest

TOP = os.environ.get("TS_TOP") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "python"))
sys.path.insert(0, os.path.join(TOP, "tests"))

import tslib  # noqa: E402
import tracesift  # noqa: E402

BROKERS = tslib.BROKERS
SCALE = tslib.SCALE
PYDIR = os.path.join(TOP, "python")
LIBRARY = os.environ.get("TRACESIFT_LIBRARY") or os.path.join(TOP, "lib", "libtracesift.so.1")
# The ASan runtime preloaded by the runner is for Python processes only: kcat
# and the other tools run without it; python children get it back (child_env).
PRELOAD = os.environ.pop("LD_PRELOAD", None)


def child_env(**extra):
    env = dict(os.environ)
    if PRELOAD:
        env["LD_PRELOAD"] = PRELOAD
    env["PYTHONPATH"] = PYDIR
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_python(code, timeout=120, **env):
    """Runs code in a new Python process (with the package on its path);
    returns the CompletedProcess (text)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=tslib.timeout(timeout), env=child_env(**env))


class Kafka:
    """A new topic and project; records() reads what arrived."""

    def __init__(self):
        self.topic = tslib.create_topic(tslib.topic("py"))
        self.project = "py-test-" + uuid.uuid4().hex[:12]

    def configure(self, **kw):
        kw.setdefault("brokers", BROKERS)
        kw.setdefault("topic", self.topic)
        kw.setdefault("project", self.project)
        assert tracesift.configure(**kw), tracesift.stats()

    def records(self, n, seconds=30):
        """Exactly n records of this project, waiting for them to arrive."""
        assert tracesift.flush(tslib.timeout(10)) == 0, tracesift.stats()
        got = []

        def enough():
            got[:] = [json.loads(m["payload"]) for m in tslib.consume(self.topic)]
            got[:] = [r for r in got if r.get("project") == self.project]
            return len(got) >= n
        try:
            tslib.wait_until("%d records in %s" % (n, self.topic), enough, seconds)
        except AssertionError:
            raise AssertionError("%d records of %d in %s; stats %s" % (len(got), n, self.topic, tracesift.stats()))
        time.sleep(0.2)
        enough()
        assert len(got) == n, "%d records, expected %d" % (len(got), n)
        return got

    def record(self):
        return self.records(1)[0]


@pytest.fixture
def kafka():
    k = Kafka()
    k.configure()
    return k


def spans_by_name(rec):
    out = {}
    for s in rec["spans"]:
        out.setdefault(s["name"], []).append(s)
    return out


def outlive_trace(kafka, work, thread_of):
    """A thread whose span outlives its trace: request() starts a thread
    (thread_of(fn) makes it) that runs slow_child() and, once request's
    trace was sent, work(99); slow_child is still open when request returns.
    Returns the two records by name and how many late spans the library
    counted meanwhile."""
    started, release = threading.Event(), threading.Event()

    @tracesift.track
    def slow_child():
        started.set()
        release.wait(10)
        return "late"

    def background():
        slow_child()
        work(99)

    @tracesift.track
    def request():
        t = thread_of(background)
        t.start()
        started.wait(10)
        return t

    late0 = tracesift.stats()["late_spans"]
    t = request()
    release.set()
    t.join()
    recs = {r["name"]: r for r in kafka.records(2)}
    return recs, tracesift.stats()["late_spans"] - late0


# ---- one "ok - NAME" / "not ok - NAME" line per test, for tests/run.sh ----

_config = None


def pytest_configure(config):
    global _config
    _config = config


def pytest_unconfigure(config):
    shutil.rmtree(tslib._work, ignore_errors=True)  # tslib's scratch directory (tslib.exit() is not called)


def _say(line):
    tr = _config.pluginmanager.get_plugin("terminalreporter") if _config else None
    if tr is not None:
        tr.write("\n" + line + "\n")  # at the start of a line, whatever the progress dots did
    else:
        print(line, flush=True)


def pytest_runtest_logreport(report):
    name = report.nodeid.split("::", 1)[-1]
    if report.skipped and report.when in ("setup", "call"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
        _say("ok - %s # SKIP %s" % (name, reason))
    elif report.failed:
        _say("not ok - %s%s" % (name, "" if report.when == "call" else " (%s)" % report.when))
    elif report.when == "call":
        _say("ok - %s" % name)
