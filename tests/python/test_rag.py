"""tests/python/test_rag.py - a RAG-shaped service instrumented with @track, read back from Kafka

generate -> expand (llm) -> retrieve (retrieval, with a nested embed) ->
rerank (tool) -> call_llm (llm, a streaming generator).  The record must
have the tree, the timings, the tags, metadata, usage, model and time to
first token that the code says, and pass the record format's JSON Schema.
"""
import json
import os
import time

import tracesift
from conftest import TOP, spans_by_name

FIRST_TOKEN_S = 0.15   # call_llm waits this long before its first token
TOKENS = ["Open ", "Settings", " and ", "press ", "Rotate."]
DOCS = [{"id": "kb-%d" % i, "text": "passage %d about keys" % i, "score": 1.0 - i / 10} for i in range(6)]


@tracesift.track(type="llm")
def expand(question):
    time.sleep(0.02)
    tracesift.update_current_span(model="m-small", usage={"prompt_tokens": 20, "completion_tokens": 5})
    return {"queries": [question, question.lower()]}


@tracesift.track(type="tool")
def embed(queries):
    time.sleep(0.02)
    return [[0.1, 0.2]] * len(queries)


@tracesift.track(type="retrieval")
def retrieve(queries, top_k=6):
    vectors = embed(queries)
    time.sleep(0.01)
    tracesift.update_current_span(metadata={"index": "kb-2026", "vectors": len(vectors)})
    return {"documents": DOCS[:top_k]}


@tracesift.track(type="tool")
def rerank(question, documents, keep=3):
    time.sleep(0.01)
    return sorted(documents, key=lambda d: -d["score"])[:keep]


@tracesift.track(type="llm", model="m-large")
def call_llm(question, context):
    time.sleep(FIRST_TOKEN_S)
    for t in TOKENS:
        yield t
        time.sleep(0.005)
    tracesift.update_current_span(usage={"input_tokens": 300, "output_tokens": len(TOKENS)})


TRACE_IDS = []


@tracesift.track
def generate(question, user_tier="pro"):
    TRACE_IDS.append(tracesift.current_trace_id())
    tracesift.update_current_trace(tags=["rag", "test"], metadata={"session_id": "s-42", "user_tier": user_tier})
    queries = expand(question)["queries"]
    docs = retrieve(queries)["documents"]
    top = rerank(question, docs)
    answer = "".join(call_llm(question, [d["text"] for d in top]))
    return {"answer": answer, "context": [d["text"] for d in top]}


def ms(rec, key="total"):
    return rec["latency_ms"].get(key)


def stamp(s):
    from datetime import datetime
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def test_rag_pipeline_record(kafka):
    t0 = time.monotonic()
    out = generate("How do I rotate my API key?")
    wall_ms = (time.monotonic() - t0) * 1000
    assert out["answer"] == "".join(TOKENS)
    rec = kafka.record()

    # the record's own fields
    assert rec["trace_id"] == TRACE_IDS[-1]
    assert rec["name"] == "generate" and rec["project"] == kafka.project
    assert rec["input"] == {"question": "How do I rotate my API key?"}
    assert rec["output"] == out
    assert rec["tags"] == ["rag", "test"]
    assert rec["metadata"] == {"session_id": "s-42", "user_tier": "pro"}
    assert rec["error"] is None
    # usage, model and first token default to what the spans say
    assert rec["usage"] == {"input_tokens": 320, "output_tokens": 10, "total_tokens": 330}
    assert rec["model"] == "m-small"

    # the tree
    by = spans_by_name(rec)
    assert sorted(by) == ["call_llm", "embed", "expand", "rerank", "retrieve"]
    assert all(len(v) == 1 for v in by.values())
    sp = {k: v[0] for k, v in by.items()}
    for name in ("expand", "retrieve", "rerank", "call_llm"):
        assert sp[name]["parent_span_id"] is None, name
    assert sp["embed"]["parent_span_id"] == sp["retrieve"]["span_id"]
    assert {k: s["type"] for k, s in sp.items()} == {
        "expand": "llm", "embed": "tool", "retrieve": "retrieval", "rerank": "tool", "call_llm": "llm"}

    # inputs, outputs, per-span fields
    assert sp["retrieve"]["input"] == {"queries": ["How do I rotate my API key?", "how do i rotate my api key?"]}
    assert sp["retrieve"]["output"] == {"documents": DOCS}
    assert sp["retrieve"]["metadata"] == {"index": "kb-2026", "vectors": 2}
    assert sp["rerank"]["input"]["question"] == "How do I rotate my API key?"
    assert len(sp["rerank"]["output"]) == 3
    assert sp["call_llm"]["output"] == "".join(TOKENS)
    assert sp["call_llm"]["model"] == "m-large"
    assert sp["call_llm"]["usage"] == {"input_tokens": 300, "output_tokens": 5, "total_tokens": 305}
    assert sp["expand"]["usage"] == {"input_tokens": 20, "output_tokens": 5, "total_tokens": 25}

    # timings: each span lasts at least what it sleeps, nests inside its parent,
    # and the steps follow one another
    slack = 2000  # ms: a loaded machine under ASan
    assert 20 <= ms(sp["expand"]) < 20 + slack
    assert 20 <= ms(sp["embed"]) < 20 + slack
    assert 30 <= ms(sp["retrieve"]) < 30 + slack
    assert ms(sp["retrieve"]) >= ms(sp["embed"])
    assert 10 <= ms(sp["rerank"]) < 10 + slack
    assert FIRST_TOKEN_S * 1000 <= ms(sp["call_llm"]) < FIRST_TOKEN_S * 1000 + slack
    assert ms(rec) <= wall_ms + 1
    assert ms(rec) >= 20 + 30 + 10 + FIRST_TOKEN_S * 1000
    for s in sp.values():
        parent = rec if s["parent_span_id"] is None else sp["retrieve"]
        assert stamp(parent["start_time"]) <= stamp(s["start_time"]) <= stamp(s["end_time"]) <= stamp(parent["end_time"])
    order = ["expand", "retrieve", "rerank", "call_llm"]
    for a, b in zip(order, order[1:]):
        assert stamp(sp[a]["end_time"]) <= stamp(sp[b]["start_time"]), (a, b)

    # time to first token: the generator's first item, measured from its span's
    # start; the record's is the same instant measured from the trace's start
    ttft = ms(sp["call_llm"], "time_to_first_token")
    assert FIRST_TOKEN_S * 1000 <= ttft < ms(sp["call_llm"])
    offset = (stamp(sp["call_llm"]["start_time"]) - stamp(rec["start_time"])) * 1000
    assert abs(ms(rec, "time_to_first_token") - (offset + ttft)) < 1.0
    assert ms(rec, "time_to_first_token") >= 20 + 30 + 10 + FIRST_TOKEN_S * 1000


def test_rag_record_passes_schema(kafka):
    for tier in ("free", "pro", "enterprise"):
        generate("question for %s" % tier, user_tier=tier)
    recs = kafka.records(3)
    assert sorted(r["metadata"]["user_tier"] for r in recs) == ["enterprise", "free", "pro"]
    assert len({r["trace_id"] for r in recs}) == 3
    try:
        import jsonschema
    except ImportError:  # make deps installs python3-jsonschema
        import pytest
        pytest.skip("jsonschema is not installed")
    with open(os.path.join(TOP, "docs", "trace-v1.schema.json")) as f:
        schema = json.load(f)
    for r in recs:
        jsonschema.validate(r, schema)


def test_streaming_root_marks_time_to_first_token(kafka):
    @tracesift.track(name="chat")
    def chat(question):
        tracesift.update_current_trace(usage={"input_tokens": 7, "output_tokens": 2})
        time.sleep(0.1)
        yield "Hi"
        yield "!"
    assert list(chat("hello")) == ["Hi", "!"]
    rec = kafka.record()
    assert rec["name"] == "chat" and rec["output"] == "Hi!"
    assert rec["spans"] == []
    assert 100 <= ms(rec, "time_to_first_token") <= ms(rec)
    assert rec["usage"]["total_tokens"] == 9
