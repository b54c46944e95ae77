"""tests/evalib.py - helpers for the evaluator's tests: a store filled by the real sink, the
evaluator as a process, the fake judge (tests/fakes/openai_server.py) and a webhook receiver."""
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import tslib
from tslib import BIN, BROKERS, TOP, timeout, wait_until, workfile


def rag_records(n, seed=1, first=0, answer=None, context=True):
    """n records shaped like loadgen's: question, answer, context passages, latency, usage.
    answer: a function i -> answer text (default 'answer about topic i')."""
    recs = tslib.records(n, seed=seed, first=first)
    for k, rec in enumerate(recs):
        i = first + k
        rec["input"] = {"question": "question number %d about the widget" % i}
        rec["output"] = {"answer": answer(i) if answer else
                         "The widget %d resets when you hold the button." % i}
        if context:
            rec["output"]["context"] = ["Hold the button for ten seconds and the widget %d resets." % i,
                                        "The widget ships with a charger."]
        rec["error"] = None
    return recs


def fill_store(store, recs, dataset="monitoring", batch_size=50, partial_tail=False):
    """Puts recs into store as the sampler's items in batches, through the real sink."""
    t = tslib.create_topic(tslib.topic("evmon"), 1)
    dlq = tslib.create_topic(tslib.topic("evdlq"), 1)
    msgs = tslib.sink_messages(recs, dataset, batch_size=batch_size, partial_tail=partial_tail)
    tslib.produce_msgs(t, [(m.get("id") or m.get("dataset"), tslib.dumps(m)) for m in msgs])
    sink = tslib.Sink(store, t, dlq).start()
    sink.wait_consumed(len(msgs))
    assert sink.stop() == 0, sink.stderr()[-2000:]
    return t


def add_to_store(store, recs, topic_name, dataset="monitoring", batch_size=50, first_batch=1):
    """More batches into the same store (the sink resumes from the store's offsets)."""
    msgs = tslib.sink_messages(recs, dataset, batch_size=batch_size, partial_tail=False)
    for m in msgs:
        if "batch" in m and m.get("type") in ("item", "batch"):
            m["batch"] += first_batch - 1
    tslib.produce_msgs(topic_name, [(m.get("id") or m.get("dataset"), tslib.dumps(m)) for m in msgs])
    dlq = tslib.create_topic(tslib.topic("evdlq"), 1)
    sink = tslib.Sink(store, topic_name, dlq).start()
    sink.wait_consumed(len(msgs))
    assert sink.stop() == 0, sink.stderr()[-2000:]


class Judge:
    """The fake OpenAI-compatible server, on a free port."""

    def __init__(self, rules=(), delay_ms=0, key_env=None, require_key=False, default=None, env=None, port=0):
        args = [sys.executable, os.path.join(TOP, "tests", "fakes", "openai_server.py"), "--port", str(port),
                "--quiet", "--delay-ms", str(delay_ms)]
        if key_env:
            args += ["--key-env", key_env]
        if require_key:
            args += ["--require-key"]
        if default is not None:
            args += ["--default-content", default]
        self.errlog = open(workfile("judge-%d.log" % random.randrange(1 << 30)), "wb")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.errlog,
                                     env=dict(os.environ, **(env or {})))
        line = self.proc.stdout.readline().decode()
        assert "listening on" in line, "fake judge did not start: %r" % line
        self.port = int(line.strip().rsplit(":", 1)[1])
        self.url = "http://127.0.0.1:%d/v1" % self.port
        if rules:
            self.rules(rules)

    def _call(self, path, body=None):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path),
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"{}")

    def rules(self, rules):
        self._call("/_control/rules", {"rules": list(rules)})

    def log(self):
        return self._call("/_control/log")

    def close(self):
        self.proc.kill()
        self.proc.wait()
        self.errlog.close()


class Webhook:
    """A local webhook receiver: every POST body is kept; status sets the answer."""

    def __init__(self, status=200):
        received = self.received = []
        hook = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                received.append(json.loads(self.rfile.read(n) or b"null"))
                self.send_response(hook.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        self.status = status
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/hooks/T000/B000/secretpath" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Evaluator(tslib.Sampler):
    """tracesift-evaluator: commands run to their end (cmd), or the service as a process
    (start; stop, kill9, alive and stderr as tslib's processes have them)."""

    def __init__(self, store, args=(), conf=None, env=None, name="evaluator"):
        self.store = store
        self.args = ["--store", store] + list(args)
        if conf is not None:
            self.conf = workfile("%s-%d.conf" % (name, random.randrange(1 << 30)))
            with open(self.conf, "w") as f:
                f.write(conf)
            self.args = ["-c", self.conf] + self.args
        self.env = dict(os.environ, **(env or {}))
        self.name = name
        self.proc = None
        self.starts = 0

    def cmd(self, *args, check=True, env=None):
        """Runs a command (once, runs, show...) to its end: CompletedProcess (text)."""
        p = subprocess.run([os.path.join(BIN, "tracesift-evaluator")] + list(args) + self.args,
                           capture_output=True, text=True, timeout=timeout(300),
                           env=dict(self.env, **(env or {})))
        if check and p.returncode != 0:
            raise AssertionError("tracesift-evaluator %s: exit %d: %s" % (" ".join(args), p.returncode,
                                                                         p.stderr[-3000:]))
        return p

    def start(self):
        self.starts += 1
        os.makedirs(tslib.LOGS, exist_ok=True)
        base = os.path.join(tslib.LOGS, "%s-%s-%d" % (os.path.basename(sys.argv[0]).split(".")[0],
                                                      self.name, self.starts))
        self.out_path, self.log = base + ".out", base + ".log"
        out, err = open(self.out_path, "wb"), open(self.log, "wb")
        self.proc = subprocess.Popen([os.path.join(BIN, "tracesift-evaluator"), "watch"] + self.args,
                                     stdout=out, stderr=err, env=self.env)
        out.close()
        err.close()
        tslib.Sampler.running.append(self)
        return self


def runs(store):
    """{run id: summary dict or None (unfinished)}."""
    out = {}
    d = os.path.join(store, "evaluations", "runs")
    for rid in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        p = os.path.join(d, rid, "summary.json")
        out[rid] = json.load(open(p)) if os.path.exists(p) else None
    return out


def scores(store, rid):
    with open(os.path.join(store, "evaluations", "runs", rid, "scores.jsonl")) as f:
        return [json.loads(l) for l in f if l.strip()]


def evaluated(store, dataset="monitoring"):
    p = os.path.join(store, "datasets", dataset, "evaluated")
    if not os.path.exists(p):
        return []
    return [int(l) for l in open(p) if l.strip()]


def run(case):
    tslib.run(case)       # it stops every process the case left running
