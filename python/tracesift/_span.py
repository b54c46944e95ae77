"""tracesift/_span.py - traces and spans over libtracesift, and the span in context

The span a decorated call runs in is held in a context variable, so that a
decorated call made inside it becomes its child: in the same thread, in an
asyncio task created inside (tasks copy the context), and in a thread started
inside with contextvars.copy_context().run.  The outermost decorated call
begins a trace (its root span carries the record's top-level fields) and
sends it when it returns.

libtracesift forbids touching a trace after ts_trace_end(), and a thread
started inside a call may outlive it.  So every C call on a trace is made
under the trace's lock after checking that the trace is still open: a span
that ends after its trace was sent is counted (late_spans) and dropped, and a
decorated call whose parent's trace was already sent begins a trace of its own.

Nothing here raises into the application: begin() returns None when it cannot
trace, the others return quietly, and failures are counted (_client.fail).
"""
import contextvars
import threading

from . import _client, _json, _native
from ._client import st, fail

current = contextvars.ContextVar("tracesift_span", default=None)

ERROR_MESSAGE_MAX = 2000
_OK = _native.TS_OK
_INVALID = _native.TS_ERR_INVALID
_Lock = threading.Lock


class Trace:
    __slots__ = ("ptr", "root", "lock", "open", "forks", "root_span")

    def __init__(self, ptr, root):
        self.ptr = ptr          # ts_trace_t *
        self.root = root        # its root ts_span_t *
        self.lock = _Lock()
        self.open = True        # False once sent (or abandoned)
        self.forks = st.forks   # a trace inherited through fork() is not sent by the child
        self.root_span = None


class Span:
    __slots__ = ("trace", "ptr", "has_output")

    def __init__(self, trace, ptr):
        self.trace = trace
        self.ptr = ptr          # ts_span_t *, owned by the trace
        self.has_output = False  # set explicitly: the return value does not replace it


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


_encode = _json.encode
# The library's functions, bound once it is loaded (bind()): the hot path
# looks them up as globals.
_span_begin = _span_end = _trace_begin = _trace_root = _set_input = _set_output = None


def bind(lib):
    global _span_begin, _span_end, _trace_begin, _trace_root, _set_input, _set_output
    _span_begin, _span_end = lib.ts_span_begin, lib.ts_span_end
    _trace_begin, _trace_root = lib.ts_trace_begin, lib.ts_trace_root
    _set_input, _set_output = lib.ts_span_set_input_json, lib.ts_span_set_output_json


def begin(name, kind, make_input=None, args=(), kwargs=None, fixed=None):
    """Starts a span named name (bytes) of type kind (int) under the span in
    context, or a trace when there is none.  Its input is make_input(args,
    kwargs) (None: no input; make_input None: the input is args); fixed: fields
    to set at once (update()'s keywords).  Returns the Span, or None when
    tracing is off or failed."""
    try:
        client = st.client
        if client is None:
            client = _client.ensure()
            if client is None:
                return None
        input_value = make_input(args, kwargs) if make_input is not None else args
        data = _encode(input_value, st.max_field_bytes) if input_value is not None else None
        parent = current.get()
        if parent is not None:
            tr = parent.trace
            span = None
            with tr.lock:
                if tr.open and tr.forks == st.forks:
                    ptr = _span_begin(tr.ptr, parent.ptr, name, kind)
                    if ptr is None:
                        fail("span_begin", "cannot begin a span: out of memory")
                        return None
                    if data is not None:
                        rc = _set_input(ptr, data)
                        if rc:
                            _set_retry(_set_input, ptr, rc, input_value, "input")
                    span = Span(tr, ptr)
            if span is not None:
                if fixed:
                    update(span, False, **fixed)  # takes the lock itself
                return span
            # The parent's trace is gone: this call begins a trace of its own.
        tptr = _trace_begin(client, name)
        if tptr is None:
            fail("trace_begin", "cannot begin a trace: out of memory")
            return None
        root = _trace_root(tptr)
        tr = Trace(tptr, root)
        span = tr.root_span = Span(tr, root)
        if data is not None:
            rc = _set_input(root, data)
            if rc:
                _set_retry(_set_input, root, rc, input_value, "input")
        if fixed:
            update(span, False, **fixed)
        return span
    except Exception as e:
        fail("begin", "cannot begin a span: %r" % (e,))
        return None


_NOTHING = object()


def end(span, output=None, exc=None):
    """Ends span with its output (None: none) or the exception it raised; a
    root span sends its trace."""
    try:
        data = None
        if output is not None and not span.has_output:
            data = _encode(output, st.max_field_bytes)
        tr = span.trace
        rc = _OK
        with tr.lock:
            if not tr.open or tr.forks != st.forks:
                if tr.open and span.ptr == tr.root:  # inherited through fork(): free it, send nothing
                    tr.open = False
                    st.lib.ts_trace_abandon(tr.ptr)
                else:
                    _client.count("late_spans")
                return
            ptr = span.ptr
            if exc is not None:
                set_error(ptr, exc)
            if data is not None:
                rc = _set_output(ptr, data)
                if rc:
                    _set_retry(_set_output, ptr, rc, output, "output")
                    rc = _OK
            if ptr == tr.root:
                tr.open = False
                tr.root_span = None
                rc = st.trace_end(tr.ptr)
            else:
                _span_end(ptr)
        if rc != _OK:
            _trace_not_sent(rc)
    except Exception as e:
        fail("end", "cannot end a span: %r" % (e,))


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


def set_error(ptr, exc):
    """Records exc on the span ptr; caller holds the trace's lock."""
    msg = _json._repr(exc) if not _safe_str(exc) else str(exc)
    if len(msg) > ERROR_MESSAGE_MAX:
        msg = msg[:ERROR_MESSAGE_MAX] + _json.TRUNCATED % len(msg)
    st.lib.ts_span_set_error(ptr, _c_text(type(exc).__name__), _c_text(msg))


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
                st.lib.ts_span_mark_first_token(span.ptr)
    except Exception as e:
        fail("mark", "cannot mark the first token: %r" % (e,))


def trace_id(span):
    """The id of span's trace as text, or None once it was sent."""
    try:
        tr = span.trace
        with tr.lock:
            if tr.open and tr.forks == st.forks:
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
        target = tr.root_span if root else span
        ptr = tr.root if root else span.ptr
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
            if data_in is not None:
                rc = _set_input(ptr, data_in)
                if rc:
                    _set_retry(_set_input, ptr, rc, input, "input")
            if data_out is not None:
                rc = _set_output(ptr, data_out)
                if rc:
                    _set_retry(_set_output, ptr, rc, output, "output")
                if target is not None:
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
