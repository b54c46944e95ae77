#!/usr/bin/env python3
# bench/gen-records.py - stand-in trace records (JSONL) for the throughput benchmark
#
# usage: bench/gen-records.py COUNT SEED > records.jsonl
#
# Used only when bin/tracesift-loadgen is not built: RAG-like traces (retrieve,
# rerank, llm_call, guardrail; 2-12 KB of prose-like text) as trace record v1,
# the same for the same seed.
import json
import random
import sys
from datetime import datetime, timedelta, timezone

WORDS = ("the cluster service request latency token model answer context document "
         "deploy region replica policy storage quota limit scale memory network ingress "
         "secret volume rollout metric alert budget invoice account project permission "
         "audit when which after before usually never always within minutes hours daily "
         "weekly restart upgrade backup restore is are can must should will of to in for "
         "with a and or not every").split()


def text(rng, n):
    out, size = [], 0
    while size < n:
        w = rng.choice(WORDS)
        out.append(w)
        size += len(w) + 1
    return " ".join(out)


def ts(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def span(rng, parent, name, kind, start, ms, **fields):
    end = start + timedelta(milliseconds=ms)
    s = {"span_id": "%016x" % rng.getrandbits(64), "parent_span_id": parent, "name": name,
         "type": kind, "start_time": ts(start), "end_time": ts(end),
         "latency_ms": {"total": round(ms, 3)}, "error": None}
    s.update(fields)
    return s, end


def record(rng, i, t0):
    start = t0 + timedelta(milliseconds=150 * i)
    q = text(rng, rng.randint(30, 120)) + "?"
    docs = [{"id": "doc-%d" % rng.randint(1, 999), "text": text(rng, rng.randint(300, 2500))}
            for _ in range(rng.randint(2, 4))]
    answer = text(rng, rng.randint(200, 1500))
    tin, tout = rng.randint(300, 3000), rng.randint(50, 400)
    spans, t = [], start
    s, t = span(rng, None, "retrieve", "retrieval", t, rng.uniform(5, 80), input=q, output=docs)
    spans.append(s)
    s, t = span(rng, None, "rerank", "tool", t, rng.uniform(1, 20),
                output=[d["id"] for d in docs])
    spans.append(s)
    s, t = span(rng, None, "llm_call", "llm", t, rng.uniform(300, 4000),
                input=[{"role": "user", "content": q}], output=answer, model="gpt-4o-mini",
                usage={"input_tokens": tin, "output_tokens": tout, "total_tokens": tin + tout})
    s["latency_ms"]["time_to_first_token"] = round(rng.uniform(80, 600), 3)
    spans.append(s)
    s, t = span(rng, None, "guardrail", "tool", t, rng.uniform(1, 30), output={"flagged": False})
    spans.append(s)
    total = (t - start) / timedelta(milliseconds=1)
    return {"v": 1, "trace_id": "%032x" % (rng.getrandbits(128) | 1), "name": "rag_query",
            "project": "rag-demo", "start_time": ts(start), "end_time": ts(t),
            "input": {"question": q}, "output": {"answer": answer}, "tags": ["bench"],
            "metadata": {"user_id": "u-%d" % rng.randint(1, 5000)}, "model": "gpt-4o-mini",
            "usage": {"input_tokens": tin, "output_tokens": tout, "total_tokens": tin + tout},
            "latency_ms": {"total": round(total, 3)}, "error": None, "spans": spans}


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: bench/gen-records.py COUNT SEED")
    count, seed = int(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    out = sys.stdout
    for i in range(count):
        out.write(json.dumps(record(rng, i, t0), separators=(",", ":")))
        out.write("\n")


if __name__ == "__main__":
    main()
