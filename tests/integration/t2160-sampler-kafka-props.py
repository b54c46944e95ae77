#!/usr/bin/env python3
"""tests/integration/t2160-sampler-kafka-props.py - the sampler's Kafka properties: defaults, then the file, then -X, then what exactly-once needs

What each client was built with is read from librdkafka itself: -X debug=conf makes
it print every property that is not at librdkafka's default when the client is made.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tslib as T  # noqa: E402

SAMPLER = os.path.join(T.BIN, "tracesift-sampler")
LINES = [T.dumps(r) for r in T.records(20, seed=2160)]


def sampler(args, seconds=60):
    """Runs tracesift-sampler to its end: (exit status, stderr)."""
    p = subprocess.run([SAMPLER, "-b", T.BROKERS] + args, capture_output=True, text=True,
                       timeout=T.timeout(seconds))
    return p.returncode, p.stderr


def conf_file(lines, settings=None, name="props"):
    """A config file with its own (absent) topics, these [sampler] settings and these lines."""
    t = {"input": T.topic("kp-absent-in"), "output": T.topic("kp-absent-out"), "dlq": T.topic("kp-absent-dlq"),
         "group": T.topic("kp-g")}
    text = T.sampler_conf(t, settings or {"batch.size": 0}).replace("[sampler]\n", "[sampler]\n" +
                                                                     "".join(l + "\n" for l in lines), 1)
    path = T.workfile("%s.conf" % name)
    with open(path, "w") as f:
        f.write(text)
    return path


def refused(args, *want):
    rc, err = sampler(args + ["-X", "debug=conf"])
    T.assert_refused(args, rc, err, *want)


def accepted(args):
    """Past the check: the sampler goes on to look for its topics, which are not there."""
    rc, err = sampler(args + ["-q"])
    assert rc == 1 and "missing topics" in err, "%r: exit %d: %s" % (args, rc, err[-1500:])


def x_of_a_required_property_is_refused():
    path = conf_file([])
    need = "it cannot be changed"
    refused(["-c", path, "-X", "isolation.level=read_uncommitted"], "-X isolation.level=read_uncommitted",
            "the sampler's select consumer needs isolation.level=read_committed",
            "(records of aborted transactions must not be processed)", need)
    refused(["-c", path, "-X", "enable.idempotence=false"], "-X enable.idempotence=false",
            "the sampler's select producer needs enable.idempotence=true", "(Kafka transactions need", need)
    refused(["-c", path, "-X", "enable.auto.commit=true"], "needs enable.auto.commit=false", need)
    refused(["-c", path, "-X", "acks=1"], "needs acks=all", need)
    refused(["-c", path, "-X", "request.required.acks=0"], "-X request.required.acks=0", "needs acks=all", need)
    refused(["-c", path, "-X", "transactional.id=mine"], "needs transactional.id=", "-0-select (",
            "'transactional.id' setting", need)
    refused(["-c", path, "-X", "group.id=mine"], "needs group.id=", "the 'group' setting", need)
    refused(["-c", path, "-s", "kafka.acks=0"], "-s kafka.acks=0: ", "needs acks=all", need)
    bad = conf_file(["kafka.linger.ms = 5", "kafka.isolation.level = read_uncommitted"], name="bad")
    refused(["-c", bad], "'%s': kafka.isolation.level = read_uncommitted: " % bad, need)
    refused(["-c", path, "-X", "no.such.property=1"], "-X no.such.property=1: No such configuration property")
    refused(["-c", path, "-X", "linger.ms=soon"], "Invalid value")
    # the batch stage's state reader reads to the end of a partition: only when batching
    batching = conf_file([], {"batch.size": 10}, name="batching")
    refused(["-c", batching, "-X", "enable.partition.eof=false"],
            "the sampler's state reader needs enable.partition.eof=true", need)
    accepted(["-c", path, "-X", "enable.partition.eof=false"])


def the_required_value_itself_is_accepted():
    path = conf_file(["kafka.acks = 1"], name="fileacks")
    accepted(["-c", conf_file([]), "-X", "isolation.level=read_committed", "-X", "acks=all",
              "-X", "enable.idempotence=true", "-X", "enable.auto.commit=false"])
    accepted(["-c", path, "-X", "acks=all"])           # a flag over the file's bad line
    accepted(["-c", conf_file([]), "-X", "acks=0", "-X", "acks=-1"])  # a later -X over an earlier


def x_and_the_file_change_the_defaults():
    t = T.sampler_topics("kp", partitions=1)
    T.produce(t["input"], LINES)
    conf = T.sampler_conf(t, {"batch.size": 0, "kafka.compression.codec": "lz4",
                              "kafka.linger.ms": "50", "kafka.client.id": "t2160-file"})
    s = T.Sampler(conf, name="tuned", extra=["-X", "debug=conf", "-X", "linger.ms=77",
                                              "-X", "session.timeout.ms=12000",
                                              "-X", "isolation.level=read_committed"]).start()
    T.wait_until("the sampler to consume", lambda: s.consumed() >= len(LINES) or not s.alive(), 120)
    assert s.stop() == 0, s.stderr()[-2000:]
    confs = T.kafka_confs(s.stderr())
    txn = [c for c in confs.values() if c.get("transactional.id") == "%s-0-select" % t["group"]]
    cons = [c for c in confs.values() if c.get("group.id") == t["group"]]
    assert len(txn) == 1 and len(cons) == 1, "clients: %r" % sorted(confs)
    p, c = txn[0], cons[0]
    T.note("producer: %r" % p)
    # librdkafka prints a property under its canonical name: linger.ms is queue.buffering.max.ms
    assert p.get("queue.buffering.max.ms") == "77", "-X over the file and the default: %r" % p
    assert p.get("compression.codec") == "lz4", "the file's kafka.* line over the default: %r" % p
    assert p.get("client.id") == "t2160-file" and c.get("client.id") == "t2160-file", "the file's client.id"
    assert p.get("enable.idempotence") == "true" and p.get("request.required.acks") == "-1", p
    assert p.get("message.max.bytes") == "4194304" and p.get("transaction.timeout.ms") == "30000", p
    assert c.get("session.timeout.ms") == "12000", "-X over a consumer default: %r" % c
    assert c.get("isolation.level") == "read_committed" and c.get("enable.auto.commit") == "false", c
    assert c.get("auto.offset.reset") == "smallest" and c.get("enable.partition.eof") == "false", c
    items = T.items_of(T.consume(t["output"]))
    assert len(items) == len(LINES), "%d items, %d expected" % (len(items), len(LINES))


T.run(x_of_a_required_property_is_refused)
T.run(the_required_value_itself_is_accepted)
T.run(x_and_the_file_change_the_defaults)
T.exit()
