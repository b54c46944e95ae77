#!/usr/bin/env python3
"""bench/py_sampler.py - the sampler a Python user would write with confluent-kafka (a baseline)

What bench/sampler.c compares tracesift-sampler (batch.size 0) against: the
same job written the plain way in Python.  Each record is parsed with the
standard json module (not JSON, not an object or no valid trace_id: to the
dead-letter topic with a ts-reason header), sorted into the first class whose
rules hold (the same classes, in the same order, as the config bench/sampler.c
gives the sampler), selected when the documented draw (tests/tslib.py `draw`:
splitmix64 of seed and trace id) is below the class's rate, and written as a
dataset item of the sampler's shape (json.dumps of the item with the parsed
record in it), keyed by dataset.  Exactly once as in confluent-kafka's
transactions example: read_committed, enable.auto.commit off, a transaction
begun at the first message and, every --commit-ms, the consumer's positions
sent with send_offsets_to_transaction() and the transaction committed;
abortable errors abort and rewind, anything else fatal.  The librdkafka
properties are sampler/eos.c's.

It runs until SIGTERM/SIGINT (then commits and exits 0), and prints its counts
as a JSON line on stderr at the end, with the sampler's key names.

usage: py_sampler.py BROKERS INPUT OUTPUT DLQ GROUP TRANSACTIONAL_ID SEED COMMIT_MS
"""
import datetime
import json
import re
import signal
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer

RATE = 0.5
# (name, rule, rate, dataset): first match wins; bench/sampling.h writes the same for the sampler.
CLASSES = [
    ("errors", lambda r: r.get("error") is not None, RATE, "incidents"),
    ("slow", lambda r: _num((r.get("latency_ms") or {}).get("total")) > 2000, RATE, "latency"),
    ("enterprise", lambda r: (r.get("metadata") or {}).get("user_tier") == "enterprise", RATE, "monitoring"),
    ("default", lambda r: True, RATE, "monitoring"),
]

_M = (1 << 64) - 1
_TRACE_ID = re.compile(r"[0-9a-f]{32}\Z")
run = True


def _num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else -1


def _mix(x):
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & _M
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & _M
    x ^= x >> 31
    return x


def draw(seed, trace_id):
    hi, lo = int(trace_id[:16], 16), int(trace_id[16:], 16)
    h = _mix((seed + 0x9E3779B97F4A7C15) & _M)
    h = _mix(h ^ hi)
    h = _mix(h ^ lo)
    return (h >> 11) * 2.0 ** -53


def on_signal(sig, frame):
    global run
    run = False


def main():
    if len(sys.argv) != 9:
        sys.exit(__doc__.split("usage: ")[1])
    brokers, inp, out, dlq, group, txn_id, seed, commit_ms = sys.argv[1:]
    seed, interval = int(seed), int(commit_ms) / 1000.0
    producer = Producer({
        "bootstrap.servers": brokers, "compression.codec": "zstd", "linger.ms": 10,
        "message.max.bytes": 4194304, "transaction.timeout.ms": 30000,
        "transactional.id": txn_id, "enable.idempotence": True, "acks": "all",
    })
    consumer = Consumer({
        "bootstrap.servers": brokers, "group.id": group, "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "range,roundrobin", "session.timeout.ms": 10000,
        "enable.auto.commit": False, "isolation.level": "read_committed",
        "enable.partition.eof": False,
    })
    producer.init_transactions()
    consumer.subscribe([inp])
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    counts = {"classified": 0, "selected_total": 0, "dead_lettered_total": 0, "txn_committed": 0,
              "txn_aborted": 0}
    txn = {"open": False, "started": 0.0}

    def produce(topic, value, key, headers=None):
        if not txn["open"]:
            producer.begin_transaction()
            txn["open"], txn["started"] = True, time.monotonic()
        while True:
            try:
                producer.produce(topic, value, key, headers=headers)
                return
            except BufferError:
                producer.poll(0.05)

    def rewind():
        parts = consumer.committed(consumer.assignment(), timeout=30)
        for p in parts:
            if p.offset < 0:
                p.offset = -2  # OFFSET_BEGINNING
            consumer.seek(p)

    def commit():
        if not txn["open"]:
            return
        while True:
            try:
                pos = [p for p in consumer.position(consumer.assignment()) if p.offset >= 0]
                if pos:
                    producer.send_offsets_to_transaction(pos, consumer.consumer_group_metadata())
                producer.commit_transaction()
                txn["open"] = False
                counts["txn_committed"] += 1
                return
            except KafkaException as e:
                err = e.args[0]
                if err.retriable():
                    continue
                if err.txn_requires_abort():
                    producer.abort_transaction()
                    txn["open"] = False
                    counts["txn_aborted"] += 1
                    rewind()
                    return
                raise

    def dead_letter(m, reason):
        produce(dlq, m.value(), m.key(), headers=[
            ("ts-reason", reason), ("ts-source-topic", m.topic()),
            ("ts-source-partition", str(m.partition())), ("ts-source-offset", str(m.offset()))])
        counts["dead_lettered_total"] += 1

    while run:
        msgs = consumer.consume(500, 0.1)
        producer.poll(0)
        for m in msgs:
            if m.error():
                if m.error().fatal():
                    raise KafkaException(m.error())
                print("% py_sampler: consumer: %s" % m.error(), file=sys.stderr)
                continue
            try:
                rec = json.loads(m.value())
            except ValueError:
                dead_letter(m, "not_json")
                continue
            tid = rec.get("trace_id") if isinstance(rec, dict) else None
            if not isinstance(tid, str) or not _TRACE_ID.match(tid):
                dead_letter(m, "no_trace_id")
                continue
            if not txn["open"]:
                producer.begin_transaction()
                txn["open"], txn["started"] = True, time.monotonic()
            for name, rule, rate, dataset in CLASSES:
                if rule(rec):
                    break
            counts["classified"] += 1
            d = draw(seed, tid)
            if d >= rate:
                continue
            item = {"type": "item", "id": tid, "dataset": dataset, "class": name, "rate": rate,
                    "seed": seed, "draw": d,
                    "source": {"topic": m.topic(), "partition": m.partition(), "offset": m.offset()},
                    "selected_at": datetime.datetime.now(datetime.timezone.utc).strftime(
                        "%Y-%m-%dT%H:%M:%S.%fZ"),
                    "record": rec}
            produce(out, json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode(), dataset)
            counts["selected_total"] += 1
        if txn["open"] and time.monotonic() - txn["started"] >= interval:
            commit()
    commit()
    producer.flush(10)
    consumer.close()
    print(json.dumps(counts), file=sys.stderr)


if __name__ == "__main__":
    try:
        main()
    except KafkaException as e:
        print("% ERROR: py_sampler: %s" % e, file=sys.stderr)
        sys.exit(1)
