"""tracesift/_native.py - find libtracesift and declare its functions for ctypes

The library is looked for, in order: the file TRACESIFT_LIBRARY names (and
only that one, when it is set); libtracesift.so.1 next to this package; the
lib/ directory of the source tree when the package runs from it
(python/tracesift -> lib/); the system's libtracesift.so.1 (the dynamic
loader's search: LD_LIBRARY_PATH, ldconfig's cache).

Each function is declared twice.  Through PyDLL the call keeps the GIL: it is
cheaper, and right for the calls that never wait (every call a trace makes,
with enqueue.timeout.ms=0).  Through CDLL the GIL is released: used by the
calls that may wait (flush, and the calls that send a trace when
enqueue.timeout.ms > 0), so that the application's other threads go on
meanwhile.
"""
import ctypes
import os

SONAME = "libtracesift.so.1"

TS_OK = 0
TS_ERR_INVALID_ARG = -1
TS_ERR_INVALID = -2
TS_ERR_TOO_LARGE = -3
TS_ERR_QUEUE_FULL = -4
TS_ERR_NOMEM = -5
TS_ERR_CLOSED = -6
TS_ERR_KAFKA = -7
TS_ERR_UNKNOWN_CONF = -8

SPAN_TYPES = {"general": 0, "llm": 1, "retrieval": 2, "tool": 3}


class Stats(ctypes.Structure):
    _fields_ = [("enqueued", ctypes.c_uint64),
                ("delivered", ctypes.c_uint64),
                ("failed", ctypes.c_uint64),
                ("dropped", ctypes.c_uint64),
                ("rejected", ctypes.c_uint64),
                ("in_queue", ctypes.c_uint64),
                ("last_error", ctypes.c_char * 256)]


_P = ctypes.c_void_p
_S = ctypes.c_char_p
_I = ctypes.c_int
_I64 = ctypes.c_int64
_Z = ctypes.c_size_t

# name: (restype, argtypes)
_PROTOTYPES = {
    "ts_err_str": (_S, [_I]),
    "ts_conf_new": (_P, []),
    "ts_conf_set": (_I, [_P, _S, _S, _S, ctypes.c_size_t]),
    "ts_conf_destroy": (None, [_P]),
    "ts_client_new": (_P, [_P, _S, ctypes.c_size_t]),
    "ts_client_flush": (ctypes.c_uint64, [_P, _I]),
    "ts_client_stats": (None, [_P, ctypes.POINTER(Stats)]),
    "ts_trace_begin": (_P, [_P, _S]),
    "ts_trace_id": (_S, [_P]),
    "ts_trace_set_id": (_I, [_P, _S]),
    "ts_trace_set_project": (_I, [_P, _S]),
    "ts_trace_root": (_P, [_P]),
    "ts_trace_end": (_I, [_P]),
    "ts_trace_abandon": (None, [_P]),
    "ts_span_begin": (_P, [_P, _P, _S, _I]),
    "ts_span_end": (None, [_P]),
    "ts_span_id": (_S, [_P]),
    "ts_span_set_input_json": (_I, [_P, _S]),
    "ts_span_set_output_json": (_I, [_P, _S]),
    "ts_span_set_metadata_json": (_I, [_P, _S, _S]),
    "ts_span_add_tag": (_I, [_P, _S]),
    "ts_span_set_model": (_I, [_P, _S]),
    "ts_span_set_usage": (_I, [_P, ctypes.c_int64, ctypes.c_int64]),
    "ts_span_set_error": (_I, [_P, _S, _S]),
    "ts_span_mark_first_token": (_I, [_P]),
    "ts_span_set_ttft_ms": (_I, [_P, ctypes.c_double]),
    # a span in one call: values as data and length (see _UNCHECKED)
    "ts_now_ns": (_I64, []),
    "ts_trace_begin_with": (_I, [_P, _S, _I64, _I, _P, _Z, _P]),
    "ts_trace_end_with": (_I, [_P, _I, _P, _Z, _S, _S]),
    "ts_trace_record": (_I, [_P, _S, _I64, _I, _P, _Z, _P, _Z, _S, _S]),
    "ts_span_begin_with": (_I, [_P, _P, _S, _I, _I64, _I, _P, _Z, _P]),
    "ts_span_end_with": (_I, [_P, _I, _P, _Z, _S, _S]),
    "ts_span_record": (_I, [_P, _P, _S, _I, _I64, _I, _P, _Z, _P, _Z, _S, _S, _P]),
}

# Declared through CDLL too (they may wait): attribute names get a "wait_" prefix.
_WAITING = ("ts_client_flush", "ts_trace_end", "ts_trace_end_with", "ts_trace_record")

# The calls every span makes are declared without argtypes: ctypes then
# converts nothing (with argtypes, each argument costs an object; the call,
# a third more), so the caller must pass exactly what the C function takes:
# pointers as ctypes.c_void_p (or None), int64_t as ctypes.c_int64, size_t
# as ctypes.c_size_t, strings and data as bytes (or None), ints as int.  A
# Python int goes as a C int: given for a pointer it would be cut to 32 bits,
# and given for a size_t beyond the sixth argument (on the stack) it would
# leave half of it unwritten.  Only _span.py calls these.
_UNCHECKED = ("ts_trace_begin_with", "ts_trace_end_with", "ts_trace_record", "ts_span_begin_with",
              "ts_span_end_with", "ts_span_record")
TS_INPUT_MARSHAL = 0x1
TS_OUTPUT_MARSHAL = 0x2


class Library:
    """The loaded library: each function as an attribute (ts_trace_begin, ...),
    and the wait_ variants of _WAITING's, which release the GIL."""

    def __init__(self, path):
        self.path = path
        held = ctypes.PyDLL(path)
        released = ctypes.CDLL(path)
        for name, (restype, argtypes) in _PROTOTYPES.items():
            f = getattr(held, name)
            f.restype, f.argtypes = restype, None if name in _UNCHECKED else argtypes
            setattr(self, name, f)
        for name in _WAITING:
            f = getattr(released, name)
            restype, argtypes = _PROTOTYPES[name]
            f.restype, f.argtypes = restype, None if name in _UNCHECKED else argtypes
            setattr(self, "wait_" + name, f)

    def err_str(self, rc):
        s = self.ts_err_str(rc)
        return s.decode("utf-8", "replace") if s else "error %d" % rc


def candidates():
    """Where the library is looked for, in order (see the top of this file)."""
    env = os.environ.get("TRACESIFT_LIBRARY")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    tree = os.path.join(os.path.dirname(os.path.dirname(here)), "lib", SONAME)
    return [os.path.join(here, SONAME), tree, SONAME]


def _check_sanitizer(path):
    """A library built with AddressSanitizer (make SAN=1) kills the process
    when loaded unless the ASan runtime came first (LD_PRELOAD): refuse it
    with the reason instead."""
    if os.sep not in path:
        return
    with open(path, "rb") as f:
        if b"libasan.so" not in f.read():
            return
    try:
        with open("/proc/self/maps") as f:
            if "libasan" in f.read():
                return
    except OSError:
        return
    raise OSError("built with AddressSanitizer: run Python with LD_PRELOAD=$(gcc -print-file-name=libasan.so) "
                  "ASAN_OPTIONS=detect_leaks=0, or use a build without SAN=1")


def load():
    """The Library, or raises OSError naming every place tried and why it failed."""
    tried = []
    for path in candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append("%s: no such file" % path)
            continue
        try:
            _check_sanitizer(path)
            return Library(path)
        except (OSError, AttributeError) as e:  # AttributeError: a symbol missing (wrong library)
            tried.append("%s: %s" % (path, e))
    raise OSError("cannot load libtracesift (%s)" % "; ".join(tried))
