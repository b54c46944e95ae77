"""tracesift/_json.py - turn any Python value into JSON text a record can carry

The decorator hands inputs and outputs to the library as marshal data, which
the library writes as JSON itself (_span.py); this module encodes what that
path refuses (objects marshal cannot write, sets, bytes, NaN, ...) and what
the application sets with update_current_span() and the like.

The common case costs one call of json's C encoder and one encode to UTF-8.
Only when that fails or the text is too long does a slower path rebuild the
value: objects json cannot encode become their repr, cut to REPR_MAX
characters; NaN and infinities become strings; dict keys become strings;
cycles become "<cycle>"; nesting deeper than MAX_DEPTH becomes the repr of
what is below.  A text longer than the limit is shortened by cutting long
strings and long lists, and, when that is not enough, replaced by a string:
the beginning of the JSON text and a note of its size.

encode() never raises: it returns NUL-free UTF-8 bytes, and counts in
`shortened` the values that took the slow path.
"""
import json
import math

REPR_MAX = 1000       # characters of a repr kept
MAX_DEPTH = 32        # nesting kept by the slow path (a record field may nest 61 deep)
TRUNCATED = "... [truncated, %d characters]"


def _repr(o):
    try:
        r = repr(o)
    except Exception:  # a broken __repr__ must not break tracing
        return "<%s object>" % type(o).__name__
    if not isinstance(r, str):
        return "<%s object>" % type(o).__name__
    return r if len(r) <= REPR_MAX else r[:REPR_MAX] + TRUNCATED % len(r)


def _default(o):
    if isinstance(o, (set, frozenset)):
        return list(o)
    return _repr(o)


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                           default=_default).encode

# The fast path calls json's C encoder directly: JSONEncoder.encode makes a new
# one on every call, which costs more than encoding a few arguments.  Without a
# table of the containers being encoded (markers None) a cycle ends in
# RecursionError, and the slow path takes over.  chunks(value, 0) is the JSON
# text of value as a list of strings (one, in practice); the hot path of the
# decorator calls it inline, as encode() does.
# string(s) is the JSON text of the str s, as chunks() writes it.
try:
    from json.encoder import c_encode_basestring, c_make_encoder
    chunks = c_make_encoder(None, _default, c_encode_basestring, None, ":", ",", False, False, False)
    string = c_encode_basestring
except (ImportError, TypeError):  # json without its C accelerator
    def chunks(value, _level):
        return (_encode(value),)
    from json.encoder import py_encode_basestring as string


def _clean(v, depth, path, max_str, max_items):
    """v rebuilt from JSON-safe parts; path: ids of the containers above."""
    if v is None or v is True or v is False:
        return v
    t = type(v)
    if t is str:
        return v if len(v) <= max_str else v[:max_str] + TRUNCATED % len(v)
    if t is int:
        return v
    if t is float:
        return v if math.isfinite(v) else repr(v)
    if isinstance(v, (dict, list, tuple, set, frozenset)):
        if id(v) in path:
            return "<cycle>"
        if depth >= MAX_DEPTH:
            return _repr(v)
        path.add(id(v))
        try:
            if isinstance(v, dict):
                out = {}
                for i, (k, x) in enumerate(v.items()):
                    if i == max_items:
                        out["..."] = "%d more keys" % (len(v) - max_items)
                        break
                    if not isinstance(k, str):
                        k = json.dumps(k) if k is None or isinstance(k, (int, float, bool)) else _repr(k)
                    out[k] = _clean(x, depth + 1, path, max_str, max_items)
                return out
            items = list(v)
            out = [_clean(x, depth + 1, path, max_str, max_items) for x in items[:max_items]]
            if len(items) > max_items:
                out.append("... %d more items" % (len(items) - max_items))
            return out
        finally:
            path.discard(id(v))
    if isinstance(v, str):
        return _clean(str(v), depth, path, max_str, max_items)
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return _clean(float(v), depth, path, max_str, max_items)
    return _repr(v)


def _utf8(text):
    # Lone surrogates (which UTF-8 cannot carry) become '?'; NUL is escaped by json.
    return text.encode("utf-8", "replace")


shortened = 0  # values that took the slow path (shortened or replaced), for stats()


def encode(value, max_bytes):
    """The JSON text of value as bytes, at most max_bytes long."""
    try:
        text = string(value) if type(value) is str else "".join(chunks(value, 0))
        b = text.encode("utf-8", "replace")  # lone surrogates: '?'
        if len(b) <= max_bytes:
            return b
    except Exception:  # NaN, a cycle, a key json refuses, too deep for the encoder
        pass
    return shorten(value, max_bytes)


def shorten(value, max_bytes):
    """encode() of a value its fast path refused or found too long: counted."""
    global shortened
    shortened += 1
    return encode_safe(value, max_bytes)


def encode_safe(value, max_bytes):
    """The slow path alone: always JSON-safe, nested at most MAX_DEPTH deep."""
    text = None
    for max_str, max_items in ((max_bytes, 100000), (max(64, max_bytes // 16), 1000),
                               (max(32, max_bytes // 256), 50)):
        try:
            text = _encode(_clean(value, 0, set(), max_str, max_items))
        except Exception:
            text = _encode(_repr(value))
        b = _utf8(text)
        if len(b) <= max_bytes:
            return b
    keep = max(0, max_bytes // 4 - 64)  # up to 4 bytes a character, and room for the note
    return _utf8(_encode(text[:keep] + TRUNCATED % len(text)))
