#!/usr/bin/env python3
"""tests/integration/t3306-sink-props.py - the sink's Kafka properties: defaults, then the file, then -X, then what exactly-once needs

What each client was built with is read from librdkafka itself: -X debug=conf makes
it print every property that is not at librdkafka's default when the client is made.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tslib as T  # noqa: E402

SEED = 3306
N = 40
BIG = "x" * 100000   # items of ~100 KB: larger than the 64 KiB fetch size one run uses


def items():
    recs = T.records(N, seed=SEED)
    for r in recs[::4]:
        r["input"] = {"question": BIG}
    return [T.dumps(m).encode() for m in T.sink_messages(recs, "props", 10, seed=SEED)]


MSGS = items()


def client_conf(text, kind):
    """{property: value} that librdkafka printed under debug=conf for the last
    client of this kind ("consumer" or "producer"), its default topic
    configuration included."""
    confs = {}
    for line in text.splitlines():
        m = re.match(r"%7\|[0-9.]+\|CONF\|([^|]*#(consumer|producer)-[0-9]+)\| \[thrd:[^]]*\]: +(.*)$", line)
        if m and m.group(2) == kind and " = " in m.group(3):
            k, v = m.group(3).split(" = ", 1)
            confs.setdefault(m.group(1), {})[k.strip()] = v.strip()
    return confs[sorted(confs)[-1]] if confs else {}


_files = [0]


def conf_file(lines):
    _files[0] += 1
    path = T.workfile("sink-%d.conf" % _files[0])
    with open(path, "w") as f:
        f.write("# t3306\n" + "".join(l + "\n" for l in lines))
    return path


def run_sink(topic, dlq, extra, name):
    """A sink on topic with extra flags until the store has all of it; its stderr."""
    store = T.workfile("store-" + name)
    s = T.Sink(store, topic, dlq, extra=extra, name=name).start()
    ends = T.end_offsets(topic, 1)
    T.wait_until("the store to reach %r" % ends, lambda: T.store_offsets(store, topic) == ends or not s.alive(), 120)
    assert s.alive(), "sink stopped (exit %s): %s" % (s.proc.returncode, s.stderr()[-3000:])
    assert s.stop() == 0, "SIGTERM: " + s.stderr()[-2000:]
    st = s.stats()
    assert st["items"] == N and st["triggers"] == N // 10 and st["dead_lettered"] == 0, st
    got = T.store_read(store)["datasets"]["props"]["lines"]
    assert len(got) == N, "%d items stored, %d expected" % (len(got), N)
    return s.stderr()


def setup():
    topic = T.create_topic(T.topic("sink-props"), 1, max_message_bytes=4194304)
    dlq = T.create_topic(T.topic("sink-props-dlq"), 1)
    T.produce_msgs(topic, [(T._msg(l)[1], l) for l in MSGS])
    return topic, dlq


TOPIC, DLQ = None, None


def defaults_and_what_exactly_once_needs():
    global TOPIC, DLQ
    TOPIC, DLQ = setup()
    err = run_sink(TOPIC, DLQ, ["-X", "debug=conf"], "defaults")
    c, p = client_conf(err, "consumer"), client_conf(err, "producer")
    assert c.get("fetch.message.max.bytes") == "1048576", "consumer: %r" % c
    assert c.get("isolation.level") == "read_committed", "consumer: %r" % c
    assert c.get("enable.auto.commit") == "false" and c.get("enable.auto.offset.store") == "false", c
    assert c.get("group.id") == "tracesift-sink", c
    assert p.get("enable.idempotence") == "true" and p.get("compression.codec") == "zstd", "producer: %r" % p
    assert p.get("message.max.bytes") == "8388608", p
    help_text = subprocess.run([os.path.join(T.BIN, "tracesift-sink"), "--help"], capture_output=True,
                               text=True).stdout
    assert "fetch.message.max.bytes=1048576" in help_text, "--help does not give the fetch size"


def x_and_the_file_change_the_defaults():
    # the file sets a fetch size and a client.id; -X sets another fetch size and wins over the file
    path = conf_file(["kafka.fetch.message.max.bytes = 3145728", "kafka.client.id = t3306-file",
                      "kafka.queued.max.messages.kbytes = 131072"])
    err = run_sink(TOPIC, DLQ, ["-c", path, "-X", "debug=conf", "-X", "fetch.message.max.bytes=65536",
                                "-X", "auto.offset.reset=latest", "-X", "compression.codec=lz4"], "tuned")
    c, p = client_conf(err, "consumer"), client_conf(err, "producer")
    assert c.get("fetch.message.max.bytes") == "65536", "-X over the file and the default: %r" % c
    assert c.get("client.id") == "t3306-file" and c.get("queued.max.messages.kbytes") == "131072", \
        "the file's kafka.* lines: %r" % c
    assert "t3306-file#consumer-" in err, "client.id not in librdkafka's own log lines"
    assert p.get("compression.codec") == "lz4", "producer: %r" % p
    assert c.get("isolation.level") == "read_committed" and c.get("enable.auto.commit") == "false", c
    assert c.get("auto.offset.reset") == "largest", "-X auto.offset.reset=latest (a topic property): %r" % c
    # the file alone (no -X for the fetch size)
    err = run_sink(TOPIC, DLQ, ["-c", path, "-X", "debug=conf"], "file")
    assert client_conf(err, "consumer").get("fetch.message.max.bytes") == "3145728", "the file's fetch size"


def refused(args, *want):
    store = T.workfile("store-refused")
    p = subprocess.run([os.path.join(T.BIN, "tracesift-sink"), "-b", T.BROKERS, "-t", TOPIC or "t3306-none",
                        "--store", store] + args, capture_output=True, text=True, timeout=T.timeout(30))
    assert p.returncode == 2, "%r: exit %d, want 2: %s" % (args, p.returncode, p.stderr[-1500:])
    for w in want:
        assert w in p.stderr, "%r: %r not in: %s" % (args, w, p.stderr[-1500:])
    assert not os.path.exists(store), "%r: the store was opened before the refusal" % (args,)
    assert p.stderr.count("% ERROR") == 1, p.stderr


def x_of_a_required_property_is_refused():
    need = "it cannot be changed"
    refused(["-X", "isolation.level=read_uncommitted"], "-X isolation.level=read_uncommitted",
            "needs isolation.level=read_committed", need)
    refused(["-X", "enable.auto.commit=true"], "enable.auto.commit=false", need)
    refused(["-X", "enable.auto.offset.store=true"], "enable.auto.offset.store=false", need)
    refused(["-X", "enable.idempotence=false"], "enable.idempotence=true", need)
    refused(["-X", "acks=1"], "needs acks=all", need)
    refused(["-X", "request.required.acks=0"], "-X request.required.acks=0", "needs acks=all", need)  # alias
    path = conf_file(["kafka.linger.ms = 5", "kafka.isolation.level = read_uncommitted"])
    refused(["-c", path], "'%s': kafka.isolation.level = read_uncommitted" % path, need)
    refused(["-X", "no.such.property=1"], "No such configuration property")
    refused(["-X", "fetch.message.max.bytes=lots"], "Invalid value")


def the_required_value_itself_is_accepted():
    # the value exactly-once needs, a flag that overrides a file's bad value, a later -X over an
    # earlier one: none of them is refused, and the sink goes on to the topic (here: none there)
    path = conf_file(["kafka.acks = 1"])
    for args in (["-X", "isolation.level=read_committed", "-X", "acks=all", "-X", "enable.auto.commit=false"],
                 ["-c", path, "-X", "acks=all"], ["-X", "acks=0", "-X", "acks=-1"]):
        store = T.workfile("store-accepted")
        p = subprocess.run([os.path.join(T.BIN, "tracesift-sink"), "-b", T.BROKERS, "-t", T.topic("absent"),
                            "--store", store, "-q"] + args, capture_output=True, text=True, timeout=T.timeout(60))
        assert p.returncode == 1 and "Unknown topic" in p.stderr, "%r: exit %d: %s" % (
            args, p.returncode, p.stderr[-1500:])
        subprocess.run(["rm", "-rf", store])


T.run(defaults_and_what_exactly_once_needs)
T.run(x_and_the_file_change_the_defaults)
T.run(x_of_a_required_property_is_refused)
T.run(the_required_value_itself_is_accepted)
T.exit()
