#!/usr/bin/env python3
"""tests/integration/t4200-evaluator.py - tracesift-evaluator on a store the real sink filled:
heuristic runs, judge scores, errors recorded as errors, budgets, every-50 across kill -9"""
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import evalib  # noqa: E402
import tslib  # noqa: E402
from evalib import Evaluator, Judge, evaluated, rag_records, runs, scores  # noqa: E402
from tslib import note, timeout, wait_until, workfile  # noqa: E402

HEURISTICS = ["answer_length", "empty_answer", "refusal", "tokens", "latency", "time_to_first_token",
              "grounding"]


def heuristic_runs_once():
    """No judge: two batches of 50 → two runs, every heuristic metric scored for every item."""
    store = workfile("h-store")
    recs = rag_records(120, seed=3)       # 2 complete batches, 20 items left in an open one
    evalib.fill_store(store, recs)
    ev = Evaluator(store, ["-b", ""])
    p = ev.cmd("once")
    assert "heuristic metrics only" in p.stderr, p.stderr
    r = runs(store)
    assert sorted(r) == ["monitoring@b000001", "monitoring@b000002"], r
    for rid, summary in r.items():
        assert summary["status"] == "complete" and summary["items"] == 50, summary
        assert summary["judge_model"] is None
        lines = scores(store, rid)
        pairs = {(l["item"], l["metric"]) for l in lines}
        assert len(lines) == len(pairs) == 50 * len(HEURISTICS), (len(lines), len(pairs))
        assert set(summary["aggregates"]) == set(HEURISTICS)
        lat = summary["aggregates"]["latency"]
        batch = recs[:50] if rid.endswith("1") else recs[50:100]
        want = sorted(x["latency_ms"]["total"] for x in batch)
        assert lat["n"] == 50 and lat["min"] == want[0] and lat["max"] == want[-1], lat
        assert abs(lat["mean"] - sum(want) / 50) < 1e-6, lat
        assert lat["p90"] == want[44], (lat, want[44])            # nearest rank: ceil(0.9 * 50) = 45th
        g = summary["aggregates"]["grounding"]
        assert g["n"] == 50 and g["errors"] == 0 and g["min"] > 0.5, g
    assert evaluated(store) == [1, 2], evaluated(store)
    # the metric table went to stdout, one row per metric
    for m in HEURISTICS:
        assert m in p.stdout, p.stdout
    # a second pass finds nothing to do: no batch evaluated twice
    ev.cmd("once")
    assert sorted(runs(store)) == ["monitoring@b000001", "monitoring@b000002"]
    lst = ev.cmd("runs").stdout
    assert "monitoring@b000001" in lst and "complete" in lst, lst
    show = ev.cmd("show", "monitoring@b000002").stdout
    assert "time_to_first_token" in show and "worst items" in show, show
    # once over a range of items
    ev.cmd("once", "--dataset", "monitoring", "--from-seq", "100", "--to-seq", "120")
    rr = runs(store)["monitoring@s100-120"]
    assert rr["items"] == 20, rr
    assert tslib.store_modes(store) == [], tslib.store_modes(store)


def judge_scores_and_errors():
    """A judge answers per question; a bad answer gets one reminder; what stays bad is an error."""
    store = workfile("j-store")
    evalib.fill_store(store, rag_records(50, seed=4))
    rules = [
        # question 7: the first answer is prose, the reminder gets JSON
        {"match": "question number 7 ", "content": "I think it is fine."},
        # question 8: never JSON
        {"match": "question number 8 ", "in": "any", "content": "no json here"},
        # question 9: score out of range
        {"match": "question number 9 ", "in": "any", "content": '{"score": 7, "reason": "x"}'},
        # question 10: the server fails twice, then answers
        {"match": "question number 10 ", "in": "any", "status": 500, "times": 2,
         "content": '{"score": 0.9, "reason": "after retries"}'},
        # question 11: a 400 that is not retried
        {"match": "question number 11 ", "in": "any", "status": 400},
        {"match": "", "content": '{"score": 0.25, "reason": "supported by the context"}'},
    ]
    judge = Judge(rules)
    try:
        conf = ("[evaluator]\nbrokers = \"\"\n[judge]\nurl = %s\nmodel = judge-1\nretries = 3\nbackoff.ms = 50\n"
                "[metric hallucination]\njudge = hallucination\n" % judge.url)
        ev = Evaluator(store, conf=conf)
        ev.cmd("once")
        summary = runs(store)["monitoring@b000001"]
        assert summary["judge_model"] == "judge-1", summary
        lines = {l["item"]: l for l in scores(store, "monitoring@b000001")}
        assert len(lines) == 50
        by_q = {}
        for rec in rag_records(50, seed=4):
            by_q[int(rec["input"]["question"].split()[2])] = lines[rec["trace_id"]]
        assert by_q[7]["score"] == 0.25 and by_q[7]["attempts"] == 2, by_q[7]
        assert by_q[8]["score"] is None and "after a reminder" in by_q[8]["error"], by_q[8]
        assert by_q[9]["score"] is None and "outside" in by_q[9]["error"], by_q[9]
        assert by_q[10]["score"] == 0.9 and by_q[10]["attempts"] == 3, by_q[10]
        assert by_q[11]["score"] is None and "400" in by_q[11]["error"], by_q[11]
        assert by_q[0]["score"] == 0.25 and by_q[0]["reason"] == "supported by the context"
        agg = summary["aggregates"]["hallucination"]
        assert agg["errors"] == 3 and agg["n"] == 47, agg
        assert abs(agg["mean"] - (46 * 0.25 + 0.9) / 47) < 1e-9 and agg["max"] == 0.9, agg
        # the prompts carried the item's fields
        msgs = judge.log()["requests"][0]["messages"]
        text = json.dumps(msgs)
        assert "question number" in text and "widget" in text, text[:500]
    finally:
        judge.close()


def judge_budget():
    """A budget of 20 requests: the run stops using the judge, says so, and records the rest as errors."""
    store = workfile("b-store")
    evalib.fill_store(store, rag_records(50, seed=5))
    judge = Judge(default='{"score": 0.1, "reason": "ok"}')
    try:
        conf = ("[evaluator]\nbrokers = \"\"\n[judge]\nurl = %s\nmodel = m\ninflight = 4\nbudget.requests = 20\n"
                "[metric hallucination]\njudge = hallucination\n" % judge.url)
        ev = Evaluator(store, conf=conf)
        p = ev.cmd("once")
        summary = runs(store)["monitoring@b000001"]
        assert summary["status"] == "budget", summary
        assert "budget is spent" in p.stderr, p.stderr
        lines = scores(store, "monitoring@b000001")
        ok = [l for l in lines if l["score"] is not None]
        spent = [l for l in lines if l.get("budget")]
        assert len(ok) == 20 and len(spent) == 30 and len(lines) == 50, (len(ok), len(spent))
        assert len(judge.log()["requests"]) == 20
        assert evaluated(store) == [1]
    finally:
        judge.close()


def judge_unavailable_pauses_the_run():
    """A judge that is down is not the items' fault: the run pauses with nothing recorded for the
    judge, and finishes once the judge is back; no batch is marked evaluated before."""
    store = workfile("u-store")
    evalib.fill_store(store, rag_records(50, seed=14))
    judge = Judge(default='{"score": 0.4, "reason": "ok"}')
    port = judge.port
    judge.close()                                   # down, on a port we know
    conf = ("[evaluator]\nbrokers = \"\"\n[judge]\nurl = http://127.0.0.1:%d/v1\nmodel = m\nretries = 1\n"
            "backoff.ms = 20\nconnect.timeout.ms = 500\n[metric hallucination]\njudge = hallucination\n"
            "[metric latency]\nkind = latency\n" % port)
    ev = Evaluator(store, conf=conf)
    p = ev.cmd("once", check=False)
    assert p.returncode == 1 and "the judge is unavailable" in p.stderr and "paused" in p.stderr, p.stderr
    assert runs(store) == {"monitoring@b000001": None}, runs(store)
    assert evaluated(store) == []
    assert all(l["metric"] == "latency" for l in scores(store, "monitoring@b000001"))
    judge = Judge(default='{"score": 0.4, "reason": "ok"}', port=port)
    try:
        ev.cmd("once")
        s = runs(store)["monitoring@b000001"]
        assert s and s["items"] == 50 and s["errors"] == 0, s
        lines = scores(store, "monitoring@b000001")
        assert sorted(l["metric"] for l in lines) == ["hallucination"] * 50 + ["latency"] * 50
        assert evaluated(store) == [1]
    finally:
        judge.close()


def every_50_across_kill9():
    """1,000 items in batches of 50 → exactly 20 runs of 50, none twice, across kill -9 mid-run."""
    store = workfile("k-store")
    recs = rag_records(1000, seed=6)
    evalib.fill_store(store, recs)
    judge = Judge(delay_ms=15, default='{"score": 0.3, "reason": "fine"}')
    try:
        conf = ("[evaluator]\nbrokers = \"\"\npoll.ms = 100\ndefaults = on\n[judge]\nurl = %s\nmodel = m\n"
                "inflight = 4\n" % judge.url)
        ev = Evaluator(store, conf=conf)
        kills = 0
        for k in range(4):
            ev.start()
            # wait until a run is in the middle: a run folder without a summary and some scores in it
            def mid_run():
                for rid, s in runs(store).items():
                    if s is None and os.path.exists(os.path.join(store, "evaluations", "runs", rid, "scores.jsonl")) \
                            and os.path.getsize(os.path.join(store, "evaluations", "runs", rid, "scores.jsonl")) > 0:
                        return rid
                return None
            rid = wait_until("a run in the middle", lambda: mid_run() or not ev.alive(), 120)
            assert ev.alive(), ev.stderr()[-2000:]
            time.sleep(random.random() * 0.5)
            ev.kill9()
            kills += 1
            note("kill -9 during %s (%d runs finished)" % (rid, sum(1 for s in runs(store).values() if s)))
        ev.start()
        wait_until("20 finished runs", lambda: sum(1 for s in runs(store).values() if s) == 20 or not ev.alive(),
                   300)
        assert ev.stop() == 0, ev.stderr()[-2000:]
        r = runs(store)
        assert len(r) == 20 and all(s and s["items"] == 50 and s["status"] == "complete" for s in r.values()), \
            [(rid, s and s["items"], s and s["status"]) for rid, s in r.items()]
        assert sorted(evaluated(store)) == list(range(1, 21)), evaluated(store)
        metrics = set(r["monitoring@b000001"]["aggregates"])
        assert {"hallucination", "moderation", "answer_relevance"} <= metrics, metrics
        seen = set()
        for rid in r:
            for l in scores(store, rid):
                key = (l["item"], l["metric"])
                assert key not in seen, "scored twice: %r" % (key,)
                seen.add(key)
                assert l["score"] is not None, l
        assert len(seen) == 1000 * len(metrics), len(seen)
        assert "resuming run" in ev.stderr() or kills == 0
    finally:
        judge.close()


def schedule_runs_what_arrived():
    """Schedule mode: each pass scores the items that arrived since the last one, once."""
    store = workfile("sc-store")
    t = evalib.fill_store(store, rag_records(120, seed=12), dataset="archive", batch_size=0)
    ev = Evaluator(store, ["-b", "", "-s", "schedule=1ms"])
    ev.cmd("once")
    assert sorted(runs(store)) == ["archive@s0-120"], runs(store)
    ev.cmd("once")                                   # nothing new: no run
    assert sorted(runs(store)) == ["archive@s0-120"], runs(store)
    evalib.add_to_store(store, rag_records(50, seed=13, first=120), t, dataset="archive", batch_size=0)
    ev.cmd("once")
    r = runs(store)
    assert sorted(r) == ["archive@s0-120", "archive@s120-170"], sorted(r)
    assert r["archive@s120-170"]["items"] == 50
    items = [l["item"] for rid in r for l in scores(store, rid) if l["metric"] == "latency"]
    assert len(items) == len(set(items)) == 170


def config_errors():
    """Bad configurations: a clear message naming the place, exit 2, nothing started."""
    store = workfile("c-store")
    os.makedirs(store, mode=0o700, exist_ok=True)
    cases = [
        ("[evaluator]\nbogus = 1\n", "unknown key 'bogus'"),
        ("[metric x]\nkind = wrong\n", "unknown kind 'wrong'"),
        ("[metric x]\nkind = regex\npattern = (\n", "metric 'x'"),
        ("[alert a]\nwhen = latency p42 > 1\n", "unknown aggregate"),
        ("[alert a]\nwhen = nosuchmetric mean > 1\n", "no metric 'nosuchmetric'"),
        ("[judge]\nurl = http://127.0.0.1:1/v1\n", "no judge model"),
        ("[metric h]\njudge = hallucination\n", "needs a judge"),
        ("[evaluator]\npoll.ms = -5\n", "poll.ms"),
        ("[metric s]\njudge = style\nrubric.file = /nonexistent/rubric\n", "rubric.file"),
    ]
    for text, want in cases:
        ev = Evaluator(store, ["-b", ""], conf=text)
        p = ev.cmd("once", check=False)
        assert p.returncode == 2 and want in p.stderr, (text, p.returncode, p.stderr)
        assert p.stderr.startswith("% ERROR: "), p.stderr
    p = subprocess_run(["--help"])
    assert p.returncode == 0 and "judge.budget.requests" in p.stdout
    p = subprocess_run(["bogus-command"])
    assert p.returncode == 2 and "unknown command" in p.stderr, p.stderr
    p = subprocess_run(["once", "--store", workfile("nothing-here"), "-b", ""])
    assert p.returncode == 1 and "no store at" in p.stderr, p.stderr


def subprocess_run(args):
    import subprocess
    return subprocess.run([os.path.join(tslib.BIN, "tracesift-evaluator")] + args, capture_output=True,
                          text=True, timeout=timeout(60))


for case in [globals()[a] for a in sys.argv[1:]] or (heuristic_runs_once, judge_scores_and_errors, judge_budget,
                                                   judge_unavailable_pauses_the_run,
                                                   every_50_across_kill9, schedule_runs_what_arrived,
                                                   config_errors):
    evalib.run(case)
tslib.exit()
