#!/usr/bin/env python3
"""tests/integration/t2150-sampler-config.py - config refused at start, flags and environment, signals, stats and metrics"""
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tslib as T  # noqa: E402

SAMPLER = os.path.join(T.BIN, "tracesift-sampler")
RECS = T.records(200, seed=2150)
LINES = [T.dumps(r) for r in RECS]
CLASSES = [("errors", ["when = error", "rate = 1.0"]), ("slow", ["when = latency_ms > 2000", "rate = 0.5"]),
           ("default", ["rate = 0.2"])]


def classify(r):
    if r["error"] is not None:
        return "errors", 1.0
    if r["latency_ms"]["total"] > 2000:
        return "slow", 0.5
    return "default", 0.2


def expected(seed):
    return {r["trace_id"] for r in RECS if T.draw(seed, r["trace_id"]) < classify(r)[1]}


def sampler(args, env=None, seconds=60):
    """Runs tracesift-sampler to its end: (exit status, stdout, stderr)."""
    p = subprocess.run([SAMPLER] + args, capture_output=True, timeout=T.timeout(seconds),
                       env=dict(os.environ, **(env or {})))
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def started_with_env(conf, env, **kw):
    """A Sampler started with these environment variables added (None: removed)."""
    saved = {k: os.environ.get(k) for k in env}
    try:
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        return T.Sampler(conf, **kw).start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ---- refused at start ------------------------------------------------------

def bad_configs_refused_with_file_line_and_reason():
    t = T.sampler_topics("cfg", partitions=1)
    T.produce(t["input"], LINES)
    good = T.sampler_conf(t, {"batch.size": 0}, CLASSES).splitlines()
    at_class = good.index("[class errors]")
    # (name, lines to insert after the [sampler] header or to replace, the wrong line's text, reason)
    cases = [
        ("unknown setting", good[:1] + ["colour = blue"] + good[1:], "colour = blue", "unknown setting 'colour'"),
        ("out of bounds", good[:1] + ["commit.interval.ms = 5"] + good[1:], "commit.interval.ms = 5",
         "'commit.interval.ms': 5 is out of bounds (10..60000)"),
        ("unknown class key", good[:at_class + 1] + ["weight = 3"] + good[at_class + 1:], "weight = 3",
         "unknown key 'weight' in class 'errors'"),
        ("bad rate", [l if l != "rate = 0.5" else "rate = 1.5" for l in good], "rate = 1.5",
         "'rate': expected a number from 0 to 1, not '1.5'"),
        ("bad predicate", [l if l != "when = latency_ms > 2000" else "when = latency_ms = 5" for l in good],
         "when = latency_ms = 5", "invalid predicate 'latency_ms = 5'"),
        ("default not last", good[:at_class] + ["[class rest]", "rate = 1.0"] + good[at_class:], "[class rest]",
         "class 'rest' has no 'when' but is not last"),
        ("invalid regex", good + ["[redact]", "pattern = a( => x"], "pattern = a( => x", "invalid pattern 'a('"),
        ("unknown builtin", good + ["[redact]", "builtin = email, ssn"], "builtin = email, ssn",
         "unknown builtin 'ssn'"),
        ("line outside a section", ["seed = 1"] + good, "seed = 1", "'seed' is outside a section"),
    ]
    for name, lines, wrong, why in cases:
        path = T.workfile("bad-%s.conf" % name.replace(" ", "-"))
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        rc, out, err = sampler(["-c", path, "-b", T.BROKERS])
        line = lines.index(wrong) + 1
        want = "'%s' line %d: %s" % (path, line, why)
        T.note("%s: exit %d: %s" % (name, rc, err.strip()))
        assert rc == 2, "%s: exit status %d, expected 2: %s" % (name, rc, err)
        assert want in err, "%s: expected %r in %r" % (name, want, err)
        assert err.startswith("% ERROR: ") and len(err.strip().splitlines()) == 1, "%s: %r" % (name, err)
        assert out == "", "%s: stdout %r" % (name, out)
    # the same file without the mistakes would have produced: these produced nothing
    assert T.consume(t["output"], committed=False) == [], "items in the output after refused starts"
    assert T.consume(t["dlq"], committed=False) == [], "dead letters after refused starts"


def missing_topics_exit_1_and_name_them():
    t = T.sampler_topics("cfgm", partitions=1)
    missing_in, missing_dlq = T.topic("nosuch-in"), T.topic("nosuch-dlq")
    conf = T.sampler_conf(dict(t, input=missing_in, dlq=missing_dlq), {"batch.size": 0})
    path = T.workfile("missing.conf")
    with open(path, "w") as f:
        f.write(conf)
    rc, out, err = sampler(["-c", path, "-b", T.BROKERS])
    T.note(err.strip())
    assert rc == 1, "exit status %d, expected 1: %s" % (rc, err)
    assert "'%s'" % missing_in in err and "'%s'" % missing_dlq in err, err
    assert "'%s'" % t["output"] not in err, "names a topic that exists: " + err
    assert "deploy/kafka/topics.sh" in err, err
    assert "stopped cleanly" not in err


def help_and_usage_errors():
    rc, out, err = sampler(["--help"])
    assert rc == 0 and err == "", (rc, err)
    with open(os.path.join(T.TOP, "docs", "sampling.md")) as f:
        doc = f.read()
    table = doc[doc.index("### Settings"):doc.index("### Classes")]
    names = re.findall(r"^\| `([a-z.]+)` \| `", table, re.M)
    assert len(names) >= 15, "settings table of docs/sampling.md not found"
    for n in names:
        assert re.search(r"^  %s +default " % re.escape(n), out, re.M), "--help does not list %r" % n
        env = "TRACESIFT_" + n.upper().replace(".", "_")
        assert env in out, "--help does not name %s" % env
    rc2, out2, _ = sampler(["-h"])
    assert rc2 == 0 and out2 == out
    for args, what in ((["--frobnicate"], "'--frobnicate'"), (["-c"], "'-c'"),
                       (["-s", "seed"], "expected name=value"), (["-s", "nosuch=1"], "'nosuch': unknown setting"),
                       (["-s", "batch.size=-1"], "'batch.size': -1 is out of bounds"),
                       (["--role", "judge"], "'judge'")):
        rc, out, err = sampler(["-b", "127.0.0.1:1"] + args)
        assert rc == 2 and what in err and err.startswith("% ERROR: "), (args, rc, err)
    rc, out, err = sampler(["-b", "127.0.0.1:1"], env={"TRACESIFT_BATCH_SIZE": "many"})
    assert rc == 2 and "'TRACESIFT_BATCH_SIZE': expected an integer, not 'many'" in err, (rc, err)


# ---- running -----------------------------------------------------------------

def environment_overrides_file_and_flags_override_environment():
    t = T.sampler_topics("cfge", partitions=2)
    T.produce(t["input"], LINES)
    runs = []   # (what, env, extra flags, the seed the items must carry)
    for what, env, extra, seed in (("file", {"TRACESIFT_SEED": ""}, [], 11),    # empty: unset
                                   ("environment", {"TRACESIFT_SEED": "22"}, [], 22),
                                   ("flag", {"TRACESIFT_SEED": "22"}, ["-s", "seed=0x21"], 33)):
        tt = dict(t, output=T.create_topic(T.topic("cfge-out"), 1), group=T.topic("cfge-g"))
        conf = T.sampler_conf(tt, {"seed": 11, "batch.size": 0}, CLASSES)
        runs.append((what, tt, seed, started_with_env(conf, env, extra=extra, name="env-" + what)))
    for what, tt, seed, s in runs:
        T.wait_until("the %s run to consume" % what, lambda: s.consumed() >= len(RECS) or not s.alive(), 120)
        assert s.stop() == 0, s.stderr()[-2000:]
        items = T.items_of(T.consume(tt["output"]))
        seeds = {i["seed"] for i in items}
        T.note("seed from the %s: items carry %s" % (what, seeds))
        assert seeds == {seed}, "seed from the %s: items carry %s, expected %d" % (what, seeds, seed)
        assert {i["id"] for i in items} == expected(seed), "seed from the %s: not the selection of seed %d" % (what, seed)
        assert "(seed %d," % seed in s.stderr(), s.stderr()[:500]


def stop(sig):
    """The sampler commits what it holds and exits 0 on sig, however long its
    commit interval: the group's offsets go with it, so a restart adds nothing."""
    t = T.sampler_topics("cfgs", partitions=2)
    T.produce(t["input"], LINES)
    conf = T.sampler_conf(t, {"seed": 4, "batch.size": 0, "commit.interval.ms": 60000}, CLASSES)
    s = T.Sampler(conf, name="sig%d" % sig).start()
    T.wait_until("the sampler to consume", lambda: s.consumed() >= len(RECS) or not s.alive(), 120)
    assert T.consume(t["output"]) == [], "committed before the interval or the signal"
    rc = s.stop(sig)
    assert rc == 0, "exit status %s after signal %d: %s" % (rc, sig, s.stderr()[-2000:])
    assert s.stderr().rstrip().endswith("% sampler 0: stopped cleanly"), s.stderr()[-500:]
    ids = [i["id"] for i in T.items_of(T.consume(t["output"]))]
    assert len(ids) == len(set(ids)) and set(ids) == expected(4), "%d items after the signal" % len(ids)
    again = T.Sampler(conf, name="sig%d-again" % sig).start()
    T.wait_until("the restarted sampler to take its partitions",
                 lambda: again.stats().get("select", {}).get("partitions") == 2 or not again.alive(), 120)
    time.sleep(T.timeout(2))
    assert again.consumed() == 0, "the restart consumed %d records again" % again.consumed()
    assert again.stop(signal.SIGTERM) == 0
    assert len(T.items_of(T.consume(t["output"]))) == len(ids)


def sigterm_commits_and_exits_0():
    stop(signal.SIGTERM)


def sigint_commits_and_exits_0():
    stop(signal.SIGINT)


def lag_is_zero_after_a_restart_with_nothing_new():
    # Everything consumed and committed, then a restart: nothing is left to read,
    # so the consumer lag in the stats line must come down to 0.
    t = T.sampler_topics("cfgl", partitions=2)
    T.produce(t["input"], LINES)
    conf = T.sampler_conf(t, {"seed": 4, "batch.size": 0}, CLASSES)
    s = T.Sampler(conf, name="lag").start()
    T.wait_until("the sampler to consume", lambda: s.consumed() >= len(RECS) or not s.alive(), 120)
    T.wait_until("lag 0 while it runs", lambda: s.stats().get("select", {}).get("lag") == 0 or not s.alive(), 30)
    assert s.stop() == 0, s.stderr()[-2000:]
    again = T.Sampler(conf, name="lag-again").start()
    T.wait_until("the restarted sampler to take its partitions",
                 lambda: again.stats().get("select", {}).get("partitions") == 2 or not again.alive(), 120)
    try:
        T.wait_until("lag 0 after the restart", lambda: again.stats().get("select", {}).get("lag") == 0, 5)
    except AssertionError:
        st = again.stats()["select"]
        raise AssertionError("after a restart with all %d records committed, the stats line says lag %s "
                             "(consumed %d)" % (len(RECS), st["lag"], st["consumed"]))
    assert again.stop() == 0


def stats_lines_and_metrics_file():
    t = T.sampler_topics("cfgst", partitions=2, with_batches=True)
    T.produce(t["input"], LINES)
    T.produce_msgs(t["input"], [("bad", b"not json")], partition=0)
    mfile = T.workfile("stats.prom")
    conf = T.sampler_conf(t, {"seed": 9, "batch.size": 10}, CLASSES)
    s = T.Sampler(conf, name="stats", extra=["--metrics-file", mfile]).start()
    want = expected(9)
    T.wait_until("every item batched",
                 lambda: s.stats().get("batched_items", 0) >= len(want) or not s.alive(), 120)
    T.wait_until("no lag", lambda: (s.stats().get("select", {}).get("lag"), s.stats().get("batch", {}).get("lag"))
                 == (0, 0) or not s.alive(), 30)
    assert s.stop() == 0, s.stderr()[-2000:]
    stats = []
    for line in s.stderr().splitlines():
        if line.startswith("% "):
            continue
        v = json.loads(line)    # every other line is one JSON object
        assert isinstance(v, dict), line
        stats.append(v)
    assert len(stats) >= 2, "%d stats lines" % len(stats)
    last = stats[-1]
    T.note("last stats line: " + json.dumps(last))
    by_class = {}
    for r in RECS:
        if r["trace_id"] in want:
            by_class[classify(r)[0]] = by_class.get(classify(r)[0], 0) + 1
    assert last["selected"] == {c: by_class.get(c, 0) for c, _ in CLASSES}, last["selected"]
    assert last["dead_lettered"] == {"not_json": 1} and last["dead_lettered_total"] == 1
    assert last["batches"] == len(want) // 10 and last["batched_items"] == len(want)
    sel, bat = last["select"], last["batch"]
    assert sel["consumed"] == len(RECS) + 1 and bat["consumed"] == len(want), (sel, bat)
    for stage in (sel, bat):
        assert stage["txn_committed"] >= 1 and stage["txn_aborted"] == 0, stage
        assert stage["commit_ms_max"] >= stage["commit_ms_last"] >= 0 and stage["commit_ms_max"] > 0, stage
    assert sel["lag"] == 0 and bat["lag"] == 0, (sel, bat)
    assert all(set(v) >= {"ts", "selected", "dead_lettered", "select", "batch"} for v in stats)

    prom = T.metrics(mfile)
    T.note("metrics file: %d series" % len(prom))
    for c, _ in CLASSES:
        assert prom['tracesift_sampler_selected_total{class="%s"}' % c] == last["selected"][c]
    assert prom['tracesift_sampler_dead_lettered_total{reason="not_json"}'] == 1
    assert prom['tracesift_sampler_dead_lettered_total{reason="schema"}'] == 0
    assert prom["tracesift_sampler_batches_total"] == last["batches"]
    for stage, st in (("select", sel), ("batch", bat)):
        assert prom['tracesift_sampler_consumed_total{stage="%s"}' % stage] == st["consumed"]
        assert prom['tracesift_sampler_txn_committed_total{stage="%s"}' % stage] == st["txn_committed"]
        assert prom['tracesift_sampler_txn_aborted_total{stage="%s"}' % stage] == 0
        assert prom['tracesift_sampler_consumer_lag{stage="%s"}' % stage] == st["lag"]
        assert prom['tracesift_sampler_commit_ms_max{stage="%s"}' % stage] == st["commit_ms_max"]


T.run(bad_configs_refused_with_file_line_and_reason)
T.run(missing_topics_exit_1_and_name_them)
T.run(help_and_usage_errors)
T.run(environment_overrides_file_and_flags_override_environment)
T.run(sigterm_commits_and_exits_0)
T.run(sigint_commits_and_exits_0)
T.run(lag_is_zero_after_a_restart_with_nothing_new)
T.run(stats_lines_and_metrics_file)
T.exit()
