#!/usr/bin/env python3
"""tests/integration/t3304-sink-fsync.py - fsync errors: the sink stops advancing and never trusts a failed fsync

A preloaded shim makes fsync/fdatasync fail with EIO on the store files whose
path holds a given string, for as long as a control file names it.  A file
descriptor whose fsync failed is "poisoned" until it is closed: Linux may
have dropped its dirty pages, so a later fsync on it that succeeds proves
nothing (the PostgreSQL "fsyncgate").  The shim logs any fsync on a poisoned
descriptor, and the test requires there is none.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tslib as T  # noqa: E402

SEED = 3304
SHIM_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char poisoned[65536];
static int (*real_close)(int);

static void say(const char *what, int fd, const char *path)
{
	const char *log = getenv("TS_SHIM_LOG");
	if (!real_close)
		real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
	int lfd = log ? open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600) : -1;
	if (lfd >= 0) {
		char line[4200];
		int n = snprintf(line, sizeof(line), "%s %d %s\n", what, fd, path);
		if (write(lfd, line, (size_t)n) < 0) {}
		real_close(lfd);
	}
}

/* 1: fail this fsync.  The control file holds lines: a substring of the path,
 * or "=PATH" for the path itself. */
static int should_fail(int fd, char *path, size_t size)
{
	char link[64];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, size - 1);
	path[n > 0 ? n : 0] = '\0';
	const char *ctl = getenv("TS_SHIM_CTL");
	FILE *f = ctl ? fopen(ctl, "re") : NULL;
	if (!f)
		return 0;
	char want[4096];
	int hit = 0;
	while (!hit && fgets(want, sizeof(want), f)) {
		want[strcspn(want, "\n")] = '\0';
		if (want[0] == '=')
			hit = !strcmp(path, want + 1);
		else
			hit = want[0] && strstr(path, want) != NULL;
	}
	fclose(f);
	return hit;
}

static int sync_common(int fd, int (*real)(int), const char *name)
{
	char path[4096];
	int fail = should_fail(fd, path, sizeof(path));
	if (fd >= 0 && fd < (int)sizeof(poisoned) && poisoned[fd])
		say("RETRY", fd, path);
	if (fail) {
		if (fd >= 0 && fd < (int)sizeof(poisoned))
			poisoned[fd] = 1;
		say(name, fd, path);
		errno = EIO;
		return -1;
	}
	return real(fd);
}

int fsync(int fd)
{
	static int (*real)(int);
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	return sync_common(fd, real, "fail-fsync");
}

int fdatasync(int fd)
{
	static int (*real)(int);
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	return sync_common(fd, real, "fail-fdatasync");
}

int close(int fd)
{
	if (!real_close)
		real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
	if (fd >= 0 && fd < (int)sizeof(poisoned))
		poisoned[fd] = 0;
	return real_close(fd);
}
"""


def build_shim():
    src, so = T.workfile("fsync-shim.c"), T.workfile("fsync-shim.so")
    with open(src, "w") as f:
        f.write(SHIM_C)
    p = subprocess.run([os.environ.get("CC") or "cc", "-shared", "-fPIC", "-O1", "-o", so, src, "-ldl"],
                       capture_output=True)
    return so if p.returncode == 0 else None


RECS = T.records(3000, seed=SEED)
MSGS = {0: [T.dumps(m).encode() for m in T.sink_messages(RECS[:1500], "io-a", 50, seed=SEED)],
        1: [T.dumps(m).encode() for m in T.sink_messages(RECS[1500:], "io-b", seed=SEED)]}


def fsync_fails(name, what):
    """Streams items to a sink; while it works, fsync fails on the files what names
    (a line of the control file); then it works again."""
    shim = build_shim.so
    topic = T.create_topic(T.topic("sink-io-" + name), 2, max_message_bytes=4194304)
    dlq = T.create_topic(T.topic("sink-io-dlq"), 1)
    store = T.workfile("store-" + name)
    ctl, log = T.workfile(name + ".ctl"), T.workfile(name + ".log")
    env = {"LD_PRELOAD": shim, "TS_SHIM_CTL": ctl, "TS_SHIM_LOG": log,
           "ASAN_OPTIONS": (os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")}
    s = T.Sink(store, topic, dlq, extra=["--commit-interval-ms", "200"], name=name).start(env=env)
    half = {p: lines[:len(lines) // 2] for p, lines in MSGS.items()}
    rest = {p: lines[len(lines) // 2:] for p, lines in MSGS.items()}
    T.produce_paced(topic, half, 2, key=lambda l: T._msg(l)[1])
    s.wait_consumed(1)
    with open(ctl, "w") as f:
        f.write(what(store) + "\n")
    T.produce_paced(topic, rest, 1, key=lambda l: T._msg(l)[1])
    T.wait_until("the sink to say the fsync failed", lambda: "Input/output error" in s.stderr() or not s.alive(), 60)
    assert s.alive(), "sink stopped (exit %s): %s" % (s.proc.returncode, s.stderr()[-2000:])
    T.wait_until("a stats line with store_writable false", lambda: s.stats().get("store_writable") is False, 30)
    offs = T.store_offsets(store, topic)
    consumed, failures = s.consumed(), s.stats()["commit_failures"]
    time.sleep(T.timeout(1) + 2.5)
    st = s.stats()
    assert s.alive() and st["consumed"] == consumed and st["store_writable"] is False, "still consuming: %r" % st
    assert st["commit_failures"] >= failures + 2, "not retrying: %r" % st
    assert T.store_offsets(store, topic) == offs, "offsets moved while fsync failed"
    T.store_expect(store, topic, MSGS)
    err = [l for l in s.stderr().splitlines() if "Input/output error" in l]
    T.note("offsets %s; it says: %s" % (offs, err[0]))
    assert err[0].startswith("% ERROR: ") and "not advancing" in err[0], err[0]
    os.unlink(ctl)   # the disk works again
    ends = T.end_offsets(topic, 2)
    T.wait_until("the sink to resume and reach the ends %r" % ends,
                 lambda: T.store_offsets(store, topic) == ends or not s.alive(), 120)
    assert "store writable again" in s.stderr(), s.stderr()[-2000:]
    assert s.stop() == 0, "SIGTERM: " + s.stderr()[-2000:]
    T.store_expect(store, topic, MSGS, at_end=True)
    with open(log) as f:
        shim_log = f.read().splitlines()
    fails = [l for l in shim_log if l.startswith("fail")]
    retries = [l for l in shim_log if l.startswith("RETRY")]
    T.note("%d failed fsyncs, e.g. %s" % (len(fails), fails[0] if fails else "-"))
    assert fails, "no fsync failed: the shim did not work"
    assert not retries, "fsync called again on a descriptor whose fsync failed:\n" + "\n".join(retries[:10])


def fsync_of_a_segment_fails():
    fsync_fails("seg", lambda store: "/seg-")


def fsync_of_the_id_index_fails():
    fsync_fails("ids", lambda store: "/datasets/io-b/ids")


def fsync_of_the_manifest_fails():
    fsync_fails("manifest", lambda store: "MANIFEST.tmp")


def fsync_of_the_store_folder_fails():
    """After the rename: the new MANIFEST is visible but not known durable."""
    fsync_fails("folder", lambda store: "=" + os.path.realpath(store))


build_shim.so = build_shim()
CASES = [fsync_of_a_segment_fails, fsync_of_the_id_index_fails, fsync_of_the_manifest_fails,
         fsync_of_the_store_folder_fails]
for case in CASES:
    if build_shim.so:
        T.run(case)
    else:
        print("ok - %s # skip: cannot build the fsync shim with cc" % case.__name__, flush=True)
T.exit()
