#!/usr/bin/env python3
"""tests/fakes/opik_server.py - a local stand-in for Opik's REST API, for tests, that injects failures

usage: opik_server.py [--api-key KEY | --api-key-env NAME] [--workspace NAME] [--port N]

Listens on 127.0.0.1 (a free port unless --port) and prints one line,
"listening on 127.0.0.1:PORT", then serves until killed.  HTTP/1.1 with
keep-alive, one thread per connection (ThreadingHTTPServer).

The subset of Opik's API it speaks (docs/opik.md, and Opik's OpenAPI document):
  POST /api/v1/private/datasets            {"name", "description"?, "project_name"?}
       -> 201 with Location, or 409 when the name exists (in that project)
  PUT  /api/v1/private/datasets/items      {"dataset_name" | "dataset_id", "project_name"?,
       "items": [1..1000 of {"id"?, "source", "data", "trace_id"?, "span_id"?, "tags"?}]}
       -> 204; creates the dataset when named and missing; upserts by id
  POST /api/v1/private/datasets/retrieve   {"dataset_name"} -> the dataset, or 404
  GET  /api/v1/private/datasets/{id}/items?page=&size= -> {"content", "page", "size", "total"}
Requests are checked as Opik checks them: an item id must be a UUID of
version 7, "source" one of manual/trace/span/sdk, "data" a non-empty
object, trace_id/span_id absent for sdk and manual; 422/400 otherwise.  With
--api-key, the "authorization" header must equal the key (no "Bearer "), else
401; with --workspace, "Comet-Workspace" must equal it, else 403.

Test-only endpoints (no auth, never faulted):
  POST /_test/faults {"sequence": ["429:2", "429:date:3", "500", "503", "reset",
        "slow:3000", "ok-reset", "echo:400", "ok"]}: the next API requests get these,
        in order: 429 with Retry-After in seconds (or as an HTTP date N s ahead);
        that status; the connection closed (RST) without a response; the response
        delayed by N ms (the request is applied after the delay); the request
        applied, then the connection reset before the response; that status with
        a message quoting the request's authorization header; served normally.
  GET  /_test/items?dataset=NAME  {"dataset": {...} or null, "items": [...]} (in insertion order)
  GET  /_test/log                 every API request: method, path, status, fault, t (monotonic
                                  seconds at arrival), wall (time.time() at arrival), done
                                  (monotonic, at the response), conn (connection number), items
                                  (count in a PUT body), retry_after_epoch (429:date faults);
                                  "connections" counts every connection, test ones included
  POST /_test/reset               forgets datasets, items, faults and the log
"""
import argparse
import email.utils
import json
import os
import re
import socket
import struct
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PREFIX = "/api/v1/private/datasets"
NOT_BLANK = re.compile(r"(?s)^\s*(\S.*\S|\S)\s*$")


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.datasets = {}   # id -> {"id", "name", "project_name", "description"}
        self.items = {}      # dataset id -> {item id -> item}, insertion ordered
        self.faults = []
        self.log = []
        self.conns = 0

    def dataset_by_name(self, name, project):
        for d in self.datasets.values():
            if d["name"] == name and d.get("project_name") == project:
                return d
        return None

    def create_dataset(self, name, project, description=None):
        did = str(uuid7())
        d = {"id": did, "name": name, "project_name": project, "description": description,
             "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        self.datasets[did] = d
        self.items[did] = {}
        return d


def uuid7():
    ms = int(time.time() * 1000)
    rnd = int.from_bytes(os.urandom(10), "big")
    hi = (ms << 16) | 0x7000 | (rnd >> 68)
    lo = 0x8000000000000000 | (rnd & ((1 << 62) - 1))
    return uuid.UUID(bytes=struct.pack(">QQ", hi, lo))


STATE = State()
ARGS = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-opik/1"

    def setup(self):
        super().setup()
        with STATE.lock:
            STATE.conns += 1
            self.conn_no = STATE.conns

    def log_message(self, fmt, *args):  # quiet: tests read /_test/log
        pass

    # ---- plumbing ----
    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send(self, status, obj=None, headers=None):
        data = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if obj is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)
        self.wfile.flush()

    def reset_connection(self):
        """Closes the socket with an RST: the client sees a reset, not a response."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    # ---- dispatch ----
    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    def handle_any(self, method):
        url = urlparse(self.path)
        raw = self.body()
        if url.path.startswith("/_test/"):
            return self.test_endpoint(method, url, raw)
        entry = {"method": method, "path": url.path, "t": time.monotonic(), "wall": time.time(),
                 "conn": self.conn_no,
                 "fault": None, "status": None, "items": None}
        with STATE.lock:
            fault = STATE.faults.pop(0) if STATE.faults else "ok"
            STATE.log.append(entry)
        entry["fault"] = fault
        try:
            if method == "PUT":
                entry["items"] = len(json.loads(raw).get("items") or [])
        except (ValueError, AttributeError):
            pass
        kind, _, arg = fault.partition(":")
        if kind == "reset":
            entry["status"] = "reset"
            entry["done"] = time.monotonic()
            return self.reset_connection()
        if kind == "slow":
            time.sleep(int(arg) / 1000.0)
        if kind == "429":
            headers = {}
            if arg.startswith("date:"):
                at = int(time.time() + int(arg[5:]))
                headers["Retry-After"] = email.utils.formatdate(at, usegmt=True)
                entry["retry_after_epoch"] = at
            elif arg:
                headers["Retry-After"] = arg
            entry["status"] = 429
            entry["done"] = time.monotonic()
            return self.send(429, {"code": 429, "message": "Too Many Requests"}, headers)
        if kind == "echo":  # a server that quotes the request's credentials back
            entry["status"] = int(arg or 400)
            entry["done"] = time.monotonic()
            return self.send(int(arg or 400), {"code": int(arg or 400), "message": "rejected authorization '%s' for workspace '%s'" % (
                self.headers.get("authorization"), self.headers.get("Comet-Workspace"))})
        if kind.isdigit():
            entry["status"] = int(kind)
            entry["done"] = time.monotonic()
            return self.send(int(kind), {"code": int(kind), "message": "injected failure"})
        status, obj, headers = self.api(method, url, raw)
        entry["status"] = status
        entry["done"] = time.monotonic()
        if kind == "ok-reset":
            entry["status"] = "applied-reset"
            return self.reset_connection()
        try:
            self.send(status, obj, headers)
        except OSError:  # the client gave up (a slow response after its timeout)
            self.close_connection = True

    # ---- the API ----
    def api(self, method, url, raw):
        if ARGS.key is not None and self.headers.get("authorization") != ARGS.key:
            # Opik's message for a key it does not know
            return 401, {"code": 401, "message": "User not allowed to access workspace"}, None
        if ARGS.workspace is not None and self.headers.get("Comet-Workspace") != ARGS.workspace:
            return 403, {"code": 403, "message": "User has no permission to the workspace"}, None
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return 400, {"code": 400, "message": "Unable to process JSON"}, None
        with STATE.lock:
            if method == "POST" and url.path == PREFIX:
                return self.create_dataset(body)
            if method == "PUT" and url.path == PREFIX + "/items":
                return self.put_items(body)
            if method == "POST" and url.path == PREFIX + "/retrieve":
                name = (body or {}).get("dataset_name")
                d = STATE.dataset_by_name(name, None) or next(
                    (d for d in STATE.datasets.values() if d["name"] == name), None)
                return (200, d, None) if d else (404, {"errors": ["Dataset not found"]}, None)
            m = re.fullmatch(PREFIX + r"/([0-9a-f-]{36})/items", url.path)
            if method == "GET" and m:
                items = STATE.items.get(m.group(1))
                if items is None:
                    return 404, {"errors": ["Dataset not found"]}, None
                q = parse_qs(url.query)
                page = int(q.get("page", ["1"])[0])
                size = int(q.get("size", ["10"])[0])
                allv = list(items.values())
                return 200, {"content": allv[(page - 1) * size:page * size], "page": page,
                             "size": size, "total": len(allv)}, None
        return 404, {"code": 404, "message": "HTTP 404 Not Found"}, None

    def create_dataset(self, body):
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
            return 422, {"errors": ["name must not be blank"]}, None
        desc = body.get("description")
        if desc is not None and (not isinstance(desc, str) or len(desc) > 255):
            return 422, {"errors": ["description size must be between 0 and 255"]}, None
        if STATE.dataset_by_name(body["name"], body.get("project_name")):
            return 409, {"errors": ["Dataset already exists"]}, None
        d = STATE.create_dataset(body["name"], body.get("project_name"), desc)
        return 201, None, {"Location": "http://127.0.0.1:%d%s/%s" % (self.server.server_port, PREFIX, d["id"])}

    def put_items(self, body):
        if not isinstance(body, dict):
            return 400, {"code": 400, "message": "Unable to process JSON"}, None
        items = body.get("items")
        if not isinstance(items, list) or not 1 <= len(items) <= 1000:
            return 422, {"errors": ["items size must be between 1 and 1000"]}, None
        name, did = body.get("dataset_name"), body.get("dataset_id")
        if name is None and did is None:
            return 422, {"errors": ["The request body must provide either a dataset_name or a dataset_id"]}, None
        if name is not None and (not isinstance(name, str) or not NOT_BLANK.match(name)):
            return 422, {"errors": ["dataset_name must not be blank"]}, None
        errors = []
        for i, it in enumerate(items):
            errors += ["items[%d].%s" % (i, e) for e in item_errors(it)]
        if errors:
            return 422, {"errors": errors}, None
        if did is not None:
            d = STATE.datasets.get(did)
            if d is None:
                return 409, {"errors": ["workspace_name from dataset item batch and dataset_id from item does not match"]}, None
        else:
            d = STATE.dataset_by_name(name, body.get("project_name")) or \
                STATE.create_dataset(name, body.get("project_name"))
        store = STATE.items[d["id"]]
        for it in items:
            iid = it.get("id") or str(uuid7())
            stored = dict(it, id=iid, dataset_id=d["id"])
            store[iid] = stored
        return 204, None, None

    # ---- test endpoints ----
    def test_endpoint(self, method, url, raw):
        with STATE.lock:
            if method == "POST" and url.path == "/_test/faults":
                seq = json.loads(raw or b"{}").get("sequence") or []
                STATE.faults = [str(s) for s in seq]
                return self.send(200, {"queued": len(STATE.faults)})
            if method == "GET" and url.path == "/_test/items":
                name = parse_qs(url.query).get("dataset", [""])[0]
                d = next((d for d in STATE.datasets.values() if d["name"] == name), None)
                items = list(STATE.items[d["id"]].values()) if d else []
                return self.send(200, {"dataset": d, "items": items})
            if method == "GET" and url.path == "/_test/log":
                return self.send(200, {"log": STATE.log, "connections": STATE.conns,
                                       "faults_left": len(STATE.faults)})
            if method == "POST" and url.path == "/_test/reset":
                STATE.reset()
                return self.send(200, {})
        return self.send(404, {"message": "no such test endpoint"})


def item_errors(it):
    if not isinstance(it, dict):
        return ["must be an object"]
    errs = []
    iid = it.get("id")
    if iid is not None:
        try:
            u = uuid.UUID(iid)
            if u.version != 7 or u.variant != uuid.RFC_4122 or str(u) != iid.lower():
                errs.append("id: dataset_item id must be a version 7 UUID")
        except (ValueError, AttributeError, TypeError):
            errs.append("id: must be a UUID")
    src = it.get("source")
    if src not in ("manual", "trace", "span", "sdk"):
        errs.append("source: must be one of manual, trace, span, sdk")
    data = it.get("data")
    if not isinstance(data, dict) or not data:
        errs.append("data: must not be empty")
    if src in ("sdk", "manual"):
        for f in ("trace_id", "span_id"):
            if it.get(f) is not None:
                errs.append("source: when it is %s, %s must be null" % (src, f))
    return errs


def main():
    global ARGS
    ap = argparse.ArgumentParser(description="a fake Opik REST API for tests")
    ap.add_argument("--api-key")
    ap.add_argument("--api-key-env", help="read the expected key from this environment variable")
    ap.add_argument("--workspace")
    ap.add_argument("--port", type=int, default=0)
    ARGS = ap.parse_args()
    ARGS.key = ARGS.api_key if ARGS.api_key is not None else (
        os.environ.get(ARGS.api_key_env) if ARGS.api_key_env else None)
    srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    srv.daemon_threads = True
    print("listening on 127.0.0.1:%d" % srv.server_port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
