#!/usr/bin/env python3
"""tests/integration/t9100-demo.py - the demo (deploy/demo.sh, what `make demo` runs) prints a report
whose numbers agree with the store and the evaluator's runs.

usage: t9100-demo.py                       run the demo into a scratch folder and check its report
       t9100-demo.py --check REPORT DIR    check a report `make demo` printed (DIR: its DEMO_DIR)"""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tslib  # noqa: E402
from tslib import BIN, TOP, note, timeout, workfile  # noqa: E402


def check(report, demo_dir, traces):
    """Asserts what the report says against the store it names."""
    store = os.path.join(demo_dir, "store")
    m = re.search(r"^traces published\s+(\d+)", report, re.M)
    assert m and int(m.group(1)) == traces, report
    m = re.search(r"^traces sampled\s+(\d+) read", report, re.M)
    assert m and int(m.group(1)) == traces, "the sampler did not read every trace: %s" % report
    block = report.split("selected per class:")[1].split("datasets")[0]
    selected = {k: int(v) for k, v in re.findall(r"^\s+(\S+)\s+(\d+)$", block, re.M)}
    ls = json.loads(subprocess.run([os.path.join(BIN, "tracesift-dataset"), "--store", store, "ls", "--json"],
                                   capture_output=True, check=True, text=True).stdout)["datasets"]
    items = {d["name"]: d["items"] for d in ls}
    assert sum(selected.values()) == sum(items.values()) > 0, (selected, items)
    for d in ls:
        assert re.search(r"^\s+%s\s+%d items\s+%d batches" % (re.escape(d["name"]), d["items"], d["batches"]),
                         report, re.M), (d, report)
        assert d["open"] == 0 and d["complete"] == 0 and d["evaluated"] == d["batches"], d
    runs = [json.loads(l) for l in subprocess.run(
        [os.path.join(BIN, "tracesift-evaluator"), "runs", "--json", "--store", store],
        capture_output=True, check=True, text=True).stdout.splitlines()]
    m = re.search(r"^evaluation runs\s+(\d+)", report, re.M)
    assert m and int(m.group(1)) == len(runs) == sum(d["batches"] for d in ls), (m and m.group(0), len(runs))
    assert sum(r["items"] for r in runs) == sum(items.values())
    assert "heuristic metrics only" in report or "judge:" in report
    for metric in ("answer_length", "grounding", "time_to_first_token"):
        assert re.search(r"^\s+%s\s+\d+" % metric, report, re.M), "no row for %s" % metric
    alerts = subprocess.run([os.path.join(BIN, "tracesift-evaluator"), "alerts", "--json", "--store", store],
                            capture_output=True, check=True, text=True).stdout.splitlines()
    m = re.search(r"^alerts fired\s+(\d+)", report, re.M)
    assert m and int(m.group(1)) == len(alerts), (m and m.group(0), len(alerts))
    assert "the datasets live in   " + store in report
    assert tslib.store_modes(store) == [], tslib.store_modes(store)


def demo_report_agrees_with_the_store():
    d = workfile("demo")
    p = subprocess.run([os.path.join(TOP, "deploy", "demo.sh")], capture_output=True, text=True,
                       timeout=timeout(900), env=dict(os.environ, DEMO_DIR=d, DEMO_TRACES="2000"))
    note(p.stdout)
    assert p.returncode == 0, p.stderr[-3000:]
    check(p.stdout, d, 2000)
    # it stopped what it started: no service of this demo is left running
    left = subprocess.run(["pgrep", "-f", "--store %s/store" % d], capture_output=True, text=True).stdout
    assert not left.strip(), "still running: %s" % left


if len(sys.argv) == 4 and sys.argv[1] == "--check":
    report = open(sys.argv[2]).read()
    m = re.search(r"^traces published\s+(\d+)", report, re.M)
    check(report, sys.argv[3], int(m.group(1)) if m else -1)
    print("ok - the demo's report agrees with its store")
    sys.exit(0)
tslib.run(demo_report_agrees_with_the_store)
tslib.exit()
