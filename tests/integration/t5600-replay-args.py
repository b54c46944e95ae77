#!/usr/bin/env python3
"""tests/integration/t5600-replay-args.py - usage errors exit 2, runtime errors 1, each with a clear '% ERROR:' line"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tslib as T  # noqa: E402

TOPIC = T.create_topic(T.topic("rp-args"), 2, retention_ms=-1)
ROWS = T.timed_records(200, seed=5600, step_ms=1000)
T.produce_at(TOPIC, [(i % 2, ts, r["trace_id"], T.dumps(r)) for i, (r, ts) in enumerate(ROWS)])
CONF = T.workfile("s.conf")
with open(CONF, "w") as f:
    f.write("[sampler]\nseed = 3\n[class default]\nrate = 0.5\n")
BADCONF = T.workfile("bad.conf")
with open(BADCONF, "w") as f:
    f.write("[sampler]\nseed = 3\n[class default]\nrate = 2.5\n")


def usage_errors():
    cases = [
        (["--frobnicate"], "unknown option '--frobnicate'"),
        (["--from", "yesterday"], "--from: expected RFC 3339"),
        (["--to", "2026-11-26T10:00:00"], "--to: expected RFC 3339"),
        (["--from", "2026-11-27", "--to", "2026-11-26"], "is not after --from"),
        (["--from", "1000", "--to", "1000"], "the window [from, to) is empty"),
        (["--by", "arrival"], "--by: expected timestamp or start_time, got 'arrival'"),
        (["--error", "--no-error"], "--error and --no-error exclude each other"),
        (["--json"], "--json applies to --explain-sampling and --report"),
        (["--explain-sampling", CONF, "--report"], "run them one at a time"),
        (["--seed", "5"], "go with --explain-sampling"),
        (["--summary"], "go with --explain-sampling"),
        (["--monitoring-topic", "x"], "go with --explain-sampling"),
        (["--store", "/tmp/x"], "to replay the archive of '/tmp/x', leave out -t"),
        (["--dataset", "archive"], "--dataset names the archive to read with --store"),
        (["--to-topic", TOPIC], "is the topic being read"),
        (["--meta", "novalue"], "--meta: expected KEY=VALUE, got 'novalue'"),
        (["-X", "nokey"], "-X: expected key=value, got 'nokey'"),
        (["--grace-ms", "-1"], "--grace-ms: expected a number from 0"),
        (["--zstd-level", "30"], "--zstd-level: expected a number from 1 to 19, got '30'"),
        (["--seed", "-3", "--explain-sampling", CONF], "--seed: expected a non-negative integer"),
        (["--model", "a", "--model", "b"], "--model given twice"),
        (["-o", ""], "-o needs a file name"),
        (["--report", "-o", "-"], "stdout carries the report"),
        (["--explain-sampling", CONF, "--store", "/tmp/x", "--monitoring-topic", "y"], "give one source"),
        (["--explain-sampling", BADCONF], "line 4"),
        (["--explain-sampling", T.workfile("nope.conf")], "nope.conf"),
        (["-t"], "option '-t' needs a value"),
        (["stray"], "unexpected argument 'stray'"),
        (["-c", T.workfile("missing.conf")], "missing.conf"),
        (["-X", "no.such.property=1"], "No such configuration property"),
    ]
    for args, msg in cases:
        full = args if args[:1] == ["-t"] else ["-t", TOPIC] + args
        p = T.replay(full, check=False)
        err = p.stderr.decode()
        assert p.returncode == 2, "%s: exit %d, expected 2: %s" % (args, p.returncode, err)
        assert err.startswith("% ERROR: ") and msg in err, "%s: stderr %r, expected %r" % (args, err, msg)
        assert p.stdout == b"", "%s: something on stdout" % args
        assert len(err.splitlines()) == 1, "%s: more than one line: %r" % (args, err)


def help_goes_to_stdout():
    p = T.replay(["--help"])
    out = p.stdout.decode()
    assert out.startswith("usage: tracesift-replay") and p.stderr == b""
    for opt in ("--from", "--to", "--by", "--tag", "--meta", "--to-topic", "--explain-sampling", "--report",
                "--store", "-X", "exclusive", "130"):
        assert opt in out, "--help does not mention %s" % opt


def config_file_and_precedence():
    want = {r["trace_id"] for r, ts in ROWS if ts >= ROWS[50][1] and "rag" in r.get("tags", [])}
    conf = T.workfile("replay.conf")
    with open(conf, "w") as f:
        f.write("# replay settings\nbrokers = 127.0.0.1:1\ntopic = %s\nfrom = %d\ntag = rag\nmodel = nope\n"
                "kafka.client.id = from-file\n" % (TOPIC, ROWS[50][1]))
    # the flag's model replaces the file's; brokers come from -b (a flag) over the file
    p = T.replay(["-c", conf, "--model", "claude-3-5-haiku"])
    got = {json.loads(l)["trace_id"] for l in p.stdout.splitlines()}
    assert got == {i for i in want if next(r for r, _ in ROWS if r["trace_id"] == i).get("model") ==
                   "claude-3-5-haiku"}, "%d records" % len(got)
    p = T.replay(["-c", conf, "--model", "nope"])
    assert p.stdout == b""
    with open(conf, "a") as f:
        f.write("report = true\njson = true\n")
    p = T.replay(["-c", conf, "--model", "llama-3.1-8b-instruct"])
    assert json.loads(p.stdout)["type"] == "report"


def quiet_and_verbose():
    p = T.replay(["-t", TOPIC, "-q"])
    assert p.stderr == b"" and len(p.stdout.splitlines()) == len(ROWS)
    p = T.replay(["-t", TOPIC, "-v", "--from", str(ROWS[10][1])])
    err = p.stderr.decode()
    assert "partition 0: offsets" in err and "partition 1: offsets" in err, err


def unreachable_brokers_exit_1():
    p = T.replay(["-b", "127.0.0.1:1", "-t", TOPIC, "-q"], check=False, timeout_s=60)
    err = p.stderr.decode()
    assert p.returncode == 1 and err.startswith("% ERROR: topic") and "are they reachable?" in err, err


T.run(usage_errors)
T.run(help_goes_to_stdout)
T.run(config_file_and_precedence)
T.run(quiet_and_verbose)
T.run(unreachable_brokers_exit_1)
T.exit()
