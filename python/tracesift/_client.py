"""tracesift/_client.py - configuration, the libtracesift client, flush, stats, failures

One client per process (per configuration): created by configure(), or from
the TRACESIFT_* environment the first time a decorated function runs.  Nothing
here raises into the application: a failure to trace is counted in stats()
and logged once per kind through the "tracesift" logger.

Clients are never destroyed while the process runs, because a trace still
being built on another thread may point at one; configure() called again
starts a new client and keeps the old one for the exit flush.  At exit, every
client is flushed within one bound (exit_timeout).  After a fork the child
starts its own client the first time it traces (the parent's threads do not
exist there), and drops the traces it inherited half-built.
"""
import atexit
import ctypes
import logging
import os
import threading
import time

from . import _json, _native

log = logging.getLogger("tracesift")

DEFAULT_BROKERS = "127.0.0.1:9092"
DEFAULT_EXIT_TIMEOUT = 5.0
DEFAULT_MAX_FIELD_BYTES = 65536


class State:
    """What the hot path reads: client is the C handle (a ctypes.c_void_p), or
    None while there is none (not yet configured, or tracing is off)."""
    __slots__ = ("client", "lib", "forks", "max_field_bytes", "trace_end", "trace_end_with",
                 "trace_record", "exit_timeout", "tried", "settings", "clients", "pid")

    def __init__(self):
        self.client = None
        self.lib = None
        self.forks = 0          # bumped in a child after fork(): traces begun before are not sent
        self.max_field_bytes = DEFAULT_MAX_FIELD_BYTES
        self.trace_end = self.trace_end_with = self.trace_record = None  # the calls that send
        self.exit_timeout = DEFAULT_EXIT_TIMEOUT
        self.tried = False      # a client was attempted (explicitly or from the environment)
        self.settings = None    # the last configure()'s arguments, to start again after a fork
        self.clients = []       # every client of this process, for the exit flush
        self.pid = os.getpid()


st = State()
_lock = threading.RLock()       # configuration, counters, the set of logged failures

# Failures of the package itself (the application's exceptions are not counted here).
_counts = {"errors": 0, "late_spans": 0}
_logged = set()
_last_error = [""]


def fail(kind, message):
    """Counts a failure to trace and logs the first of each kind.  Never raises."""
    try:
        with _lock:
            _counts["errors"] += 1
            _last_error[0] = message
            first = kind not in _logged
            _logged.add(kind)
        if first:
            log.warning("tracesift: %s (tracing goes on; later failures of this kind are counted "
                        "in tracesift.stats(), not logged)", message)
    except Exception:
        pass


def count(name):
    with _lock:
        _counts[name] += 1


def _prop_name(key):
    """linger_ms -> linger.ms; a name with a dot is taken as it is."""
    return key if "." in key else key.replace("_", ".")


def _prop_value(v):
    if v is True or v is False:
        return "true" if v else "false"
    return str(v)


def configure(brokers=None, topic=None, project=None, *, exit_timeout=None,
              max_field_bytes=None, **kafka_properties):
    """Starts the client that decorated functions publish through.

    brokers, topic and project fall back on TRACESIFT_BROKERS, TRACESIFT_TOPIC
    and TRACESIFT_PROJECT, then on 127.0.0.1:9092, llm.traces and "default".
    Every other keyword is a libtracesift or librdkafka property: linger_ms=5
    or **{"linger.ms": 5} (a name without a dot has its '_' read as '.').
    exit_timeout: seconds the exit flush may take (default 5).  max_field_bytes:
    the longest JSON an input, output or metadata value may take before it is
    shortened (default 65536).

    Returns True when the client is ready; False (logged, counted in stats())
    when the library cannot be loaded or a property is refused: decorated
    functions then run untraced.  Never raises for such reasons."""
    settings = dict(brokers=brokers, topic=topic, project=project, exit_timeout=exit_timeout,
                    max_field_bytes=max_field_bytes, kafka_properties=dict(kafka_properties))
    with _lock:
        st.settings = settings
        return _start(settings)


def ensure():
    """The client handle, starting one from the environment the first time;
    None when tracing is off.  The hot path calls this only when st.client is None."""
    if st.client is not None or st.tried:  # after a fork, _after_fork() has reset both
        return st.client
    with _lock:
        if not st.tried:
            _start(st.settings or {})
    return st.client


def _start(s):
    """Creates a client from settings s (see configure); the caller holds _lock."""
    st.tried = True
    try:
        if st.lib is None:
            lib = _native.load()
            from . import _span
            _span.bind(lib)
            st.lib = lib
        lib = st.lib
        props = [("bootstrap.servers", s.get("brokers") or os.environ.get("TRACESIFT_BROKERS") or DEFAULT_BROKERS)]
        for key in ("topic", "project"):
            v = s.get(key) or os.environ.get("TRACESIFT_" + key.upper())
            if v:
                props.append((key, v))
        for k, v in (s.get("kafka_properties") or {}).items():
            props.append((_prop_name(k), _prop_value(v)))
        exit_timeout = float(s["exit_timeout"]) if s.get("exit_timeout") is not None else DEFAULT_EXIT_TIMEOUT
        max_field_bytes = max(256, int(s.get("max_field_bytes") or DEFAULT_MAX_FIELD_BYTES))
        # the library writes values the package hands it as marshal data: same limit
        props.append(("max.field.bytes", str(max_field_bytes)))
        err = ctypes.create_string_buffer(512)
        conf = lib.ts_conf_new()
        if not conf:
            raise MemoryError("out of memory")
        for k, v in props:
            rc = lib.ts_conf_set(conf, k.encode(), v.encode(), err, len(err))
            if rc != _native.TS_OK:
                lib.ts_conf_destroy(conf)
                raise ValueError("property '%s': %s" % (k, err.value.decode("utf-8", "replace")))
        client = lib.ts_client_new(conf, err, len(err))
        if not client:
            lib.ts_conf_destroy(conf)
            raise ValueError(err.value.decode("utf-8", "replace"))
        client = ctypes.c_void_p(client)
    except Exception as e:
        st.client = None
        fail("configure", "cannot start tracing: %s" % e)
        return False
    props = dict(props)
    st.exit_timeout = exit_timeout
    st.max_field_bytes = max_field_bytes
    # The calls that send a trace may wait for room in the queue only when
    # enqueue.timeout.ms > 0: then they must not hold the GIL.
    waits = props.get("enqueue.timeout.ms", "0").strip() not in ("0", "")
    for name in ("trace_end", "trace_end_with", "trace_record"):
        setattr(st, name, getattr(lib, ("wait_ts_" if waits else "ts_") + name))
    st.clients.append(client)
    st.client = client
    st.pid = os.getpid()
    return True


def _after_fork():
    # The parent's clients live on in the parent; here their threads do not exist.
    global _lock
    _lock = threading.RLock()   # another thread may have held it at the fork
    st.client = None
    st.clients = []
    st.tried = False
    st.forks += 1
    st.pid = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def flush(timeout=5.0):
    """Waits up to timeout seconds for every trace enqueued so far to be
    delivered or to fail.  Returns how many are still in the queue (0: done)."""
    clients = list(st.clients)
    if not clients or st.lib is None:
        return 0
    deadline = time.monotonic() + max(0.0, float(timeout))
    left = 0
    for c in clients:
        ms = int(max(0.0, deadline - time.monotonic()) * 1000)
        left += st.lib.wait_ts_client_flush(c, ms)
    return left


def stats():
    """The client's counters (summed over this process's clients) and the
    package's own: enqueued, delivered, failed, dropped, rejected, in_queue,
    last_error (the library's), errors (failures to trace), truncated (values
    shortened to fit max_field_bytes), late_spans (spans that ended after their
    trace was sent), library (the file loaded, or None), configured."""
    out = {"enqueued": 0, "delivered": 0, "failed": 0, "dropped": 0, "rejected": 0, "in_queue": 0,
           "last_error": ""}
    if st.lib is not None:
        s = _native.Stats()
        for c in list(st.clients):
            st.lib.ts_client_stats(c, ctypes.byref(s))
            for k in ("enqueued", "delivered", "failed", "dropped", "rejected", "in_queue"):
                out[k] += getattr(s, k)
            if s.last_error:
                out["last_error"] = s.last_error.decode("utf-8", "replace")
    with _lock:
        out.update(_counts)
        out["truncated"] = _json.shortened
        out["package_error"] = _last_error[0]
    out["library"] = st.lib.path if st.lib is not None else None
    out["configured"] = st.client is not None
    return out


def _at_exit():
    if not st.clients or st.lib is None or os.getpid() != st.pid:
        return
    try:
        t0 = time.monotonic()
        left = flush(st.exit_timeout)
        if left:
            s = stats()
            log.warning("tracesift: %d traces not delivered at exit after %.1f s%s", left,
                        time.monotonic() - t0,
                        "; last error: " + s["last_error"] if s["last_error"] else "")
    except Exception:
        pass


atexit.register(_at_exit)
