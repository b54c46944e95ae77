#!/usr/bin/env python3
"""tests/integration/t2140-sampler-redact.py - emails and phone numbers never reach the output topic"""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tslib as T  # noqa: E402

N = 500
# loadgen's personal data (docs/loadgen.md): addresses at example.com/.org/.net (and
# their subdomains), and the fictional numbers in four shapes:
# +1 415-555-0134, (212) 555-0199, 206.555.0115, +44 20 7946 0xxx
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}")
PHONE = re.compile(r"\+1 \d{3}-\d{3}-\d{4}|\(\d{3}\) \d{3}-\d{4}|\b\d{3}[.-]\d{3}[.-]\d{4}\b|\+44 20 \d{4} \d{4}")
# what is left of them if a redaction missed a part
TRACES = re.compile(r"@(?:[a-z]+\.)*example\.(?:com|org|net)|555[-. ]01\d\d|7946 0\d\d\d")
USER_ID = re.compile(r"(usr)_[0-9a-f]{6}")          # metadata.user_id, for a pattern of our own
REDACT = ["builtin = email, phone, api_key", r"pattern = (usr)_[0-9a-f]{6} => \1_XXXXXX"]

LINES = subprocess.run([os.path.join(T.BIN, "tracesift-loadgen"), "-n", str(N), "--seed", "5",
                        "--pii-rate", "1"], capture_output=True, check=True).stdout.decode().splitlines()
RECS = {json.loads(l)["trace_id"]: json.loads(l) for l in LINES}
EMAILS = {e for l in LINES for e in EMAIL.findall(l)}
PHONES = {p for l in LINES for p in PHONE.findall(l)}
assert len(RECS) == N and len(EMAILS) > 100 and len(PHONES) > 100, (len(EMAILS), len(PHONES))


def redacted(v, counter):
    """v as the rules above should leave it (the built-ins as docs/redaction.md says
    they match loadgen's data), counting the replacements."""
    if isinstance(v, str):
        for rx, repl in ((EMAIL, "[EMAIL]"), (PHONE, "[PHONE]"), (USER_ID, r"\1_XXXXXX")):
            v, n = rx.subn(repl, v)
            counter[0] += n
        return v
    if isinstance(v, list):
        return [redacted(x, counter) for x in v]
    if isinstance(v, dict):
        return {k: redacted(x, counter) for k, x in v.items()}
    return v


def run(t, settings):
    conf = T.sampler_conf(t, dict({"seed": 5, "batch.size": 0}, **settings), [("default", ["rate = 1.0"])], REDACT)
    return T.Sampler(conf, name="red-" + settings.get("projection", "full").replace(",", "-")).start()


def check_no_pii(payloads):
    leaks = []
    for p in payloads:
        leaks += [e for e in EMAILS if e in p] + [n for n in PHONES if n in p] + TRACES.findall(p)
        leaks += re.findall(r"usr_[0-9a-f]{6}", p)
    assert not leaks, "%d pieces of personal data in the output, e.g. %s" % (len(leaks), sorted(set(leaks))[:5])


def full_and_projected_items_are_redacted():
    t = T.sampler_topics("red", partitions=3)
    T.produce(t["input"], LINES)
    # the same input through a second sampler (own group and output) with a projection
    tp = dict(t, output=T.create_topic(T.topic("redp-out"), 3, max_message_bytes=4194304),
              dlq=T.create_topic(T.topic("redp-dlq"), 1), group=T.topic("redp-g"))
    full = run(t, {})
    proj = run(tp, {"projection": "input,output,context"})
    for s in (full, proj):
        T.wait_until("the sampler to select all %d records" % N,
                     lambda: s.stats().get("selected_total", 0) >= N or not s.alive(), 120)
        assert s.stop() == 0, s.stderr()[-2000:]

    # the whole records: no personal data, still records, redacted exactly where it was
    msgs = T.consume(t["output"])
    check_no_pii([m["payload"] for m in msgs])
    items = T.items_of(msgs)
    assert sorted(i["id"] for i in items) == sorted(RECS), "not every record selected once"
    count = [0]
    for it in items:
        rec, orig = it["record"], RECS[it["id"]]
        assert rec["trace_id"] == it["id"] and len(rec["spans"]) == len(orig["spans"]) > 0
        assert rec["metadata"]["user_id"] == "usr_XXXXXX", rec["metadata"]
        want = redacted(orig, count)
        if rec != want:
            a, b = json.dumps(want), json.dumps(rec)
            i = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
            raise AssertionError("item %s: record differs from the expected redaction at ...%s... (expected ...%s...)"
                                 % (it["id"], b[max(0, i - 60):i + 60], a[max(0, i - 60):i + 60]))
    st = full.stats()
    T.note("full records: %d redactions (%d expected)" % (st.get("redactions", -1), count[0]))
    assert st.get("redactions", 0) > 0 and st["redactions"] == count[0], st

    # a projection: only the fields named, redacted as well
    msgs = T.consume(tp["output"])
    check_no_pii([m["payload"] for m in msgs])
    items = T.items_of(msgs)
    assert sorted(i["id"] for i in items) == sorted(RECS), "not every record selected once"
    count = [0]
    for it in items:
        rec, orig = it["record"], RECS[it["id"]]
        assert sorted(rec) == ["context", "input", "output", "trace_id"], sorted(rec)
        assert rec["trace_id"] == it["id"]
        want = {"trace_id": it["id"], "input": redacted(orig["input"], count),
                "output": redacted(orig["output"], count), "context": redacted(orig["output"]["context"], count)}
        assert rec == want, "item %s: projection differs from the expected redaction" % it["id"]
    st = proj.stats()
    T.note("projected records: %d redactions (%d expected)" % (st.get("redactions", -1), count[0]))
    assert st.get("redactions", 0) > 0 and st["redactions"] == count[0], st


T.run(full_and_projected_items_are_redacted)
T.exit()
