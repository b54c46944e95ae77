#!/usr/bin/env python3
"""tests/integration/t4100-judge.py - the judge client: answers, concurrency, retries, budgets, and a key that stays secret

Drives evaluator/judge.c through tests/tools/t-eval-judge against
tests/fakes/openai_server.py (an OpenAI-compatible server on loopback whose
rules script each prompt's answer: statuses, Retry-After, hangs, dropped
connections, broken bodies).  No broker needed.
"""
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tslib as T  # noqa: E402

DRIVER = os.path.join(T.BUILD, "tests", "tools", "t-eval-judge")
FAKE = os.path.join(T.TOP, "tests", "fakes", "openai_server.py")
KEY = "tsk-judge-%032x" % random.getrandbits(128)  # unique: grepped for in every output
KEY_ENV = "TS_T4100_KEY"
DEFAULT = '{"score":0.5,"reason":"no rule matched"}'
OUTPUTS = []  # every stdout/stderr the driver wrote, for the key check


class Fake:
    def __init__(self, *args):
        self.errlog = T.workfile("fake-openai-%d.log" % random.getrandbits(32))
        self.err = open(self.errlog, "w")
        env = dict(os.environ, **{KEY_ENV: KEY})
        self.proc = subprocess.Popen([sys.executable, FAKE, "--port", "0", "--key-env", KEY_ENV] + list(args),
                                     stdout=subprocess.PIPE, stderr=self.err, env=env, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening on 127.0.0.1:"), "fake server said %r" % line
        self.port = int(line.strip().rsplit(":", 1)[1])
        self.url = "http://127.0.0.1:%d/v1" % self.port

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=data, method=method)
        with urllib.request.urlopen(req, timeout=T.timeout(30)) as r:
            return json.loads(r.read() or b"{}")

    def reset(self, rules=()):
        self.call("POST", "/_control/reset", {})
        self.call("POST", "/_control/rules", {"rules": list(rules)})

    def log(self):
        return self.call("GET", "/_control/log")

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.err.close()
        with open(self.errlog) as f:
            return f.read()


FAKE_SRV = Fake()


def prompt(text, system="You are a strict judge. Answer in JSON."):
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
    return json.dumps(msgs)


def words(s):
    return len(s.split())


def drive(prompts, *args, key=KEY, url=None, expect_rc=0):
    """Runs t-eval-judge over prompts (lines); returns (answers by index, stats lines, stderr)."""
    env = dict(os.environ)
    env.pop("TS_JUDGE_KEY", None)
    if key is not None:
        env["TS_JUDGE_KEY"] = key
    argv = [DRIVER, "-u", url or FAKE_SRV.url, "-m", "judge-test-model", "--backoff-ms", "20",
            "--backoff-max-ms", "200"] + [str(a) for a in args]
    data = "".join(p + "\n" for p in prompts)
    p = subprocess.run(argv, input=data, capture_output=True, text=True, env=env, timeout=T.timeout(120))
    OUTPUTS.append(p.stdout + p.stderr)
    assert KEY not in p.stdout and KEY not in p.stderr, "the API key appeared in the driver's output"
    T.note("t-eval-judge %s: exit %d\n%s\n%s" % (" ".join(str(a) for a in args), p.returncode,
                                                  p.stdout[-1500:], p.stderr[-1500:]))
    assert p.returncode == expect_rc, "t-eval-judge exit %d, expected %d: %s" % (
        p.returncode, expect_rc, p.stderr[-2000:])
    answers, stats = {}, []
    for line in p.stdout.splitlines():
        v = json.loads(line)
        if "stats" in v:
            stats.append(v)
        else:
            assert v["index"] not in answers, "prompt %d answered twice" % v["index"]
            answers[v["index"]] = v
    return answers, stats, p.stderr


def chats(log):
    return [e for e in log["requests"] if e["path"].endswith("/chat/completions")]


# ---- cases ---------------------------------------------------------------------

def answers_come_back_with_content_and_tokens():
    FAKE_SRV.reset([{"match": "alpha", "content": '{"score":0.9,"reason":"looks right to me"}'},
                    {"match": "beta", "content": "plain words here"}])
    ps = [prompt("judge alpha please"), prompt("now beta", system=None), prompt("gamma one two three")]
    ans, stats, _ = drive(ps, "--temperature", "0.25", "--max-tokens", "77")
    assert len(ans) == 3 and all(a["ok"] and a["attempts"] == 1 and not a["error"] for a in ans.values()), ans
    assert ans[0]["content"] == '{"score":0.9,"reason":"looks right to me"}'
    assert ans[1]["content"] == "plain words here"
    assert ans[2]["content"] == DEFAULT
    for i, p in enumerate(ps):
        want_pt = sum(words(m["content"]) for m in json.loads(p))
        assert ans[i]["prompt_tokens"] == want_pt, (i, ans[i], want_pt)
        assert ans[i]["completion_tokens"] == words(ans[i]["content"]), ans[i]
        assert ans[i]["latency_ms"] > 0 and not ans[i]["budget"]
    st = stats[0]["stats"]
    assert st["requests"] == 3 and st["attempts"] == 3 and st["retries"] == 0 and st["failures"] == 0, st
    assert st["prompt_tokens"] == sum(a["prompt_tokens"] for a in ans.values())
    assert st["run_tokens"] == st["prompt_tokens"] + st["completion_tokens"], st
    log = chats(FAKE_SRV.log())
    assert len(log) == 3
    for e in log:
        assert e["path"] == "/v1/chat/completions" and e["auth"] == "match", e
        assert e["content_type"] == "application/json", e
        assert e["body"] == {"model": "judge-test-model", "temperature": 0.25, "max_tokens": 77}, e["body"]
    assert sorted(json.dumps(e["messages"]) for e in log) == sorted(json.dumps(json.loads(p)) for p in ps)


def json_mode_no_key_and_settings_left_out():
    FAKE_SRV.reset()
    ans, _, _ = drive([prompt("x")], "--json-mode", key=None)
    assert ans[0]["ok"], ans
    e = chats(FAKE_SRV.log())[0]
    assert e["body"]["response_format"] == {"type": "json_object"}, e["body"]
    assert e["auth"] == "none", e
    FAKE_SRV.reset()
    ans, _, _ = drive([prompt("x")], "--temperature", "-1", "--max-tokens", "0")
    assert ans[0]["ok"], ans
    e = chats(FAKE_SRV.log())[0]
    assert e["body"] == {"model": "judge-test-model"}, "temperature -1 and max_tokens 0 were sent: %r" % e["body"]


def inflight_bounds_concurrency_and_connections_are_reused():
    FAKE_SRV.reset([{"match": "", "delay_ms": 100}])
    ps = [prompt("item %d of the batch" % i) for i in range(32)]
    ans, stats, _ = drive(ps, "-i", "8")
    assert len(ans) == 32 and all(a["ok"] and a["attempts"] == 1 for a in ans.values()), ans
    log = FAKE_SRV.log()
    T.note("max concurrent %d, connections %d, elapsed %.0f ms" % (
        log["max_concurrent"], log["connections"], stats[0]["elapsed_ms"]))
    assert len(chats(log)) == 32
    assert log["max_concurrent"] <= 8, "%d requests at once with inflight 8" % log["max_concurrent"]
    assert log["max_concurrent"] >= 4, "only %d at once: requests were not concurrent" % log["max_concurrent"]
    assert log["connections"] <= 8, "%d connections for 32 requests at inflight 8" % log["connections"]
    assert stats[0]["elapsed_ms"] >= 390, "32 requests of 100 ms at 8 at once took %.0f ms" % stats[0]["elapsed_ms"]


def retry_after_seconds_is_honoured():
    FAKE_SRV.reset([{"match": "slow down", "status": 429, "retry_after": "1", "times": 1}])
    ans, stats, _ = drive([prompt("please slow down")], "--backoff-max-ms", "5000")
    assert ans[0]["ok"] and ans[0]["attempts"] == 2, ans
    assert stats[0]["stats"]["retries"] == 1
    log = chats(FAKE_SRV.log())
    assert [e["outcome"] for e in log] == [429, 200], log
    gap = log[1]["t"] - log[0]["done"]
    T.note("waited %.3f s after a 429 with Retry-After: 1" % gap)
    assert gap >= 0.98, "retried %.3f s after Retry-After: 1" % gap
    assert gap <= 1.0 + T.timeout(1), "waited %.3f s" % gap
    assert ans[0]["latency_ms"] >= 1000, ans[0]


def retry_after_date_is_honoured_and_capped():
    FAKE_SRV.reset([{"match": "dated", "status": 503, "retry_after_date": 2, "times": 1},
                    {"match": "far", "status": 429, "retry_after": "30", "times": 1}])
    ans, _, _ = drive([prompt("dated limit")], "--backoff-max-ms", "5000")
    assert ans[0]["ok"] and ans[0]["attempts"] == 2, ans
    log = chats(FAKE_SRV.log())
    gap = log[1]["t"] - log[0]["done"]
    T.note("waited %.3f s after Retry-After: <date 2 s ahead>" % gap)
    assert 0.9 <= gap <= 2.1 + T.timeout(1), gap   # the date has whole seconds
    FAKE_SRV.reset([{"match": "far", "status": 429, "retry_after": "30", "times": 1}])
    ans, _, _ = drive([prompt("far away")], "--backoff-max-ms", "300")
    assert ans[0]["ok"] and ans[0]["attempts"] == 2, ans
    log = chats(FAKE_SRV.log())
    gap = log[1]["t"] - log[0]["done"]
    T.note("waited %.3f s after Retry-After: 30 with backoff.max.ms 300" % gap)
    assert 0.28 <= gap <= 0.3 + T.timeout(1), gap


def server_errors_are_retried_until_success():
    FAKE_SRV.reset([{"match": "flaky", "status": 500, "times": 2}])
    ans, stats, _ = drive([prompt("flaky one"), prompt("steady one")])
    assert ans[0]["ok"] and ans[0]["attempts"] == 3, ans[0]
    assert ans[1]["ok"] and ans[1]["attempts"] == 1, ans[1]
    assert stats[0]["stats"]["attempts"] == 4 and stats[0]["stats"]["retries"] == 2, stats
    assert [e["outcome"] for e in chats(FAKE_SRV.log()) if "flaky" in e["messages"][-1]["content"]] == [500, 500, 200]


def server_errors_give_up_after_the_retries():
    FAKE_SRV.reset([{"match": "down", "status": 502}])
    ans, _, _ = drive([prompt("service down")], "-r", "3")
    a = ans[0]
    assert not a["ok"] and a["attempts"] == 4 and not a["budget"], a
    assert a["error"].startswith("HTTP 502 after 4 attempts: fake error 502"), a["error"]
    assert len(chats(FAKE_SRV.log())) == 4


def a_hanging_server_times_out_then_retries():
    FAKE_SRV.reset([{"match": "hang", "action": "hang"}])
    t0 = time.monotonic()
    ans, _, _ = drive([prompt("hang forever")], "-t", "300", "-r", "2")
    took = time.monotonic() - t0
    a = ans[0]
    assert not a["ok"] and a["attempts"] == 3, a
    assert a["error"].startswith("timeout after 300 ms") and "3 attempts" in a["error"], a["error"]
    assert a["latency_ms"] >= 900, a
    assert took < T.timeout(10), took
    assert [e["outcome"] for e in chats(FAKE_SRV.log())] == ["hang"] * 3


def a_dropped_connection_is_retried():
    FAKE_SRV.reset([{"match": "drop me", "action": "drop", "times": 2}, {"match": "always", "action": "drop"}])
    ans, _, _ = drive([prompt("drop me twice")])
    assert ans[0]["ok"] and ans[0]["attempts"] == 3, ans
    assert [e["outcome"] for e in chats(FAKE_SRV.log())] == ["drop", "drop", 200]
    ans, _, _ = drive([prompt("always drops")], "-r", "1")
    assert not ans[0]["ok"] and ans[0]["attempts"] == 2, ans
    assert "empty reply" in ans[0]["error"], ans[0]["error"]


def a_broken_answer_fails_without_retry():
    FAKE_SRV.reset([{"match": "broken", "action": "broken"}, {"match": "notchat", "action": "notchat"},
                    {"match": "nullcontent", "action": "nullcontent"}])
    ans, stats, _ = drive([prompt("broken"), prompt("notchat"), prompt("nullcontent")])
    for i in range(3):
        assert not ans[i]["ok"] and ans[i]["attempts"] == 1, ans[i]
        assert ans[i]["error"].startswith("answer is not a chat completion: "), ans[i]["error"]
    assert "not JSON" in ans[0]["error"], ans[0]["error"]
    assert "choices" in ans[1]["error"], ans[1]["error"]
    assert "content is null" in ans[2]["error"], ans[2]["error"]
    assert stats[0]["stats"]["attempts"] == 3 and stats[0]["stats"]["retries"] == 0
    assert len(chats(FAKE_SRV.log())) == 3


def client_errors_fail_at_once():
    FAKE_SRV.reset([{"match": "auth", "status": 401}, {"match": "bad", "status": 400, "body": "bad\x01 request\n\ttext"}])
    ans, _, _ = drive([prompt("auth please"), prompt("bad one")], "-r", "4")
    assert not ans[0]["ok"] and ans[0]["attempts"] == 1, ans[0]
    assert ans[0]["error"] == "HTTP 401: fake error 401", ans[0]["error"]
    assert ans[1]["error"] == "HTTP 400: bad request text", ans[1]["error"]
    assert len(chats(FAKE_SRV.log())) == 2


def a_long_error_body_is_cut():
    FAKE_SRV.reset([{"match": "long", "status": 500, "body": "é" * 1000}])
    ans, _, _ = drive([prompt("long body")], "-r", "0")
    e = ans[0]["error"]
    assert e.startswith("HTTP 500: éé") and e.endswith("...") and len(e.encode()) < 256, e


def a_refused_connection_is_retried():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nobody listens there now
    ans, _, _ = drive([prompt("anyone?")], "-r", "2", url="http://127.0.0.1:%d/v1" % port)
    a = ans[0]
    assert not a["ok"] and a["attempts"] == 3, a
    assert "connect" in a["error"].lower() and "(3 attempts)" in a["error"], a["error"]


def the_request_budget_stops_at_n_attempts():
    FAKE_SRV.reset()
    ps = [prompt("budget item %d" % i) for i in range(20)]
    ans, stats, _ = drive(ps, "-i", "4", "--budget-requests", "10", "--rerun")
    assert len(ans) == 21, sorted(ans)
    ok = [a for i, a in ans.items() if a["ok"] and i < 20]
    spent = [a for a in ans.values() if a["budget"]]
    assert len(ok) == 10 and len(spent) == 10, ans
    for a in spent:
        assert not a["ok"] and a["attempts"] == 0 and a["error"] == "budget spent: 10 requests of 10", a
    st = stats[0]
    assert st["stats"]["attempts"] == 10 and st["stats"]["run_attempts"] == 10, st
    assert st["spent"] == 1 and st["submit_when_spent"] == -1, st
    assert ans[20]["ok"], "after judge_budget_reset: %r" % ans[20]
    assert stats[1]["stats"]["run_attempts"] == 1 and stats[1]["stats"]["attempts"] == 11, stats[1]
    assert len(chats(FAKE_SRV.log())) == 11


def a_retry_waiting_when_the_budget_runs_out_reports_it():
    FAKE_SRV.reset([{"match": "flaky", "status": 503}])
    ans, _, _ = drive([prompt("flaky")], "-r", "5", "--budget-requests", "2")
    a = ans[0]
    assert not a["ok"] and a["budget"] and a["attempts"] == 2, a
    assert a["error"].startswith("budget spent: 2 requests of 2; after 2 attempts, the last: HTTP 503"), a["error"]
    assert len(chats(FAKE_SRV.log())) == 2


def the_token_budget_stops_after_enough_tokens():
    FAKE_SRV.reset()
    ps = [prompt("one two three four five", system=None) for _ in range(6)]
    per = 5 + words(DEFAULT)   # prompt words + answer words
    budget = 2 * per + 1        # spent by the third answer
    ans, stats, _ = drive(ps, "-i", "1", "--budget-tokens", budget)
    ok = [a for a in ans.values() if a["ok"]]
    spent = [a for a in ans.values() if a["budget"]]
    assert len(ok) == 3 and len(spent) == 3, ans
    want = "budget spent: %d tokens of %d" % (3 * per, budget)
    assert all(a["error"] == want for a in spent), (want, spent)
    assert stats[0]["stats"]["run_tokens"] == 3 * per and stats[0]["spent"] == 1, stats
    assert len(chats(FAKE_SRV.log())) == 3


def invalid_messages_and_settings_are_refused():
    FAKE_SRV.reset()
    ans, stats, _ = drive(["not json", '{"role":"user"}', prompt("fine")])
    assert ans[0]["error"] == "messages: not valid JSON" and ans[0]["attempts"] == 0, ans[0]
    assert ans[1]["error"] == "messages: expected a JSON array", ans[1]
    assert ans[2]["ok"]
    assert len(chats(FAKE_SRV.log())) == 1
    for args, want in ((["-i", "0"], "judge inflight 0: expected 1 to 1024"),
                       (["-i", "2000"], "judge inflight 2000: expected 1 to 1024"),
                       (["--backoff-max-ms", "1", "--backoff-ms", "50"], "judge backoff.max.ms 1: expected 50"),
                       (["-t", "0"], "judge timeout.ms 0: expected 1"),
                       (["--temperature", "2.5"], "judge temperature 2.5: expected 0 to 2")):
        _, _, err = drive([prompt("x")], *args, expect_rc=1)
        assert want in err, (args, err)
    _, _, err = drive([prompt("x")], url="ftp://example.invalid/v1", expect_rc=1)
    assert "judge url 'ftp://example.invalid/v1': expected http:// or https://" in err, err
    ans, _, err = drive([prompt("x")], "--debug", key=None,
                        url=FAKE_SRV.url.replace("http://", "http://user:pw-in-url@"))
    assert ans[0]["ok"] and "% judge: POST " + FAKE_SRV.url in err and "pw-in-url" not in err, err
    _, _, err = drive([prompt("x")], key="bad\nkey", expect_rc=1)
    assert "judge api key holds a line break" in err, err


def the_key_never_appears_with_debug_on():
    FAKE_SRV.reset([{"match": "auth", "status": 401},
                    {"match": "echo", "status": 500, "echo_auth": True},
                    {"match": "message quoting", "status": 500, "body": json.dumps({"error": {"message": "got " + KEY}})},
                    {"match": "half", "status": 500, "body": "partial key " + KEY[:20] + " end"},
                    {"match": "ok"}])
    ans, _, err = drive([prompt("auth"), prompt("echo the header"), prompt("message quoting the key"),
                         prompt("half a key"), prompt("ok")], "--debug", "-r", "1")
    lines = [l for l in err.splitlines() if l.startswith("% judge: POST ")]
    assert len(lines) == 8, err   # 1 + 2 + 2 + 2 + 1 attempts
    assert all(FAKE_SRV.url + "/chat/completions attempt" in l for l in lines), lines
    assert "HTTP 401" in err and "HTTP 200" in err
    assert "uthorization" not in err and "Bearer" not in err, "a header in the debug lines: %s" % err
    assert ans[0]["error"] == "HTTP 401: fake error 401", ans[0]
    e1 = ans[1]["error"]
    assert e1.startswith("HTTP 500 after 2 attempts: upstream rejected the request: header Authorization: Bearer ***"), e1
    assert ans[2]["error"] == "HTTP 500 after 2 attempts: got ***", ans[2]
    assert KEY[:20] not in ans[3]["error"] and "***" in ans[3]["error"], ans[3]
    assert ans[4]["ok"]
    assert all(e["auth"] == "match" for e in chats(FAKE_SRV.log()))
    # a wrong key is refused, and neither key shows
    other = Fake("--require-key", "--quiet")
    try:
        ans, _, err = drive([prompt("x")], "--debug", key=KEY + "-wrong", url=other.url)
        assert KEY + "-wrong" not in json.dumps(ans) + err
        assert ans[0]["error"] == "HTTP 401: Incorrect API key provided", ans[0]
    finally:
        out = other.stop()
    assert KEY not in out


def the_key_never_appears_in_any_output():
    assert OUTPUTS, "no driver ran"
    for out in OUTPUTS:
        assert KEY not in out
    log = json.dumps(FAKE_SRV.log())
    assert KEY not in log, "the fake's log holds the key"
    T.note("checked %d driver outputs for the key" % len(OUTPUTS))


try:
    for case in (answers_come_back_with_content_and_tokens,
                 json_mode_no_key_and_settings_left_out,
                 inflight_bounds_concurrency_and_connections_are_reused,
                 retry_after_seconds_is_honoured,
                 retry_after_date_is_honoured_and_capped,
                 server_errors_are_retried_until_success,
                 server_errors_give_up_after_the_retries,
                 a_hanging_server_times_out_then_retries,
                 a_dropped_connection_is_retried,
                 a_broken_answer_fails_without_retry,
                 client_errors_fail_at_once,
                 a_long_error_body_is_cut,
                 a_refused_connection_is_retried,
                 the_request_budget_stops_at_n_attempts,
                 a_retry_waiting_when_the_budget_runs_out_reports_it,
                 the_token_budget_stops_after_enough_tokens,
                 invalid_messages_and_settings_are_refused,
                 the_key_never_appears_with_debug_on,
                 the_key_never_appears_in_any_output):
        T.run(case)
finally:
    out = FAKE_SRV.stop()
    if KEY in out:
        print("not ok - the_fake_server_never_printed_the_key")
        T._failed = True
T.exit()
