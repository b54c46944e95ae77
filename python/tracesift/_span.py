"""tracesift/_span.py - traces and spans over libtracesift, and the span in context

The span a decorated call runs in is held in a context variable, so that a
decorated call made inside it becomes its child: in the same thread, in an
asyncio task created inside (tasks copy the context), and in a thread started
inside (_threads.py makes threads and executors carry the context).  The
outermost decorated call begins a trace (its root span carries the record's
top-level fields) and sends it when it returns.

What a call costs is mostly Python's, so the hot path does as little as it
can.  Inputs and outputs are handed to the library as marshal.dumps(value,
4), several times faster than json.dumps, and the library writes the JSON;
a value it refuses (a set, bytes, NaN, an object marshal cannot write, ...)
goes as JSON instead (_json).  And each call into the library costs a few
hundred nanoseconds through ctypes, so spans reach it as late and in as few
calls as they can: until it ends, a span is a Python object holding its
start time (read from the library's clock) and its input; when it ends,
ts_span_record() adds it finished.  A span that something needs in the
library before it ends (a child that ends first, fields set from the
application, a first token) is begun there then, at its own start time
(ts_span_begin_with()), and ended by ts_span_end_with().  The trace is begun
in the library when its first span needs it, and its root's end sends it
(ts_trace_end_with()); a trace of one span is one call (ts_trace_record()).
A request of five spans makes six calls.

libtracesift forbids touching a trace after it was sent, and a thread started
inside a call may outlive it.  So every C call on a trace is made under the
trace's lock after checking that the trace is still open.  When the root ends,
the spans still open (on other threads, in other tasks) are begun in the
library, so that they end with the trace; their own end, later, is counted
(late_spans) and dropped.  A decorated call that begins after its parent's
trace was sent begins a trace of its own.  A span whose parent ended while
the trace is still open (a thread outliving the call that started it) is its
parent's child like any other: an ended span stays in the library until its
trace is sent.

Nothing here raises into the application: begin() returns None when it cannot
trace, the others return quietly, and failures are counted (_client.fail).
"""
import contextvars
import ctypes
import json
import marshal
import threading
import time

from . import _client, _json, _native
from ._client import st, fail

current = contextvars.ContextVar("tracesift_span", default=None)

ERROR_MESSAGE_MAX = 2000
_OK = _native.TS_OK
_INVALID = _native.TS_ERR_INVALID
_IN_M = _native.TS_INPUT_MARSHAL
_OUT_M = _native.TS_OUTPUT_MARSHAL
_Lock = threading.Lock
_P = ctypes.c_void_p
_I64 = ctypes.c_int64
_Z = ctypes.c_size_t
_monotonic_ns = time.monotonic_ns
_dumps = marshal.dumps
_encode = _json.encode
# The library's clock minus time.monotonic_ns()'s, in nanoseconds: both read
# CLOCK_MONOTONIC on Linux (0); bind() measures it in case they do not.
_clock_offset = 0


def _length(data):
    """len(data) as the c_size_t the library's calls take (0 for None: ignored then)."""
    return _Z(len(data)) if data is not None else 0


class Site:
    """What every call of one decorated function shares."""
    __slots__ = ("name", "kind", "make_input", "fixed")

    def __init__(self, name, kind, make_input, fixed=None):
        self.name = name                # bytes
        self.kind = kind                # the span type, an int
        self.make_input = make_input    # (args, kwargs) -> the input, or None
        self.fixed = fixed              # fields set on every span (update()'s keywords), or None


class Trace:
    __slots__ = ("ptr", "lock", "open", "forks", "root_span", "client", "spans", "out", "out_ref",
                 "start", "in_len", "out_len")

    def __init__(self, client):
        self.ptr = None         # ts_trace_t * (a c_void_p), once begun in the library
        self.lock = _Lock()
        self.open = True        # False once sent (or abandoned)
        self.forks = st.forks   # a trace inherited through fork() is not sent by the child
        self.root_span = None   # while open
        self.client = client    # where it goes (configure() may start another client meanwhile)
        self.spans = []         # its other spans, in the order they began, for the root's end
        self.out = None         # a pointer the library fills in (the *_with and *_record
        self.out_ref = None     # calls' last argument) and a reference to it; and the c_int64
        self.start = self.in_len = self.out_len = None  # and c_size_ts the calls take, set
        # before each call: all made when the trace is begun in the library, used under the lock


class Span:
    __slots__ = ("trace", "parent", "site", "start", "data", "flags", "ptr", "has_output", "ended")

    def __init__(self, trace, parent, site, data, flags):
        self.trace = trace
        self.parent = parent    # the parent Span; None for the root
        self.site = site
        self.start = _monotonic_ns() + _clock_offset  # the library's clock, ns
        self.data = data        # the input (bytes, or None) until the library has it:
        self.flags = flags      # marshal data (_IN_M) or JSON (0)
        self.ptr = None         # ts_span_t * (an int), once in the library (owned by the trace)
        self.has_output = False  # set explicitly: the return value does not replace it
        self.ended = False


def _set_retry(setter, ptr, rc, value, what):
    """After setter(ptr, json) returned rc != TS_OK: when the library refused the
    JSON (nesting deeper than a field may), once more with the value's safe
    form.  Caller holds the lock."""
    if rc == _INVALID:
        rc = setter(ptr, _json.encode_safe(value, st.max_field_bytes))
    if rc != _OK:
        fail("set_" + what, "cannot set %s: %s" % (what, st.lib.err_str(rc)))


def encode(value):
    """JSON bytes of value for a field (shortened to max_field_bytes)."""
    return _json.encode(value, st.max_field_bytes)


def _as_json(data, marshalled, safe):
    """A value the library refused, given as data (marshal data or JSON), as
    JSON: json's text, shortened to max_field_bytes; with safe, the slow
    path's, nested no deeper than a field may be.  None stays None."""
    if data is None:
        return None
    try:
        value = marshal.loads(data) if marshalled else json.loads(data)
    except Exception:  # deeper than the parser goes
        value = "<a value nested too deeply: %d bytes>" % len(data)
    return _json.encode_safe(value, st.max_field_bytes) if safe else _encode(value, st.max_field_bytes)


def _retry(call, head, flags, values, tail):
    """call(*head, flags, data, len, ..., *tail) after it refused a value:
    once more with every value as JSON, then as the slow path's JSON.
    values: the data (bytes or None) in order; flags says which are marshal
    data (_IN_M for the first when there are two, _OUT_M for the last)."""
    rc = _INVALID
    marshalled = [bool(flags & _IN_M), bool(flags & _OUT_M)] if len(values) == 2 else [bool(flags)]
    for safe in (False, True):
        if not safe and not any(marshalled):
            continue  # already JSON: only the slow path can help
        args = list(head) + [0]
        for data, m in zip(values, marshalled):
            data = _as_json(data, m, safe)
            args += [data, _length(data)]
        rc = call(*(args + list(tail)))
        if rc != _INVALID:
            return rc
    return rc


# The library's functions, bound once it is loaded (bind()): the hot path
# looks them up as globals.  The *_with and *_record ones convert no argument
# (see _native._UNCHECKED): pointers go as c_void_p, times as c_int64.
_span_record = _span_begin_with = _span_end_with = _trace_begin_with = _trace_root = None
_set_input = _set_output = None


def bind(lib):
    global _span_record, _span_begin_with, _span_end_with, _trace_begin_with, _trace_root
    global _set_input, _set_output, _clock_offset
    _span_record, _span_begin_with = lib.ts_span_record, lib.ts_span_begin_with
    _span_end_with, _trace_begin_with = lib.ts_span_end_with, lib.ts_trace_begin_with
    _trace_root = lib.ts_trace_root
    _set_input, _set_output = lib.ts_span_set_input_json, lib.ts_span_set_output_json
    offset = lib.ts_now_ns() - _monotonic_ns()
    _clock_offset = offset if abs(offset) > 1000000000 else 0


def begin(site, args, kwargs):
    """Starts a span of site (its input: site.make_input(args, kwargs)) under
    the span in context, or a trace when there is none.  Returns the Span,
    or None when tracing is off or failed.  Calls the library only when the
    site has fixed fields."""
    try:
        client = st.client
        if client is None:
            client = _client.ensure()
            if client is None:
                return None
        value = site.make_input(args, kwargs)
        data, flags = None, 0
        if value is not None:  # marshal data, or JSON when marshal cannot write it
            try:
                data, flags = _dumps(value, 4), _IN_M
            except Exception:
                data = _encode(value, st.max_field_bytes)
        parent = current.get()
        if parent is not None:
            tr = parent.trace
            if tr.open and tr.forks == st.forks:
                span = Span(tr, parent, site, data, flags)
                tr.spans.append(span)
                if not tr.open:  # sent meanwhile, by another thread
                    _orphaned(span, client)
                if site.fixed:
                    update(span, False, **site.fixed)
                return span
            # The parent's trace is gone: this call begins a trace of its own.
        tr = Trace(client)
        span = tr.root_span = Span(tr, None, site, data, flags)
        if site.fixed:
            update(span, False, **site.fixed)
        return span
    except Exception as e:
        fail("begin", "cannot begin a span: %r" % (e,))
        return None


def _orphaned(span, client):
    """span joined a trace whose root was ending: it stays in that trace when
    the root's end saw it (and ends with the trace), or begins one of its own."""
    with span.trace.lock:  # the root's end holds it until it is done
        if span.ptr is not None:
            return
    tr = Trace(client)
    span.trace, span.parent, tr.root_span = tr, None, span


_NOTHING = object()


def end(span, output=None, exc=None):
    """Ends span with its output (None: none) or the exception it raised; a
    root span sends its trace."""
    try:
        data, flags = None, 0
        if output is not None and not span.has_output:  # as the input in begin()
            try:
                data, flags = _dumps(output, 4), _OUT_M
            except Exception:
                data = _encode(output, st.max_field_bytes)
        etype = emsg = None
        if exc is not None:
            etype, emsg = _error_text(exc)
        tr = span.trace
        rc = _OK
        lock = tr.lock
        lock.acquire()  # not "with": half the cost, on every span
        try:
            if not tr.open or tr.forks != st.forks:
                if tr.open and span.parent is None:  # inherited through fork(): free it, send nothing
                    tr.open = False
                    tr.root_span = None
                    if tr.ptr is not None:
                        st.lib.ts_trace_abandon(tr.ptr)
                else:
                    _client.count("late_spans")
                return
            parent = span.parent
            if parent is None:
                rc = _send(tr, span, data, flags, etype, emsg)
            elif span.ptr is None and parent.parent is None and tr.ptr is not None:
                # The usual span, a child of the root not yet in the library:
                # _end_span() inline, as far as the library takes it.
                span.ended = True
                idata = span.data
                if idata is not None:
                    tr.in_len.value = len(idata)
                if data is not None:
                    tr.out_len.value = len(data)
                start = tr.start
                start.value = span.start
                site = span.site
                if _span_record(tr.ptr, None, site.name, site.kind, start, flags | span.flags, idata, tr.in_len,
                                data, tr.out_len, etype, emsg, tr.out_ref) == _OK:
                    span.ptr = tr.out.value
                    span.data = None
                else:
                    span.ended = False
                    _end_span(tr, span, data, flags, etype, emsg)
            else:
                _end_span(tr, span, data, flags, etype, emsg)
        finally:
            lock.release()
        if rc != _OK:
            _trace_not_sent(rc)
    except Exception as e:
        fail("end", "cannot end a span: %r" % (e,))


def _end_span(tr, span, data, flags, etype, emsg):
    """Ends span (not a root) in the library with its output (data, flags:
    _OUT_M or 0); caller holds the open trace's lock."""
    span.ended = True
    if span.ptr is not None:  # begun there already
        n = _length(data)
        ptr = _P(span.ptr)
        rc = _span_end_with(ptr, flags, data, n, etype, emsg)
        if rc == _INVALID:
            rc = _retry(_span_end_with, (ptr,), flags, (data,), (etype, emsg))
        if rc != _OK:
            fail("span_end", "cannot end a span: %s" % st.lib.err_str(rc))
            _span_end_with(ptr, 0, None, 0, None, None)
        return
    if tr.ptr is None:
        _begin_trace(tr)
    parent = span.parent
    pptr = None if parent.parent is None else _parent_ptr(parent)
    site = span.site
    start = tr.start
    start.value = span.start
    idata = span.data
    flags |= span.flags
    if idata is not None:
        tr.in_len.value = len(idata)
    if data is not None:
        tr.out_len.value = len(data)
    rc = _span_record(tr.ptr, pptr, site.name, site.kind, start, flags,
                      idata, tr.in_len, data, tr.out_len, etype, emsg, tr.out_ref)
    if rc == _INVALID:
        rc = _retry(_span_record, (tr.ptr, pptr, site.name, site.kind, start), flags, (idata, data),
                    (etype, emsg, tr.out_ref))
    if rc != _OK:
        fail("span_record", "cannot record a span: %s" % st.lib.err_str(rc))
        return
    span.ptr = tr.out.value
    span.data = None


def _parent_ptr(parent):
    """What names parent to the library: NULL (None) for the root, else its
    pointer as a c_void_p (beginning it there if needed; None when it ended
    without getting there).  Caller holds the open trace's lock."""
    if parent.parent is None:
        return None
    ptr = _span_ptr(parent)
    return _P(ptr) if ptr is not None else None


def _span_ptr(span):
    """span's ts_span_t * (an int), beginning it (and its trace, and its
    parents) in the library when it is not there yet; None when it cannot be
    (it ended without getting there, or the library refused it: counted).
    Caller holds the open trace's lock."""
    if span.ptr is not None:
        return span.ptr
    tr = span.trace
    if tr.ptr is None:
        _begin_trace(tr)
    if span.parent is None:
        span.ptr = _trace_root(tr.ptr)
        return span.ptr
    if span.ended:
        return None
    pptr = _parent_ptr(span.parent)
    site = span.site
    start = _I64(span.start)
    data = span.data
    rc = _span_begin_with(tr.ptr, pptr, site.name, site.kind, start, span.flags, data,
                          _length(data), tr.out_ref)
    if rc == _INVALID:
        rc = _retry(_span_begin_with, (tr.ptr, pptr, site.name, site.kind, start), span.flags, (data,),
                    (tr.out_ref,))
    if rc != _OK:
        fail("span_begin", "cannot begin a span: %s" % st.lib.err_str(rc))
        return None
    span.ptr = tr.out.value
    span.data = None
    return span.ptr


class _NotTraced(Exception):
    pass


def _begin_trace(tr):
    """Begins the open trace tr in the library; caller holds its lock.
    Raises _NotTraced when the library cannot (counted by the caller)."""
    root = tr.root_span
    ptr = _P()
    ref = ctypes.byref(ptr)
    site = root.site
    start = _I64(root.start)
    data = root.data
    rc = _trace_begin_with(tr.client, site.name, start, root.flags, data,
                           _length(data), ref)
    if rc == _INVALID:
        rc = _retry(_trace_begin_with, (tr.client, site.name, start), root.flags, (data,), (ref,))
    if rc != _OK:
        raise _NotTraced("cannot begin a trace: %s" % st.lib.err_str(rc))
    tr.ptr = ptr
    tr.out = out = _P()
    tr.out_ref = ctypes.byref(out)
    tr.start, tr.in_len, tr.out_len = _I64(), _Z(), _Z()
    root.data = None


def _send(tr, root, data, flags, etype, emsg):
    """Ends the open trace tr at its root's end, with the root's output
    (data, flags: _OUT_M or 0), and sends it; caller holds its lock.
    Returns the library's answer."""
    tr.open = False
    spans, tr.spans = tr.spans, []
    site = root.site
    n = _length(data)
    if tr.ptr is None and not spans:  # a trace of one span: one call
        start = _I64(root.start)
        idata = root.data
        flags |= root.flags
        rc = st.trace_record(tr.client, site.name, start, flags, idata,
                             _length(idata), data, n, etype, emsg)
        if rc == _INVALID:
            rc = _retry(st.trace_record, (tr.client, site.name, start), flags, (idata, data), (etype, emsg))
        root.data = tr.root_span = None
        return rc
    try:
        if tr.ptr is None:
            _begin_trace(tr)
    finally:
        tr.root_span = None
    try:
        for s in spans:  # those still open end with the trace
            if s.ptr is None and not s.ended:
                _span_ptr(s)
    except Exception as e:
        fail("sweep", "cannot end the spans still open with their trace: %r" % (e,))
    rc = st.trace_end_with(tr.ptr, flags, data, n, etype, emsg)
    if rc == _INVALID:  # refused: the trace is still there
        rc = _retry(st.trace_end_with, (tr.ptr,), flags, (data,), (etype, emsg))
        if rc == _INVALID:
            fail("trace_end", "cannot set the output of a trace: %s" % st.lib.err_str(rc))
            rc = st.trace_end(tr.ptr)
    return rc


def _trace_not_sent(rc):
    # The library has counted it already (dropped or rejected): say why, once.
    if rc == _native.TS_ERR_QUEUE_FULL:
        fail("queue_full", "a trace was dropped: the queue is full (is the broker reachable? "
             "see stats() 'dropped' and queue.buffering.max.messages)")
    elif rc == _native.TS_ERR_TOO_LARGE:
        fail("too_large", "a trace was rejected: its record is larger than max.record.bytes "
             "(lower max_field_bytes, or raise max.record.bytes)")
    else:
        fail("trace_end_%d" % rc, "a trace was not sent: %s" % st.lib.err_str(rc))


def _error_text(exc):
    """The error type and message of exc for the library, as C strings."""
    msg = _json._repr(exc) if not _safe_str(exc) else str(exc)
    if len(msg) > ERROR_MESSAGE_MAX:
        msg = msg[:ERROR_MESSAGE_MAX] + _json.TRUNCATED % len(msg)
    return _c_text(type(exc).__name__), _c_text(msg)


def _safe_str(exc):
    try:
        str(exc)
        return True
    except Exception:
        return False


def _c_text(s):
    """s as a NUL-terminated C string: NUL removed, lone surrogates as '?'."""
    return s.replace("\0", "").encode("utf-8", "replace")


def mark_first_token(span):
    try:
        tr = span.trace
        with tr.lock:
            if tr.open and tr.forks == st.forks:
                ptr = _span_ptr(span)
                if ptr is not None:
                    st.lib.ts_span_mark_first_token(ptr)
    except Exception as e:
        fail("mark", "cannot mark the first token: %r" % (e,))


def trace_id(span):
    """The id of span's trace as text, or None once it was sent."""
    try:
        tr = span.trace
        with tr.lock:
            if tr.open and tr.forks == st.forks:
                if tr.ptr is None:
                    _begin_trace(tr)
                tid = st.lib.ts_trace_id(tr.ptr)
                return tid.decode() if tid else None
    except Exception as e:
        fail("trace_id", "cannot read the trace id: %r" % (e,))
    return None


# ---- setting fields from the application ----------------------------------

def _usage_pair(usage):
    """(input, output) tokens of a mapping or an object (OpenAI's usage too)."""
    get = usage.get if hasattr(usage, "get") else (lambda k: getattr(usage, k, None))
    i = get("input_tokens")
    o = get("output_tokens")
    if i is None:
        i = get("prompt_tokens")
    if o is None:
        o = get("completion_tokens")
    return int(i or 0), int(o or 0)


def update(span, root, input=_NOTHING, output=_NOTHING, metadata=None, tags=None, usage=None,
           model=None, time_to_first_token_ms=None, project=None):
    """Sets fields on span (root: its trace's root); see update_current_span."""
    try:
        tr = span.trace
        lib = st.lib
        # Encode outside the lock.
        data_in = encode(input) if input is not _NOTHING else None
        data_out = encode(output) if output is not _NOTHING else None
        meta = [(_c_text(str(k)), encode(v), v) for k, v in metadata.items()] if metadata else ()
        if isinstance(tags, str):
            tags = [tags]
        tags = [_c_text(str(t)) for t in tags] if tags else ()
        pair = _usage_pair(usage) if usage is not None else None
        with tr.lock:
            if not tr.open or tr.forks != st.forks:
                return
            target = tr.root_span if root else span
            ptr = _span_ptr(target)
            if ptr is None:
                return
            if data_in is not None:
                rc = _set_input(ptr, data_in)
                if rc:
                    _set_retry(_set_input, ptr, rc, input, "input")
            if data_out is not None:
                rc = _set_output(ptr, data_out)
                if rc:
                    _set_retry(_set_output, ptr, rc, output, "output")
                target.has_output = True
            for k, data, v in meta:
                rc = lib.ts_span_set_metadata_json(ptr, k, data)
                if rc == _INVALID:
                    rc = lib.ts_span_set_metadata_json(ptr, k, _json.encode_safe(v, st.max_field_bytes))
                if rc != _OK:
                    fail("set_metadata", "cannot set metadata: %s" % lib.err_str(rc))
            for t in tags:
                lib.ts_span_add_tag(ptr, t)
            if pair is not None and lib.ts_span_set_usage(ptr, pair[0], pair[1]) != _OK:
                fail("set_usage", "cannot set usage %r: token counts must be non-negative" % (pair,))
            if model is not None:
                lib.ts_span_set_model(ptr, _c_text(str(model)))
            if time_to_first_token_ms is not None:
                lib.ts_span_set_ttft_ms(ptr, float(time_to_first_token_ms))
            if project is not None:
                lib.ts_trace_set_project(tr.ptr, _c_text(str(project)))
    except Exception as e:
        fail("update", "cannot update a span: %r" % (e,))
