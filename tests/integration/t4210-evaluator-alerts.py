#!/usr/bin/env python3
"""tests/integration/t4210-evaluator-alerts.py - alert rules fire once per (batch, rule): one webhook
call, one llm.alerts record, a line on stderr; a batch under the bound fires none; the API key and
the webhook's secret path never show"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import evalib  # noqa: E402
import tslib  # noqa: E402
from evalib import Evaluator, Judge, Webhook, rag_records, runs  # noqa: E402
from tslib import BROKERS, workfile  # noqa: E402

REFUSAL = "I'm sorry, but I cannot help with that request."


def one_alert_per_batch_and_rule():
    """Batch 1: 40% refusals (rule: share above 0.5 > 0.2) fires; batch 2: 4% does not."""
    store = workfile("a-store")
    recs = rag_records(50, seed=7, answer=lambda i: REFUSAL if i % 5 < 2 else "The widget resets.")
    recs += rag_records(50, seed=8, first=50, answer=lambda i: REFUSAL if i in (60, 61) else "Hold the button.")
    evalib.fill_store(store, recs)
    alerts = tslib.create_topic(tslib.topic("alerts"), 1)
    hook = Webhook()
    try:
        conf = ("[evaluator]\nbrokers = %s\nalerts.topic = %s\nwebhook.url = %s\n"
                "[metric refusal]\nkind = refusal\n"
                "[metric latency]\nkind = latency\nthreshold = 100000\n"
                "[alert refusals]\nwhen = refusal share above 0.5 > 0.2\n"
                "[alert very-slow]\nwhen = p90 latency > 100 s\n" % (BROKERS, alerts, hook.url))
        ev = Evaluator(store, conf=conf)
        p = ev.cmd("once")
        assert len(hook.received) == 1, hook.received
        body = hook.received[0]
        assert body["text"].startswith("tracesift alert: refusals") and "monitoring@b000001" in body["text"], body
        assert body["alert"]["rule"] == "refusals" and abs(body["alert"]["value"] - 0.4) < 1e-9, body
        assert body["alert"]["batch"] == 1 and body["alert"]["id"] == "monitoring@b000001/refusals"
        recs_k = tslib.consume(alerts)
        assert len(recs_k) == 1, recs_k
        assert recs_k[0]["key"] == "monitoring@b000001/refusals"
        assert json.loads(recs_k[0]["payload"])["alert"]["rule"] == "refusals"
        assert p.stderr.count("% ALERT: refusals") == 1, p.stderr
        s1, s2 = runs(store)["monitoring@b000001"], runs(store)["monitoring@b000002"]
        assert [a["fired"] for a in s1["alerts"]] == [True, False], s1["alerts"]
        assert [a["fired"] for a in s2["alerts"]] == [False, False], s2["alerts"]
        # again: nothing new fires (no new batch, and fired alerts are remembered)
        ev.cmd("once")
        assert len(hook.received) == 1 and len(tslib.consume(alerts)) == 1
        lst = ev.cmd("alerts").stdout
        assert "refusals" in lst and "webhook sent" in lst and "kafka sent" in lst, lst
        # the webhook's secret path never shows, only its host
        assert "secretpath" not in p.stderr + p.stdout + lst
    finally:
        hook.close()


def alert_after_crash_before_mark():
    """A run whose summary exists but whose alerts were not sent (a crash) sends them on restart, once."""
    store = workfile("c-store")
    recs = rag_records(50, seed=9, answer=lambda i: REFUSAL)
    evalib.fill_store(store, recs)
    hook = Webhook()
    try:
        base = "[evaluator]\nbrokers = \"\"\n[metric refusal]\nkind = refusal\n" \
               "[alert refusals]\nwhen = refusal any > 0.5\n"
        # first with the webhook off: the run finishes, its alert is recorded as not sent by webhook
        Evaluator(store, conf=base).cmd("once")
        s = runs(store)["monitoring@b000001"]
        assert s["alerts"][0]["fired"], s
        # simulate the crash window: forget the alert record and the evaluated mark
        os.remove(os.path.join(store, "evaluations", "alerts.jsonl"))
        os.remove(os.path.join(store, "datasets", "monitoring", "evaluated"))
        ev = Evaluator(store, ["--webhook", hook.url], conf=base)
        ev.cmd("once")
        assert len(hook.received) == 1, hook.received
        assert evalib.evaluated(store) == [1]
        ev.cmd("once")
        assert len(hook.received) == 1
    finally:
        hook.close()


def webhook_down_is_counted():
    """An unreachable webhook: the run finishes, the alert says the webhook failed, the evaluator goes on."""
    store = workfile("d-store")
    evalib.fill_store(store, rag_records(50, seed=10, answer=lambda i: REFUSAL))
    conf = ("[evaluator]\nbrokers = \"\"\nwebhook.url = http://127.0.0.1:1/hook/secret-token\nwebhook.timeout.ms = 500\n"
            "[metric refusal]\nkind = refusal\n[alert refusals]\nwhen = refusal any > 0.5\n")
    p = Evaluator(store, conf=conf).cmd("once")
    assert "webhook failed: http://127.0.0.1:1" in p.stderr, p.stderr
    assert "secret-token" not in p.stderr + p.stdout
    assert "1 not delivered" in p.stderr, p.stderr
    assert evalib.evaluated(store) == [1]


def api_key_never_shows():
    """The judge key appears in no output, log or stored file, with debug logging on and failures."""
    key = "sk-test-VERY-SECRET-93f1c2"
    store = workfile("s-store")
    evalib.fill_store(store, rag_records(50, seed=11))
    judge = Judge([{"match": "question number 3 ", "in": "any", "status": 400, "echo_auth": True},
                   {"match": "question number 4 ", "in": "any", "status": 401},
                   {"match": "", "content": '{"score": 0.2, "reason": "fine"}'}], key_env="TS_KEY",
                  env={"TS_KEY": key})
    try:
        env = {"TRACESIFT_JUDGE_API_KEY": key, "TS_KEY": key}
        conf = ("[evaluator]\nbrokers = \"\"\n[judge]\nurl = %s\nmodel = m\nretries = 1\nbackoff.ms = 10\n"
                "[metric hallucination]\njudge = hallucination\n" % judge.url)
        ev = Evaluator(store, ["-v", "-v"], conf=conf, env=env)
        p = ev.cmd("once")
        out = p.stdout + p.stderr
        out += ev.cmd("show", "monitoring@b000001").stdout + ev.cmd("runs", "--json").stdout
        assert key not in out, "the key leaked into output"
        for d, _, files in os.walk(store):
            for f in files:
                with open(os.path.join(d, f), "rb") as fh:
                    assert key.encode() not in fh.read(), "the key is in %s" % f
        log = judge.log()["requests"]
        assert log and all(r["auth"] == "match" for r in log), [r["auth"] for r in log][:5]
        lines = {l["item"]: l for l in evalib.scores(store, "monitoring@b000001")}
        errs = [l for l in lines.values() if l["score"] is None]
        assert len(errs) == 2, errs
    finally:
        judge.close()


for case in (one_alert_per_batch_and_rule, alert_after_crash_before_mark, webhook_down_is_counted,
             api_key_never_shows):
    evalib.run(case)
tslib.exit()
