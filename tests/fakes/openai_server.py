#!/usr/bin/env python3
"""tests/fakes/openai_server.py - a local OpenAI-compatible chat-completions server for tests, with scripted answers and faults

usage: openai_server.py [--port N] [--rules FILE] [--delay-ms MS] [--key-env NAME]
                        [--require-key] [--default-content TEXT] [--quiet]

Listens on 127.0.0.1 (a free port with --port 0, the default) and prints one
line on stdout, "listening on 127.0.0.1:PORT", then serves until killed.
HTTP/1.1 with keep-alive, one thread per connection (ThreadingHTTPServer), so
a client that reuses connections opens fewer than it sends requests.  Logs a
line per request on stderr unless --quiet.

POST .../chat/completions (any prefix, e.g. /v1/chat/completions) with
{"model", "messages": [{"role", "content"}...], ...} answers as the first
rule that matches says, else with --default-content (default
'{"score":0.5,"reason":"no rule matched"}').  A chat completion's usage is
deterministic: prompt_tokens = the words (str.split) of every message's
content, completion_tokens = the words of the answer's content.

A rule (a JSON object; a list of them in --rules FILE or POST /_control/rules):
  "match": "text"     a substring of the last user message (required; "" matches all)
  "in": "any"         match any message's content instead
  "content": "text"   the answer's message content (default: --default-content)
  "delay_ms": N       wait before answering (or before failing)
  "status": N         answer with this status instead of a completion (body:
                      {"error":{"message":...}} or "body")
  "retry_after": "1"  with "status": a Retry-After header (seconds or an HTTP date);
                      "retry_after_date": N sends an HTTP date N s ahead
  "body": "text"      with "status": this body as it is (text/plain)
  "echo_auth": true   with "status": the body quotes the request's Authorization
                      header (a client must not show it)
  "action": "hang"    never answer, until the client closes the connection
            "drop"    close the connection without answering
            "broken"  200 with a body that is not JSON
            "notchat" 200 with JSON that is not a chat completion
            "nullcontent" 200 with a chat completion whose content is null
  "times": N          the status/action applies to the first N requests of each
                      distinct prompt (the last user message) that match; later
                      ones are answered with "content" ("fail N times then answer")
  "usage": false      no usage object in the answer

Control endpoints (never faulted, not logged):
  POST /_control/rules {"rules": [...]}  replaces the rules and their counters
  POST /_control/reset                   forgets the log, counters and connection count
  GET  /_control/log   {"requests": [{"path", "method", "auth" ("none", "match" when the
                        header is "Bearer <the key of --key-env>", "mismatch"), "model",
                        "messages", "body" (the request without messages), "t" (monotonic
                        s at arrival), "done" (at the response or the close), "conn"
                        (connection number), "concurrent" (requests being served at arrival,
                        this one included), "outcome" (status or action)}...],
                        "connections": N (connections that carried a chat request),
                        "max_concurrent": N}
The key itself is never logged, printed or answered (echo_auth is the one
deliberate exception, for testing clients).  --require-key: requests whose
Authorization is not "Bearer <key>" get 401 (a message that does not quote it).
"""
import argparse
import email.utils
import json
import os
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_CONTENT = '{"score":0.5,"reason":"no rule matched"}'


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []
        self.reset()

    def reset(self):
        self.log = []
        self.counters = {}
        self.conns = 0
        self.gen = getattr(self, "gen", 0) + 1
        self.active = 0
        self.max_active = 0


STATE = State()
ARGS = None
KEY = None


def words(text):
    return len(text.split()) if isinstance(text, str) else 0


def msg_text(m):
    c = m.get("content") if isinstance(m, dict) else None
    if isinstance(c, list):  # content parts
        return " ".join(p.get("text", "") for p in c if isinstance(p, dict))
    return c if isinstance(c, str) else ""


def last_user(messages):
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            return msg_text(m)
    return msg_text(messages[-1]) if messages else ""


def find_rule(messages):
    """(index, rule) of the first matching rule, or (None, None)."""
    last = last_user(messages)
    for i, r in enumerate(STATE.rules):
        pat = r.get("match", "")
        if r.get("in") == "any":
            if any(pat in msg_text(m) for m in messages):
                return i, r
        elif pat in last:
            return i, r
    return None, None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-openai/1"

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn_no = None  # numbered at its first chat request

    def log_message(self, fmt, *args):
        if not ARGS.quiet:
            sys.stderr.write("fake-openai: conn %s: %s\n" % (self.conn_no or "-", fmt % args))

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send(self, status, data, ctype="application/json", headers=None):
        if isinstance(data, (dict, list)):
            data = json.dumps(data).encode()
        elif isinstance(data, str):
            data = data.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    # ---- control ----
    def control(self, method):
        if method == "GET" and self.path == "/_control/log":
            with STATE.lock:
                out = {"requests": list(STATE.log), "connections": STATE.conns,
                       "max_concurrent": STATE.max_active}
            return self.send(200, out)
        if method == "POST" and self.path == "/_control/rules":
            try:
                rules = json.loads(self.body() or b"{}").get("rules", [])
                assert isinstance(rules, list) and all(isinstance(r, dict) for r in rules)
            except (ValueError, AssertionError, AttributeError):
                return self.send(400, {"error": {"message": "expected {\"rules\": [objects]}"}})
            with STATE.lock:
                STATE.rules = rules
                STATE.counters = {}
            return self.send(200, {"rules": len(rules)})
        if method == "POST" and self.path == "/_control/reset":
            self.body()
            with STATE.lock:
                STATE.reset()
            return self.send(200, {})
        return self.send(404, {"error": {"message": "no such control endpoint"}})

    def do_GET(self):
        if self.path.startswith("/_control/"):
            return self.control("GET")
        self.send(404, {"error": {"message": "not found: POST .../chat/completions"}})

    def do_POST(self):
        if self.path.startswith("/_control/"):
            return self.control("POST")
        raw = self.body()
        if not self.path.endswith("/chat/completions"):
            return self.send(404, {"error": {"message": "not found: POST .../chat/completions"}})
        t = time.monotonic()
        auth = self.headers.get("Authorization")
        auth_state = "none" if auth is None else ("match" if KEY and auth == "Bearer " + KEY else "mismatch")
        try:
            req = json.loads(raw)
            messages = req["messages"]
            assert isinstance(messages, list)
        except (ValueError, KeyError, TypeError, AssertionError):
            req, messages = None, None
        with STATE.lock:
            if self.conn_no is None or self.conn_gen != STATE.gen:
                STATE.conns += 1
                self.conn_no, self.conn_gen = STATE.conns, STATE.gen
            STATE.active += 1
            STATE.max_active = max(STATE.max_active, STATE.active)
            entry = {"path": self.path, "method": "POST", "auth": auth_state, "t": t, "conn": self.conn_no,
                     "concurrent": STATE.active, "model": req.get("model") if isinstance(req, dict) else None,
                     "messages": messages,
                     "body": {k: v for k, v in req.items() if k != "messages"} if isinstance(req, dict) else None,
                     "content_type": self.headers.get("Content-Type")}
            STATE.log.append(entry)
        try:
            entry["outcome"] = self.answer(req, messages, auth, auth_state)
        finally:
            with STATE.lock:
                STATE.active -= 1
                entry["done"] = time.monotonic()

    def answer(self, req, messages, auth, auth_state):
        if ARGS.require_key and auth_state != "match":
            self.send(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                      "code": "invalid_api_key"}})
            return 401
        if messages is None:
            self.send(400, {"error": {"message": "expected a JSON body with a messages array"}})
            return 400
        with STATE.lock:
            idx, rule = find_rule(messages)
            rule = dict(rule or {})
            fault = "status" in rule or "action" in rule
            if fault and "times" in rule:
                key = (idx, last_user(messages))
                seen = STATE.counters.get(key, 0)
                STATE.counters[key] = seen + 1
                fault = seen < int(rule["times"])
        delay = float(rule.get("delay_ms", ARGS.delay_ms)) / 1000.0
        if delay > 0:
            time.sleep(delay)
        action = rule.get("action") if fault else None
        if action == "hang":
            self.hang()
            return "hang"
        if action == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return "drop"
        if action == "broken":
            self.send(200, b'{"id":"chatcmpl-x","choices":[{"message":{"content":"trunc', "application/json")
            return "broken"
        if action == "notchat":
            self.send(200, {"object": "list", "data": [], "note": "not a chat completion"})
            return "notchat"
        if fault and "status" in rule:
            status = int(rule["status"])
            headers = {}
            if "retry_after" in rule:
                headers["Retry-After"] = str(rule["retry_after"])
            if "retry_after_date" in rule:
                headers["Retry-After"] = email.utils.formatdate(time.time() + float(rule["retry_after_date"]),
                                                                usegmt=True)
            if rule.get("echo_auth"):
                self.send(status, "upstream rejected the request: header Authorization: %s was not accepted"
                          % (auth or "(none)"), "text/plain", headers)
            elif "body" in rule:
                self.send(status, rule["body"], "text/plain", headers)
            else:
                self.send(status, {"error": {"message": "fake error %d" % status, "type": "fake"}},
                          headers=headers)
            return status
        content = rule.get("content", ARGS.default_content)
        out = {"id": "chatcmpl-fake-%d" % int(time.monotonic() * 1e6), "object": "chat.completion",
               "created": int(time.time()), "model": req.get("model"),
               "choices": [{"index": 0, "finish_reason": "stop",
                            "message": {"role": "assistant",
                                        "content": None if action == "nullcontent" else content}}]}
        if rule.get("usage", True):
            pt = sum(words(msg_text(m)) for m in messages)
            ct = words(content)
            out["usage"] = {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}
        self.send(200, out)
        return 200

    def hang(self):
        """Waits, answering nothing, until the client closes the connection (at most 10 min)."""
        self.close_connection = True
        sock = self.connection
        end = time.monotonic() + 600
        while time.monotonic() < end:
            r, _, _ = select.select([sock], [], [], 0.2)
            if r:
                try:
                    if not sock.recv(4096, socket.MSG_PEEK):
                        return
                    sock.recv(4096)  # a pipelined request: ignored, still hanging
                except OSError:
                    return


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True


def main():
    global ARGS, KEY
    ap = argparse.ArgumentParser(description="an OpenAI-compatible chat-completions server for tests")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--rules", help="a JSON file: a list of rules, or {\"rules\": [...]}")
    ap.add_argument("--delay-ms", type=float, default=0, help="delay of every answer without its own")
    ap.add_argument("--key-env", help="environment variable holding the key the log compares against")
    ap.add_argument("--require-key", action="store_true", help="401 unless Authorization is Bearer KEY")
    ap.add_argument("--default-content", default=DEFAULT_CONTENT)
    ap.add_argument("--quiet", action="store_true", help="no line per request on stderr")
    ARGS = ap.parse_args()
    if ARGS.key_env:
        KEY = os.environ.get(ARGS.key_env) or None
    if ARGS.rules:
        with open(ARGS.rules) as f:
            v = json.load(f)
        STATE.rules = v.get("rules", []) if isinstance(v, dict) else v
    srv = Server(("127.0.0.1", ARGS.port), Handler)
    print("listening on 127.0.0.1:%d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
