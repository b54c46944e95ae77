#!/usr/bin/env python3
"""tests/integration/t3201-sink-opik.py - tracesift-sink --target opik: items land once through faults, offsets follow"""
import json
import os
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tslib as T  # noqa: E402

FAKE = os.path.join(T.TOP, "tests", "fakes", "opik_server.py")
KEY_ENV = "T3201_OPIK_KEY"
KEY = "opik-key-t3201-%d-never-printed" % os.getpid()
WORKSPACE = "t3201"


class Fake:
    def __init__(self):
        env = dict(os.environ, **{KEY_ENV: KEY})
        self.proc = subprocess.Popen([sys.executable, FAKE, "--api-key-env", KEY_ENV, "--workspace", WORKSPACE],
                                     stdout=subprocess.PIPE, env=env)
        line = self.proc.stdout.readline().decode()
        self.port = int(line.strip().rsplit(":", 1)[1])
        self.url = "http://127.0.0.1:%d/api" % self.port

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=data, method=method,
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=T.timeout(10)) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    def items(self, dataset):
        return self.call("GET", "/_test/items?dataset=" + dataset)["items"]

    def close(self):
        self.proc.kill()
        self.proc.wait()


def items_land_once_through_faults():
    fake = Fake()
    try:
        topic = T.create_topic(T.topic("sopik"), 2)
        dlq = T.create_topic(T.topic("sopik-dlq"), 1)
        recs = T.records(300, seed=3201)
        msgs = T.sink_messages(recs, "opik-ds", batch_size=50)
        T.produce_msgs(topic, [("opik-ds", json.dumps(m, separators=(",", ":"))) for m in msgs])
        fake.call("POST", "/_test/faults", {"sequence": ["429:1", "500", "reset", "ok", "503", "ok"]})
        store = T.workfile("store-opik")
        s = T.Sink(store, topic, dlq, extra=["--target", "opik", "--opik-url", fake.url,
                                             "--opik-workspace", WORKSPACE, "--opik-api-key-env", KEY_ENV],
                   name="opik").start(env={KEY_ENV: KEY})
        ends = {p: o for p, o in T.end_offsets(topic, 2).items() if o}
        T.wait_until("the store's offsets to reach the topic's end",
                     lambda: T.store_offsets(store, topic) == ends or not s.alive(), 120)
        assert s.stop() == 0, s.stderr()[-2000:]
        got = fake.items("opik-ds")
        ids = [i["data"]["tracesift"]["item_id"] for i in got]
        T.note("%d items in the fake Opik, %d distinct" % (len(ids), len(set(ids))))
        assert sorted(ids) == sorted(r["trace_id"] for r in recs), "not every item landed exactly once"
        assert KEY not in s.stderr(), "the API key was printed"
        # replaying everything (a new store) upserts: the count stays
        store2 = T.workfile("store-opik2")
        s2 = T.Sink(store2, topic, dlq, extra=["--target", "opik", "--opik-url", fake.url,
                                               "--opik-workspace", WORKSPACE, "--opik-api-key-env", KEY_ENV],
                    name="opik2").start(env={KEY_ENV: KEY})
        T.wait_until("the replay", lambda: T.store_offsets(store2, topic) == ends or not s2.alive(), 120)
        assert s2.stop() == 0, s2.stderr()[-2000:]
        assert len(fake.items("opik-ds")) == 300, "a replay duplicated items"
        assert not os.path.exists(os.path.join(store, "datasets", "opik-ds")), "items were also written to the store"
    finally:
        fake.close()


def wrong_key_stops_without_advancing():
    fake = Fake()
    try:
        topic = T.create_topic(T.topic("sopikk"), 1)
        dlq = T.create_topic(T.topic("sopikk-dlq"), 1)
        recs = T.records(10, seed=3202)
        T.produce_msgs(topic, [("k", json.dumps(m, separators=(",", ":"))) for m in T.sink_messages(recs, "k")])
        store = T.workfile("store-opikk")
        s = T.Sink(store, topic, dlq, extra=["--target", "opik", "--opik-url", fake.url,
                                             "--opik-workspace", WORKSPACE, "--opik-api-key-env", KEY_ENV],
                   name="opikk").start(env={KEY_ENV: "wrong-" + KEY})
        T.wait_until("the sink to stop", lambda: not s.alive(), 60)
        assert s.proc.returncode == 1, "exit %s" % s.proc.returncode
        assert T.store_offsets(store, topic).get(0, 0) == 0, "offsets advanced past items Opik refused"
        assert KEY not in s.stderr() and "401" in s.stderr(), s.stderr()[-1500:]
    finally:
        fake.close()


T.run(items_land_once_through_faults)
T.run(wrong_key_stops_without_advancing)
T.exit()
