#!/usr/bin/env python3
"""tests/integration/t4220-evaluator-kafka.py - the alert producer's Kafka properties: defaults, then kafka.* and -X, then enable.idempotence, which cannot be changed"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tslib as T  # noqa: E402

EVALUATOR = os.path.join(T.BIN, "tracesift-evaluator")


def evaluator(args, seconds=60):
    """Runs tracesift-evaluator to its end: (exit status, stdout, stderr)."""
    p = subprocess.run([EVALUATOR] + args, capture_output=True, text=True, timeout=T.timeout(seconds))
    return p.returncode, p.stdout, p.stderr


def conf_file(lines, name):
    path = T.workfile(name + ".conf")
    with open(path, "w") as f:
        f.write("[evaluator]\nbrokers = %s\n" % T.BROKERS + "".join(l + "\n" for l in lines))
    return path


def refused(args, *want):
    store = T.workfile("store-refused")
    rc, out, err = evaluator(args + ["--store", store, "-X", "debug=conf"])
    T.assert_refused(args, rc, err, *want)
    assert out == "" and not os.path.exists(store), "%r: went on after the refusal" % (args,)


def idempotence_cannot_be_turned_off():
    need = ("the evaluator's alert producer needs enable.idempotence=true", "it cannot be changed")
    # every command that starts the evaluator: watch refuses at once, not after waiting for a store
    for cmd in ("once", "watch", "check"):
        refused([cmd, "-b", T.BROKERS, "-X", "enable.idempotence=false"], "-X enable.idempotence=false: ", *need)
    path = conf_file(["kafka.linger.ms = 5", "kafka.enable.idempotence = false"], "bad")
    refused(["once", "-c", path], "'%s': kafka.enable.idempotence = false: " % path, *need)
    refused(["once", "-b", T.BROKERS, "-X", "no.such.property=1"],
            "-X no.such.property=1: No such configuration property")
    refused(["once", "-b", T.BROKERS, "-X", "message.timeout.ms=soon"], "Invalid value")
    # the value itself, and a flag over the file's line, are accepted
    for args in (["-X", "enable.idempotence=true"], ["-c", path, "-X", "enable.idempotence=true"]):
        rc, out, err = evaluator(["check", "-b", T.BROKERS, "--store", T.workfile("store-ok")] + args)
        assert rc == 0 and "alerts to" in out, "%r: exit %d: %s" % (args, rc, err[-1500:])


def client_conf(text):
    """{property: value} that librdkafka printed under debug=conf for the producer."""
    conf = {}
    for name, c in T.kafka_confs(text).items():
        if "#producer-" in name:
            conf.update(c)
    return conf


def x_and_the_file_change_the_defaults():
    # an empty store: the sink makes it before it finds its topic absent
    store = T.workfile("store")
    p = subprocess.run([os.path.join(T.BIN, "tracesift-sink"), "-b", T.BROKERS, "-t", T.topic("absent"),
                        "--store", store, "-q"], capture_output=True, text=True, timeout=T.timeout(60))
    assert os.path.exists(os.path.join(store, "MANIFEST")), "no empty store: " + p.stderr[-1500:]
    path = conf_file(["kafka.message.timeout.ms = 7000", "kafka.linger.ms = 20"], "tuned")
    rc, out, err = evaluator(["once", "-c", path, "--store", store, "-X", "debug=conf", "-X", "linger.ms=5",
                              "-X", "enable.idempotence=true"])
    assert rc == 0, "exit %d: %s" % (rc, err[-2000:])
    c = client_conf(err)
    T.note("alert producer: %r" % c)
    # librdkafka prints a property under its canonical name: linger.ms is queue.buffering.max.ms
    assert c.get("queue.buffering.max.ms") == "5", "-X over the file and the default: %r" % c
    assert c.get("message.timeout.ms") == "7000", "the file's kafka.* line over the default: %r" % c
    assert c.get("client.id") == "tracesift-evaluator", "the default client.id: %r" % c
    assert c.get("enable.idempotence") == "true", c


T.run(idempotence_cannot_be_turned_off)
T.run(x_and_the_file_change_the_defaults)
T.exit()
