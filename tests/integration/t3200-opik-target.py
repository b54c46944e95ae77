#!/usr/bin/env python3
"""tests/integration/t3200-opik-target.py - the Opik dataset target: items land once through failures, the key stays secret

Drives sink/opik.c through tests/tools/t-opik against tests/fakes/opik_server.py
(a real HTTP server on loopback that speaks Opik's dataset API and injects
429s, 5xx, connection resets and slow responses).  No broker needed.
"""
import datetime
import json
import os
import random
import subprocess
import sys
import time
import urllib.request
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tslib as T  # noqa: E402

DRIVER = os.path.join(T.BUILD, "tests", "tools", "t-opik")
FAKE = os.path.join(T.TOP, "tests", "fakes", "opik_server.py")
KEY_ENV = "TS_T3200_OPIK_KEY"
KEY = "tsk-%032x" % random.getrandbits(128)  # unique: grepped for in every output
WORKSPACE = "ws-t3200"
OUTPUTS = []  # every stdout/stderr the driver wrote, for the key check

M64 = (1 << 64) - 1


# ---- the documented item id (docs/opik.md), written again here ----------

def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & M64
    return h


def item_uuid(dataset, item_id, start_ms):
    h = fnv1a64(dataset.encode() + b"\0" + item_id.encode())
    a = T._mix(h)
    b = T._mix(a ^ 0x9e3779b97f4a7c15)
    hi = (start_ms & ((1 << 48) - 1)) << 16 | 0x7000 | a >> 52
    lo = 1 << 63 | b >> 2
    return str(uuid.UUID(int=hi << 64 | lo))


def start_ms(rec):
    t = datetime.datetime.fromisoformat(rec["start_time"].replace("Z", "+00:00"))
    return (t - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)) // datetime.timedelta(milliseconds=1)


# ---- the fake server --------------------------------------------------------

class Fake:
    def __init__(self):
        env = dict(os.environ, **{KEY_ENV: KEY})
        self.proc = subprocess.Popen([sys.executable, FAKE, "--api-key-env", KEY_ENV, "--workspace", WORKSPACE],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening on 127.0.0.1:"), "fake server said %r" % line
        self.port = int(line.strip().rsplit(":", 1)[1])
        self.url = "http://127.0.0.1:%d/api" % self.port

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=data, method=method)
        with urllib.request.urlopen(req, timeout=T.timeout(30)) as r:
            return json.loads(r.read() or b"{}")

    def reset(self, faults=()):
        self.call("POST", "/_test/reset", {})
        if faults:
            self.call("POST", "/_test/faults", {"sequence": list(faults)})

    def items(self, dataset):
        return self.call("GET", "/_test/items?dataset=" + dataset)["items"]

    def log(self):
        return self.call("GET", "/_test/log")

    def stop(self):
        self.proc.kill()
        self.proc.wait()


FAKE_SRV = Fake()


def items_for(n, dataset="monitoring", seed=3200):
    out = []
    for i, rec in enumerate(T.records(n, seed=seed)):
        out.append({"type": "item", "id": rec["trace_id"], "dataset": dataset, "class": "default",
                    "rate": 1.0, "seed": 7, "draw": 0.25,
                    "source": {"topic": "llm.traces", "partition": 0, "offset": i},
                    "selected_at": "2026-11-26T21:04:05.123456Z", "record": rec})
    return out


def drive(items, *args, key=KEY, workspace=WORKSPACE, url=None, env_extra=None, expect_ok=True):
    """Runs t-opik over items; returns (exit status, stats dict, stderr)."""
    env = dict(os.environ)
    env.pop(KEY_ENV, None)
    if key is not None:
        env[KEY_ENV] = key
    env.update(env_extra or {})
    argv = [DRIVER, "-u", url or FAKE_SRV.url, "-k", KEY_ENV, "--backoff-ms", "50", "--backoff-max-ms", "400"]
    if workspace:
        argv += ["-w", workspace]
    argv += list(args)
    data = "".join(T.dumps(i) + "\n" for i in items)
    p = subprocess.run(argv, input=data, capture_output=True, text=True, env=env, timeout=T.timeout(120))
    OUTPUTS.append(p.stdout + p.stderr)
    assert KEY not in p.stdout and KEY not in p.stderr, "the API key appeared in the driver's output"
    stats = json.loads(p.stdout.strip().splitlines()[-1]) if p.stdout.strip() else {}
    if expect_ok:
        assert p.returncode == 0, "t-opik exit %d: %s" % (p.returncode, p.stderr[-2000:])
        assert stats.get("ok") is True, p.stdout
    T.note("t-opik: exit %d %s %s" % (p.returncode, p.stdout.strip(), p.stderr.strip()[:300]))
    return p.returncode, stats, p.stderr


def api_log(method=None):
    return [e for e in FAKE_SRV.log()["log"] if method is None or e["method"] == method]


def assert_landed_once(items, dataset="monitoring"):
    got = FAKE_SRV.items(dataset)
    want = {item_uuid(dataset, i["id"], start_ms(i["record"])) for i in items}
    ids = [g["id"] for g in got]
    assert len(ids) == len(set(ids)), "duplicate ids at the server"
    assert set(ids) == want, "the server holds %d items, %d expected, %d in common" % (
        len(ids), len(want), len(set(ids) & want))
    return got


# ---- cases ---------------------------------------------------------------------

def items_land_once_in_batches_over_one_connection():
    FAKE_SRV.reset()
    items = items_for(250)
    _, st, _ = drive(items, "-b", "100")
    got = assert_landed_once(items)
    log = api_log()
    assert [(e["method"], e["path"]) for e in log] == \
        [("POST", "/api/v1/private/datasets")] + [("PUT", "/api/v1/private/datasets/items")] * 3, log
    assert [e["items"] for e in log[1:]] == [100, 100, 50]
    assert len({e["conn"] for e in log}) == 1, "the connection was not reused: %s" % log
    assert st["requests"] == 4 and st["retries"] == 0 and st["batches"] == 3 and st["items"] == 250, st
    # the item as Opik gets it
    by_id = {g["id"]: g for g in got}
    first = items[0]
    g = by_id[item_uuid("monitoring", first["id"], start_ms(first["record"]))]
    assert g["source"] == "sdk" and "trace_id" not in g and "span_id" not in g, g
    rec = dict(first["record"])
    assert {k: g["data"][k] for k in rec} == rec, "data does not carry the record unchanged"
    prov = g["data"]["tracesift"]
    assert prov["item_id"] == first["id"] and prov["class"] == "default" and prov["rate"] == 1.0
    assert prov["seed"] == 7 and prov["source"] == first["source"], prov
    u = uuid.UUID(g["id"])
    assert u.version == 7 and u.variant == uuid.RFC_4122
    assert u.int >> 80 == start_ms(first["record"]), "the UUID's time is not the record's start_time"


def same_items_twice_leave_the_count_unchanged():
    FAKE_SRV.reset()
    items = items_for(120, seed=3201)
    drive(items, "-b", "50")
    drive(items, "-b", "30")             # a second process: the dataset exists (409) and items upsert
    drive(items[:60] + items, "-b", "1000")  # repeats inside one call too
    assert_landed_once(items)
    assert len(FAKE_SRV.items("monitoring")) == 120


def retry_after_seconds_is_honoured():
    FAKE_SRV.reset(["ok", "429:2"])
    items = items_for(10, seed=3202)
    _, st, _ = drive(items)
    assert_landed_once(items)
    puts = api_log("PUT")
    assert puts[0]["status"] == 429 and puts[1]["status"] == 204, puts
    gap = puts[1]["t"] - puts[0]["done"]
    T.note("waited %.3f s after a 429 with Retry-After: 2" % gap)
    assert 1.95 <= gap <= 2.0 + T.timeout(1.5), "waited %.3f s" % gap
    assert st["retries"] == 1


def retry_after_http_date_is_honoured():
    FAKE_SRV.reset(["ok", "429:date:3"])
    items = items_for(10, seed=3203)
    drive(items)
    assert_landed_once(items)
    puts = api_log("PUT")
    at = puts[0]["retry_after_epoch"]
    T.note("Retry-After date %d, retried at %.3f" % (at, puts[1]["wall"]))
    assert puts[1]["wall"] >= at - 0.01, "retried %.3f s before the date" % (at - puts[1]["wall"])
    assert puts[1]["wall"] <= at + T.timeout(2)


def server_errors_are_retried():
    FAKE_SRV.reset(["500", "ok", "503", "500", "ok"])  # the dataset POST fails once too
    items = items_for(30, seed=3204)
    _, st, _ = drive(items, "-b", "15")
    assert_landed_once(items)
    assert st["retries"] == 3 and st["batches"] == 2, st


def connection_resets_are_retried():
    FAKE_SRV.reset(["ok", "reset", "reset", "reset"])
    items = items_for(40, seed=3205)
    drive(items, "-b", "20")
    assert_landed_once(items)
    assert FAKE_SRV.log()["faults_left"] == 0


def lost_responses_do_not_duplicate():
    """The server applies the batch, then the connection dies before the answer."""
    FAKE_SRV.reset(["ok", "ok-reset", "ok-reset"])
    items = items_for(25, seed=3206)
    drive(items)
    applied = [e for e in api_log("PUT") if e["status"] in (204, "applied-reset")]
    assert len(applied) >= 2, applied
    assert_landed_once(items)


def slow_server_times_out_then_retries():
    FAKE_SRV.reset(["ok", "slow:4000"])
    items = items_for(20, seed=3207)
    t0 = time.monotonic()
    _, st, _ = drive(items, "-t", "1000")
    took = time.monotonic() - t0
    assert took >= 1.0, "no timeout happened (%.2f s)" % took
    assert st["retries"] >= 1, st
    assert_landed_once(items)
    time.sleep(3.5)  # the slow request still applies, late: still once
    assert_landed_once(items)


def gives_up_after_max_retries():
    FAKE_SRV.reset(["ok"] + ["500"] * 10)
    items = items_for(10, seed=3208)
    rc, st, err = drive(items, "-r", "2", expect_ok=False)
    assert rc == 1 and st["ok"] is False and st["retriable"] is True, (rc, st)
    assert "gave up after 3 attempts" in err and "HTTP 500" in err and "injected failure" in err, err
    assert len(api_log("PUT")) == 3, "expected 1 attempt + 2 retries"
    assert FAKE_SRV.items("monitoring") == []


def too_long_retry_after_ends_the_call():
    FAKE_SRV.reset(["ok", "429:600"])
    rc, st, err = drive(items_for(5, seed=3209), expect_ok=False)
    assert rc == 1 and st["retriable"] is True and "Retry-After: 600 s" in err, err
    assert len(api_log("PUT")) == 1


def a_stop_signal_ends_the_wait_for_a_retry():
    FAKE_SRV.reset(["ok", "429:60"])
    env = dict(os.environ, **{KEY_ENV: KEY})
    path = T.workfile("stop-items.jsonl")
    with open(path, "w") as f:
        f.write("".join(T.dumps(i) + "\n" for i in items_for(5, seed=3217)))
    with open(path) as items_in:
        p = subprocess.Popen([DRIVER, "-u", FAKE_SRV.url, "-k", KEY_ENV, "-w", WORKSPACE], stdin=items_in,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    T.wait_until("the 429", lambda: any(e["status"] == 429 for e in api_log("PUT")), 30)
    time.sleep(0.2)
    t0 = time.monotonic()
    p.terminate()
    out, err = p.communicate(timeout=T.timeout(30))
    OUTPUTS.append(out + err)
    took = time.monotonic() - t0
    T.note("stopped %.3f s after SIGTERM: %s" % (took, err.strip()))
    assert took < T.timeout(2), "the wait did not end on the signal (%.1f s)" % took
    assert p.returncode == 1 and "interrupted while waiting to retry" in err, (p.returncode, err)
    assert json.loads(out)["retriable"] is True


def wrong_key_is_refused_clearly():
    FAKE_SRV.reset()
    other = "tsk-wrong-%024x" % random.getrandbits(96)
    rc, st, err = drive(items_for(5, seed=3210), key=other, expect_ok=False)
    assert rc == 1 and st["retriable"] is False, st
    assert "HTTP 401" in err and KEY_ENV in err and "refused" in err, err
    assert other not in err and KEY not in err
    assert len(api_log()) == 1, "a 401 must not be retried"


def wrong_workspace_is_refused():
    FAKE_SRV.reset()
    rc, st, err = drive(items_for(5, seed=3211), workspace="not-" + WORKSPACE, expect_ok=False)
    assert rc == 1 and "HTTP 403" in err and "opik.workspace" in err and st["retriable"] is False, err


def missing_key_variable_is_named():
    FAKE_SRV.reset()
    rc, st, err = drive(items_for(5, seed=3212), key=None, expect_ok=False)
    assert rc == 1 and "'%s'" % KEY_ENV in err and "not set" in err, err
    assert api_log() == []


def a_key_quoted_back_by_the_server_is_scrubbed():
    FAKE_SRV.reset(["ok", "echo:400"])
    rc, st, err = drive(items_for(5, seed=3213), expect_ok=False)
    assert rc == 1 and "HTTP 400" in err and "rejected authorization '***'" in err, err
    assert st["retriable"] is False


def malformed_items_are_refused_before_sending():
    FAKE_SRV.reset()
    good = items_for(3, seed=3214)
    bad = dict(good[1])
    del bad["record"]
    rc, st, err = drive([good[0], bad, good[2]], expect_ok=False)
    assert rc == 1 and "item 1: field 'record': missing" in err and st["retriable"] is False, err
    other = dict(good[1], dataset="elsewhere")
    rc, st, err = drive([good[0], other], "-d", "monitoring", expect_ok=False)
    assert rc == 1 and "item 1: field 'dataset'" in err, err
    assert api_log() == [], "nothing may be sent when an item is malformed"


def batches_respect_the_byte_limit():
    FAKE_SRV.reset()
    items = items_for(40, seed=3215)
    drive(items, "-b", "1000", "-B", "6000")
    assert_landed_once(items)
    puts = api_log("PUT")
    assert len(puts) > 1 and sum(e["items"] for e in puts) == 40, puts


def unreachable_server_is_a_retriable_error():
    rc, st, err = drive(items_for(3, seed=3216), "-r", "1", "-t", "2000",
                        url="http://127.0.0.1:1/api", expect_ok=False)
    assert rc == 1 and st["retriable"] is True and "gave up after 2 attempts" in err, err


def the_key_never_appears_in_any_output():
    assert OUTPUTS, "no driver ran"
    for out in OUTPUTS:
        assert KEY not in out
    T.note("checked %d driver outputs for the key" % len(OUTPUTS))


try:
    for case in (items_land_once_in_batches_over_one_connection,
                 same_items_twice_leave_the_count_unchanged,
                 retry_after_seconds_is_honoured,
                 retry_after_http_date_is_honoured,
                 server_errors_are_retried,
                 connection_resets_are_retried,
                 lost_responses_do_not_duplicate,
                 slow_server_times_out_then_retries,
                 gives_up_after_max_retries,
                 too_long_retry_after_ends_the_call,
                 a_stop_signal_ends_the_wait_for_a_retry,
                 wrong_key_is_refused_clearly,
                 wrong_workspace_is_refused,
                 missing_key_variable_is_named,
                 a_key_quoted_back_by_the_server_is_scrubbed,
                 malformed_items_are_refused_before_sending,
                 batches_respect_the_byte_limit,
                 unreachable_server_is_a_retriable_error,
                 the_key_never_appears_in_any_output):
        T.run(case)
finally:
    FAKE_SRV.stop()
T.exit()
