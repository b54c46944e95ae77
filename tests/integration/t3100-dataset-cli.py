#!/usr/bin/env python3
"""tests/integration/t3100-dataset-cli.py - tracesift-dataset: every command's output, against a real store

The store is built the way production builds it: items and batch triggers (in
the sampler's format, docs/sampling.md) are published with kcat to a topic
and tracesift-sink inserts them.  Then each command of tracesift-dataset is
run and its output checked against what was published.
"""
import csv
import io
import json
import os
import pty
import select
import signal
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tslib as T  # noqa: E402

DATASET = os.path.join(T.BIN, "tracesift-dataset")
SINK = os.path.join(T.BIN, "tracesift-sink")
T_STORE = os.path.join(T.BUILD, "tests", "tools", "t-store")
STORE = T.workfile("store")

CSV_COLUMNS = ["id", "dataset", "batch", "position", "class", "rate", "selected_at", "name", "model",
               "start_time", "input", "output", "total_tokens", "latency_ms", "ttft_ms", "error_type"]

# Text that CSV and JSON must carry through unchanged.
TRICKY = [
    'he said "hi", then left',
    "line one\nline two\r\nline three",
    "café, 日本語, emoji 🚀, ñ",
    '"', ",", '""', "trailing space ", "=1+2",
]
MODELS = ["m1", "m2", 'gpt-4o, "mini"']
# start_time -> the UTC day stats must count it in
STARTS = [("2026-11-25T23:59:59.999999Z", "2026-11-25"),
          ("2026-11-26T00:00:00.000001Z", "2026-11-26"),
          ("2026-11-26T01:30:00.000000+02:00", "2026-11-25")]


def record(i):
    start, _ = STARTS[i % 3]
    rec = {"v": 1, "trace_id": "%032x" % (0xabc000 + i), "name": "rag_query" if i % 5 else "chat, \"v2\"\nsecond line",
           "project": "t", "start_time": start, "end_time": "2026-11-26T10:00:02.500000Z",
           "input": {"question": TRICKY[i % len(TRICKY)], "i": i},
           "output": TRICKY[(i + 3) % len(TRICKY)] if i % 4 else None,
           "tags": ["rag"], "metadata": {"i": i}, "model": MODELS[i % 3],
           "usage": {"input_tokens": i, "output_tokens": 2 * i, "total_tokens": 3 * i},
           "latency_ms": {"total": 100 + 10 * i, "time_to_first_token": (100 + 10 * i) / 4},
           "error": None, "spans": []}
    if i % 7 == 0:
        rec["error"] = {"type": "Timeout" if i % 14 else "Rate, limited", "message": "slow"}
    if i % 11 == 0:
        del rec["latency_ms"]
    return rec


def item(ds, i, batch=None, position=None):
    it = {"type": "item", "id": "%032x" % (0xabc000 + i), "dataset": ds}
    if batch is not None:
        it["batch"], it["position"] = batch, position
    it.update({"class": ["default", "slow", "errors"][i % 3], "rate": [0.5, 1, 0.125][i % 3], "seed": 42,
               "draw": 0.25, "source": {"topic": "llm.traces", "partition": 0, "offset": i},
               "selected_at": "2026-11-26T21:04:05.%06dZ" % i, "record": record(i)})
    return it


def trigger(ds, batch, ids, partial=False):
    return {"type": "batch", "dataset": ds, "batch": batch, "size": len(ids), "batch_size": 50,
            "partial": partial, "closed_at": "2026-11-26T21:04:06.000001Z", "items": ids}


# dataset "mon": batches 1 and 2 complete (50 each), 3 closed partial (10), 4 open (10)
MON = [item("mon", i, 1 + i // 50 if i < 100 else (3 if i < 110 else 4),
            i % 50 if i < 100 else (i - 100 if i < 110 else i - 110)) for i in range(120)]
OTHER = [item("other", 1000 + i) for i in range(5)]
OTHER_LATER = [item("other", 2000 + i) for i in range(3)]
BIG = [item("big", 100000 + i) for i in range(12000)]
# items whose records have none of the fields stats and csv read
BARE = [{"type": "item", "id": "bare-%d" % i, "dataset": "bare",
         "record": {"v": 1, "trace_id": "%032x" % (0xbae000 + i)}} for i in range(3)]
# bare trace records, as `tracesift-sink --archive arch` stores them
ARCH = T.records(4, seed=3100)
ARCH[1]["input"] = {"question": TRICKY[0] + "\n" + TRICKY[2]}


def dumps(v):
    return T.dumps(v)


def messages():
    """The messages published, in order, as (key, payload) pairs."""
    out = []
    for b, lo, hi, partial in ((1, 0, 50, False), (2, 50, 100, False), (3, 100, 110, True)):
        out += [("mon", dumps(x)) for x in MON[lo:hi]]
        out.append(("mon", dumps(trigger("mon", b, [x["id"] for x in MON[lo:hi]], partial))))
    out += [("mon", dumps(x)) for x in MON[110:]]
    out += [("other", dumps(x)) for x in OTHER]
    out.append(("other", dumps(OTHER[0])))          # a duplicate: stored once
    out += [("big", dumps(x)) for x in BIG]
    out += [("bare", dumps(x)) for x in BARE]
    return out


def run_sink(topic, dlq, expect_consumed, extra=()):
    log = os.path.join(T.LOGS, "t3100-sink-%d.log" % int(time.time() * 1000))
    with open(log, "wb") as logf:
        p = subprocess.Popen([SINK, "-b", T.BROKERS, "-t", topic, "--dlq", dlq, "--store", STORE,
                              "--commit-interval-ms", "100", "--stats-interval-ms", "200"] + list(extra),
                             stdout=subprocess.DEVNULL, stderr=logf)

    def consumed():
        last = {}
        with open(log, "rb") as f:
            for line in f.read().decode(errors="replace").splitlines():
                if line.startswith("{"):
                    last = json.loads(line)
        if p.poll() is not None:
            raise AssertionError("the sink exited %d: %s" % (p.returncode, open(log).read()[-2000:]))
        return last.get("consumed", 0) >= expect_consumed and last.get("commits", 0) > 0
    try:
        T.wait_until("the sink to consume %d messages" % expect_consumed, consumed, 120)
        time.sleep(0.5)
        p.send_signal(signal.SIGTERM)
        rc = p.wait(T.timeout(60))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert rc == 0, "sink exit %d: %s" % (rc, open(log).read()[-2000:])


def setup():
    os.makedirs(T.LOGS, exist_ok=True)
    topic = T.create_topic(T.topic("ds"), 1, max_message_bytes=4194304)
    dlq = T.create_topic(T.topic("ds-dlq"), 1)
    msgs = messages()
    T.produce_msgs(topic, msgs)
    run_sink(topic, dlq, len(msgs))
    traces = T.create_topic(T.topic("ds-traces"), 1)
    T.produce_msgs(traces, [(r["trace_id"], dumps(r)) for r in ARCH])
    run_sink(traces, dlq, len(ARCH), ["--archive", "arch"])
    return topic, dlq, len(msgs)


TOPIC, DLQ, NMSGS = setup()


def ds(*args):
    """Runs tracesift-dataset on the test store; returns the CompletedProcess (bytes)."""
    return subprocess.run([DATASET, "--store", STORE] + list(args), capture_output=True,
                          timeout=T.timeout(120))


def ok(*args):
    p = ds(*args)
    assert p.returncode == 0, "%s: exit %d: %s" % (args, p.returncode, p.stderr.decode()[-2000:])
    assert b"ERROR" not in p.stderr, p.stderr.decode()
    return p


def lines_of(items):
    return [dumps(x).encode() for x in items]


def num(s):
    return None if s == "" else float(s)


# ---- cases ---------------------------------------------------------------

def help_and_usage_errors():
    p = subprocess.run([DATASET, "--help"], capture_output=True)
    assert p.returncode == 0 and not p.stderr, p
    text = p.stdout.decode()
    for word in ("usage: tracesift-dataset", "--store DIR", "TRACESIFT_STORE", " ls ", " count NAME",
                 " cat NAME", " export NAME --format jsonl|csv", " stats NAME", " batches NAME"):
        assert word in text, "--help lacks %r" % word
    for args in ([], ["frobnicate"], ["count"], ["count", "mon", "extra"], ["ls", "--bogus"],
                 ["export", "mon"], ["export", "mon", "--format", "xml"], ["cat", "mon", "--batch", "x"],
                 ["count", "../etc"], ["ls", "--batch", "1"], ["count", "mon", "--json"], ["cat", "mon", "-o"]):
        p = ds(*args)
        err = p.stderr.decode()
        assert p.returncode == 2, "%s: exit %d, want 2 (usage)" % (args, p.returncode)
        assert err.startswith("% ERROR: ") and not p.stdout, "%s: %r" % (args, err)


def ls_table_and_json():
    p = ok("ls")
    rows = [l.split() for l in p.stdout.decode().splitlines()]
    assert rows[0][:3] == ["DATASET", "ITEMS", "BATCHES"], rows[0]
    table = {r[0]: r[1:] for r in rows[1:]}
    assert [r[0] for r in rows[1:]] == ["arch", "bare", "big", "mon", "other"], "not these, sorted: %s" % rows
    assert table["mon"][:2] == ["120", "4"] and table["other"][:2] == ["5", "0"] and table["big"][0] == "12000", table
    j = json.loads(ok("ls", "--json").stdout)
    d = {x["name"]: x for x in j["datasets"]}
    assert d["mon"]["items"] == 120 and d["mon"]["batches"] == 4, d["mon"]
    assert d["mon"]["complete"] + d["mon"]["evaluated"] == 3 and d["mon"]["open"] == 1, d["mon"]
    assert d["other"] == {"name": "other", "items": 5, "batches": 0, "open": 0, "complete": 0,
                          "evaluated": 0}, d["other"]
    # the store from the environment when --store is absent; a missing store is an error
    p = subprocess.run([DATASET, "count", "mon"], capture_output=True, env=dict(os.environ, TRACESIFT_STORE=STORE))
    assert p.returncode == 0 and p.stdout == b"120\n", p
    p = subprocess.run([DATASET, "--store", T.workfile("nowhere"), "ls"], capture_output=True)
    assert p.returncode == 1 and p.stderr.startswith(b"% ERROR: ") and not p.stdout, p


def count_each():
    assert ok("count", "mon").stdout == b"120\n"
    assert ok("count", "other").stdout == b"5\n", "the duplicate was counted"
    assert ok("count", "big").stdout == b"12000\n"


def missing_dataset():
    for args in (["count", "nope"], ["cat", "nope"], ["export", "nope", "--format", "csv"],
                 ["stats", "nope"], ["batches", "nope"], ["stats", "nope", "--json"]):
        p = ds(*args)
        err = p.stderr.decode()
        assert p.returncode == 1, "%s: exit %d, want 1" % (args, p.returncode)
        assert err.startswith("% ERROR: ") and "'nope'" in err and "no dataset" in err, "%s: %r" % (args, err)
        assert not p.stdout, "%s wrote data: %r" % (args, p.stdout[:200])
    p = ds("cat", "mon", "--batch", "99")
    assert p.returncode == 1 and b"no batch 99" in p.stderr and not p.stdout, p
    out = T.workfile("never.csv")
    p = ds("export", "nope", "--format", "csv", "-o", out)
    assert p.returncode == 1 and not os.path.exists(out), "a failed export left a file"


def cat_items_as_stored():
    got = ok("cat", "mon").stdout.split(b"\n")
    assert got[-1] == b"", "output does not end with a newline"
    assert got[:-1] == lines_of(MON), "cat mon differs from what was published"
    assert ok("cat", "other").stdout.split(b"\n")[:-1] == lines_of(OTHER)
    for b, want in ((1, MON[:50]), (2, MON[50:100]), (3, MON[100:110]), (4, MON[110:])):
        got = ok("cat", "mon", "--batch", str(b)).stdout.split(b"\n")[:-1]
        assert got == lines_of(want), "cat --batch %d: %d lines, want %d" % (b, len(got), len(want))


def cat_since_cursor():
    p = ok("cat", "other", "--since", "0")
    assert p.stdout.split(b"\n")[:-1] == lines_of(OTHER)
    cursor = int(p.stderr.decode().split("% next cursor: ")[1].split()[0])
    p = ok("cat", "other", "--since", str(cursor))
    assert p.stdout == b"", "nothing new, yet: %r" % p.stdout[:200]
    assert ("%% next cursor: %d" % cursor) in p.stderr.decode(), "the cursor moved with nothing read"
    # more items arrive through the sink (it resumes where the store says)
    T.produce_msgs(TOPIC, [("other", dumps(x)) for x in OTHER_LATER])
    run_sink(TOPIC, DLQ, len(OTHER_LATER))
    p = ok("cat", "other", "--since", str(cursor))
    assert p.stdout.split(b"\n")[:-1] == lines_of(OTHER_LATER), "since the cursor: %r" % p.stdout[:300]
    nxt = int(p.stderr.decode().split("% next cursor: ")[1].split()[0])
    assert nxt > cursor
    assert ok("cat", "other", "--since", str(nxt)).stdout == b""
    assert ok("count", "other").stdout == b"8\n"
    assert ok("cat", "other").stdout.split(b"\n")[:-1] == lines_of(OTHER + OTHER_LATER)


def export_jsonl_equals_cat():
    for name, extra in (("mon", []), ("mon", ["--batch", "2"]), ("big", [])):
        cat = ok("cat", name, *extra).stdout
        assert ok("export", name, "--format", "jsonl", *extra).stdout == cat, "stdout export != cat"
        out = T.workfile("%s.jsonl" % name)
        p = ok("export", name, "--format=jsonl", "-o", out, *extra)
        assert p.stdout == b"", "data on stdout with -o"
        with open(out, "rb") as f:
            assert f.read() == cat, "export -o %s != cat" % out
        mode = stat.S_IMODE(os.stat(out).st_mode)
        assert mode == 0o600, "mode %o" % mode
    leftovers = [f for f in os.listdir(T.workfile("")) if ".tmp" in f]
    assert not leftovers, "temporary files left: %s" % leftovers


def export_csv():
    out = T.workfile("mon.csv")
    ok("export", "mon", "--format", "csv", "-o", out)
    with open(out, "rb") as f:
        raw = f.read()
    raw.decode("utf-8")                                  # strict: UTF-8 or it raises
    assert raw.startswith(b"id,dataset,batch,"), raw[:80]
    assert raw.endswith(b"\r\n"), "rows end with CRLF (RFC 4180)"
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, strict=True))
    assert rows[0] == CSV_COLUMNS, rows[0]
    assert len(rows) == 1 + len(MON), "%d rows" % len(rows)
    assert all(len(r) == len(CSV_COLUMNS) for r in rows), "a row with the wrong number of fields"
    for r, it in zip(rows[1:], MON):
        row = dict(zip(CSV_COLUMNS, r))
        rec = it["record"]
        lat = rec.get("latency_ms") or {}
        assert row["id"] == it["id"] and row["dataset"] == "mon", row
        assert int(row["batch"]) == it["batch"] and int(row["position"]) == it["position"], row
        assert row["class"] == it["class"] and float(row["rate"]) == it["rate"], row
        assert row["selected_at"] == it["selected_at"] and row["start_time"] == rec["start_time"], row
        assert row["name"] == rec["name"] and row["model"] == rec["model"], row
        assert json.loads(row["input"]) == rec["input"], "input %r" % row["input"]
        assert json.loads(row["output"]) == rec["output"], "output %r" % row["output"]
        assert int(row["total_tokens"]) == rec["usage"]["total_tokens"], row
        assert num(row["latency_ms"]) == lat.get("total"), row
        assert num(row["ttft_ms"]) == lat.get("time_to_first_token"), row
        assert row["error_type"] == ((rec["error"] or {}).get("type") or ""), row
    # tricky text really went through: quotes doubled, fields with newlines quoted
    assert b'\\""hi\\""' in raw, "JSON's escaped quotes, doubled"
    assert "日本語".encode() in raw and "🚀".encode() in raw, "UTF-8 as it is"
    assert b',"gpt-4o, ""mini""",' in raw and b',"chat, ""v2""\nsecond line",' in raw, \
        "fields with commas, quotes and newlines"
    # an unquoted plain field stays unquoted
    assert raw.split(b"\r\n")[1].startswith(MON[0]["id"].encode() + b",mon,1,0,default,0.5,"), raw.split(b"\r\n")[1]
    # stdout gives the same bytes
    assert ok("export", "mon", "--format", "csv").stdout == raw


def stats_counts_tokens_latency():
    j = json.loads(ok("stats", "mon", "--json").stdout)
    recs = [x["record"] for x in MON]
    assert j["dataset"] == "mon" and j["items"] == 120, j

    def tally(vals):
        d = {}
        for v in vals:
            d[v] = d.get(v, 0) + 1
        return d
    assert j["by_class"] == tally(x["class"] for x in MON), j["by_class"]
    assert j["by_model"] == tally(r["model"] for r in recs), j["by_model"]
    day = dict(STARTS)
    assert j["by_day"] == tally(day[r["start_time"]] for r in recs), j["by_day"]
    assert j["tokens"] == {"input": sum(r["usage"]["input_tokens"] for r in recs),
                           "output": sum(r["usage"]["output_tokens"] for r in recs),
                           "total": sum(r["usage"]["total_tokens"] for r in recs)}, j["tokens"]
    errs = [r["error"]["type"] for r in recs if r["error"]]
    assert j["errors"] == {"count": len(errs), "by_type": tally(errs)}, j["errors"]

    def pct(vals, p):                                    # nearest rank
        v = sorted(vals)
        return v[max(1, (len(v) * p + 99) // 100) - 1]
    lat = [r["latency_ms"]["total"] for r in recs if "latency_ms" in r]
    ttft = [r["latency_ms"]["time_to_first_token"] for r in recs if "latency_ms" in r]
    assert j["latency_ms"] == {"count": len(lat), "p50": pct(lat, 50), "p90": pct(lat, 90),
                               "p99": pct(lat, 99)}, j["latency_ms"]
    assert j["ttft_ms"] == {"count": len(ttft), "p50": pct(ttft, 50), "p90": pct(ttft, 90),
                            "p99": pct(ttft, 99)}, j["ttft_ms"]
    # one batch only
    j2 = json.loads(ok("stats", "mon", "--json", "--batch", "3").stdout)
    assert j2["items"] == 10 and sum(j2["by_class"].values()) == 10, j2
    # the table says the same things
    text = ok("stats", "mon").stdout.decode()
    for want in ("mon", "120 items", "per class", "per model", "per day", "2026-11-25", "2026-11-26",
                 'gpt-4o, "mini"', "tokens", str(j["tokens"]["total"]), "errors: %d" % len(errs), "Rate, limited",
                 "P50", "P99"):
        assert want in text, "stats table lacks %r:\n%s" % (want, text)
    lat_line = text.split("latency")[1].splitlines()[1]
    want = [str(len(lat))] + ["%g" % pct(lat, p) for p in (50, 90, 99)]
    assert lat_line.split()[1:] == want, lat_line


def stats_and_csv_without_fields():
    j = json.loads(ok("stats", "bare", "--json").stdout)
    assert j == {"dataset": "bare", "items": 3, "by_class": {"(none)": 3}, "by_model": {"(none)": 3},
                 "by_day": {"(unknown)": 3}, "tokens": {"input": 0, "output": 0, "total": 0},
                 "errors": {"count": 0, "by_type": {}},
                 "latency_ms": {"count": 0, "p50": None, "p90": None, "p99": None},
                 "ttft_ms": {"count": 0, "p50": None, "p90": None, "p99": None}}, j
    text = ok("stats", "bare").stdout.decode()
    assert "3 items" in text and "(none)" in text, text
    rows = list(csv.reader(io.StringIO(ok("export", "bare", "--format", "csv").stdout.decode(), newline="")))
    assert rows[1:] == [[x["id"], "bare"] + [""] * (len(CSV_COLUMNS) - 2) for x in BARE], rows


def archive_dataset():
    """A dataset of bare trace records (sink --archive): the record is the item."""
    assert ok("count", "arch").stdout == b"4\n"
    assert ok("cat", "arch").stdout.split(b"\n")[:-1] == lines_of(ARCH)
    rows = list(csv.DictReader(io.StringIO(ok("export", "arch", "--format", "csv").stdout.decode(), newline="")))
    assert len(rows) == 4, rows
    for row, rec in zip(rows, ARCH):
        assert row["id"] == rec["trace_id"] and row["dataset"] == "arch", row
        assert row["batch"] == row["class"] == row["rate"] == row["selected_at"] == "", row
        assert row["name"] == rec["name"] and row["model"] == rec["model"], row
        assert json.loads(row["input"]) == rec["input"] and json.loads(row["output"]) == rec["output"], row
        assert num(row["latency_ms"]) == rec["latency_ms"]["total"], row
        assert row["error_type"] == ((rec["error"] or {}).get("type") or ""), row
    j = json.loads(ok("stats", "arch", "--json").stdout)
    assert j["items"] == 4 and j["by_model"] == {"m1": 4} and j["by_day"] == {"2026-11-26": 4}, j
    assert j["tokens"]["total"] == sum(r["usage"]["total_tokens"] for r in ARCH), j


def batches_states():
    j = json.loads(ok("batches", "mon", "--json").stdout)
    got = [(b["batch"], b["state"], b["size"], b["have"], b["partial"]) for b in j["batches"]]
    assert got == [(1, "complete", 50, 50, False), (2, "complete", 50, 50, False), (3, "complete", 10, 10, True),
                   (4, "open", 0, 10, False)], got
    rows = [l.split() for l in ok("batches", "mon").stdout.decode().splitlines()]
    assert rows[0] == ["BATCH", "STATE", "SIZE", "HAVE", "PARTIAL"], rows[0]
    assert rows[1:] == [["1", "complete", "50", "50", "no"], ["2", "complete", "50", "50", "no"],
                        ["3", "complete", "10", "10", "yes"], ["4", "open", "-", "10", "no"]], rows
    assert json.loads(ok("batches", "other", "--json").stdout) == {"dataset": "other", "batches": []}
    # the evaluator marks a batch: the CLI shows it
    if os.path.exists(T_STORE):
        subprocess.run([T_STORE, "mark-evaluated", STORE, "mon", "1"], check=True)
        j = json.loads(ok("batches", "mon", "--json").stdout)
        assert j["batches"][0]["state"] == "evaluated", j["batches"][0]
        mon = [d for d in json.loads(ok("ls", "--json").stdout)["datasets"] if d["name"] == "mon"][0]
        assert mon["evaluated"] == 1 and mon["complete"] == 2, mon


def read_pty(master, proc):
    out = b""
    while True:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:                              # EIO: the other side is closed
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    return out


def progress_only_on_a_terminal():
    out = T.workfile("big.csv")
    master, slave = pty.openpty()
    p = subprocess.Popen([DATASET, "--store", STORE, "export", "big", "--format", "csv", "-o", out],
                         stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    err = read_pty(master, p)
    os.close(master)
    assert p.wait(T.timeout(120)) == 0, err
    text = err.decode(errors="replace")
    assert "\r" in text and "12000 / 12000 items" in text and "items/s" in text, "no progress bar: %r" % text[-500:]
    with open(out, newline="", encoding="utf-8") as f:
        assert sum(1 for _ in csv.reader(f)) == 12001
    # piped: no bar, nothing but the summary line
    p = ds("export", "big", "--format", "csv", "-o", out)
    assert p.returncode == 0 and b"\r" not in p.stderr and b"items/s" not in p.stderr, p.stderr[-500:]
    assert p.stderr.decode().startswith("% exported 12000 items"), p.stderr
    # --no-progress on a terminal: none either
    master, slave = pty.openpty()
    p = subprocess.Popen([DATASET, "--store", STORE, "export", "big", "--format", "jsonl", "-o", out,
                          "--no-progress", "-q"], stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    err = read_pty(master, p)
    os.close(master)
    assert p.wait(T.timeout(120)) == 0 and err == b"", err


for case in (help_and_usage_errors, ls_table_and_json, count_each, missing_dataset, cat_items_as_stored,
             cat_since_cursor, export_jsonl_equals_cat, export_csv, stats_counts_tokens_latency,
             stats_and_csv_without_fields, archive_dataset, batches_states, progress_only_on_a_terminal):
    T.run(case)
T.exit()
