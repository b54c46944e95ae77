"""tracesift/_track.py - the @track decorator

One wrapper per kind of callable: function (and method), coroutine function,
generator function, async generator function; each keeps the kind, so that
inspect and frameworks (FastAPI's dependencies, Starlette's streaming) see
what they saw before.  A wrapper runs the function unchanged when tracing is
off or fails; the function's own exceptions pass through untouched (recorded
on the span first).

Input: the arguments by parameter name ({"question": ..., "k": 5}), without
self/cls; extra positional arguments under the *args name, keywords as given.
Output: the return value; for a generator, the items joined when they are all
strings, else their list.  A generator's span begins when iteration begins,
under the span current at that moment, and its first item marks the time to
first token.
"""
import builtins
import functools
import inspect

from . import _client, _span
from ._client import st
from ._native import SPAN_TYPES

_current = _span.current
_begin = _span.begin
_end = _span.end
_ensure = _client.ensure

OUTPUT_ITEMS_MAX = 10000   # items of a generator kept for its output


def _input_maker(fn, skip_first):
    """A function (args, kwargs) -> the input dict for calls of fn."""
    code = getattr(inspect.unwrap(fn), "__code__", None)
    if code is None:  # a builtin or callable object: no parameter names to use
        def make(args, kwargs):
            d = {"args": list(args)} if args else {}
            d.update(kwargs)
            return d or None
        return make
    names = code.co_varnames[:code.co_argcount]
    star = "args"
    if code.co_flags & inspect.CO_VARARGS:
        star = code.co_varnames[code.co_argcount + code.co_kwonlyargcount]
    first = 1 if skip_first and names and names[0] in ("self", "cls") else 0
    names = names[first:]
    n = len(names)
    # Calls with one or two positional arguments are the most common: their
    # dict is built directly (dict(zip()) costs twice as much).
    n0, n1 = (names + ("", ""))[:2]

    def make(args, kwargs):
        if first:
            args = args[1:]
        k = len(args)
        if k == 1 and n >= 1:
            d = {n0: args[0]}
        elif k == 2 and n >= 2:
            d = {n0: args[0], n1: args[1]}
        else:
            d = dict(zip(names, args))
            if k > n:
                d[star] = list(args[n:])
        if kwargs:
            d.update(kwargs)
        return d or None
    return make


def _no_input(args, kwargs):
    return None


class _Collector:
    """The items a generator yields, for its output."""
    __slots__ = ("items", "strings", "more")

    def __init__(self):
        self.items = []
        self.strings = True
        self.more = 0

    def add(self, item):
        if len(self.items) < OUTPUT_ITEMS_MAX:
            self.items.append(item)
            if self.strings and not isinstance(item, str):
                self.strings = False
        else:
            self.more += 1

    def output(self):
        if not self.items:
            return None
        if self.strings:
            text = "".join(self.items)
            return text + ("... [%d more items]" % self.more if self.more else "")
        return self.items + (["... %d more items" % self.more] if self.more else [])


def track(fn=None, *, name=None, type="general", capture_input=True, capture_output=True,
          tags=None, metadata=None, model=None):
    """Traces each call of the decorated function as a span; see the module's
    first comment.  name: the span's name (default: the function's);
    type: general, llm, retrieval or tool; capture_input/capture_output: False
    to leave the arguments or the return value out of the record; tags,
    metadata, model: set on every span of this function.  Usable bare
    (@track) or with arguments (@track(type="llm"))."""
    if fn is None:
        return lambda f: track(f, name=name, type=type, capture_input=capture_input,
                               capture_output=capture_output, tags=tags, metadata=metadata, model=model)
    if isinstance(fn, (staticmethod, classmethod)):
        return builtins.type(fn)(track(fn.__func__, name=name, type=type, capture_input=capture_input,
                                       capture_output=capture_output, tags=tags, metadata=metadata,
                                       model=model))
    if type not in SPAN_TYPES:
        raise ValueError("tracesift.track: type must be one of %s, not %r" % (", ".join(SPAN_TYPES), type))
    span_name = (name or getattr(fn, "__name__", None) or "call").encode("utf-8", "replace")
    kind = SPAN_TYPES[type]
    make_input = _input_maker(fn, skip_first=True) if capture_input else _no_input
    fixed = {}
    if tags:
        fixed["tags"] = [tags] if isinstance(tags, str) else list(tags)
    if metadata:
        fixed["metadata"] = dict(metadata)
    if model:
        fixed["model"] = model
    site = _span.Site(span_name, kind, make_input, fixed or None)

    def start(args, kwargs):
        if st.client is None and _ensure() is None:  # tracing is off: not even the input is built
            return None
        return _begin(site, args, kwargs)

    if inspect.isasyncgenfunction(fn):
        return functools.wraps(fn)(_async_gen_wrapper(fn, start, capture_output))
    if inspect.isgeneratorfunction(fn):
        return functools.wraps(fn)(_gen_wrapper(fn, start, capture_output))
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def async_wrapper(*args, **kwargs):
            span = start(args, kwargs)
            if span is None:
                return await fn(*args, **kwargs)
            token = _current.set(span)
            try:
                value = await fn(*args, **kwargs)
            except BaseException as e:
                _current.reset(token)
                _end(span, None, e)
                raise
            _current.reset(token)
            _end(span, value if capture_output else None)
            return value
        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        # start(), inlined: this is the path most calls take
        if st.client is None and _ensure() is None:
            return fn(*args, **kwargs)
        span = _begin(site, args, kwargs)
        if span is None:
            return fn(*args, **kwargs)
        token = _current.set(span)
        try:
            value = fn(*args, **kwargs)
        except BaseException as e:
            _current.reset(token)
            _end(span, None, e)
            raise
        _current.reset(token)
        _end(span, value if capture_output else None)
        return value
    return wrapper


def _gen_wrapper(fn, start, capture_output):
    def gen_wrapper(*args, **kwargs):
        span = start(args, kwargs)
        if span is None:
            return (yield from fn(*args, **kwargs))
        out = _Collector() if capture_output else None
        first = True
        gen = None
        sent, thrown = None, None
        try:
            while True:
                token = _current.set(span)
                try:
                    if gen is None:
                        gen = fn(*args, **kwargs)
                    item = gen.send(sent) if thrown is None else gen.throw(thrown)
                finally:
                    _current.reset(token)
                    thrown = None
                if first:
                    first = False
                    _span.mark_first_token(span)
                if out is not None:
                    out.add(item)
                try:
                    sent = yield item
                except GeneratorExit:
                    raise
                except BaseException as e:  # thrown in by the consumer: pass it on
                    sent, thrown = None, e
        except StopIteration as stop:
            _end(span, out.output() if out is not None else None)
            return stop.value
        except GeneratorExit:  # the consumer stopped early (close(), or the loop was left)
            token = _current.set(span)
            try:
                if gen is not None:
                    gen.close()
            finally:
                _current.reset(token)
                _end(span, out.output() if out is not None else None)
            raise
        except BaseException as e:
            _end(span, None, e)
            raise
    return gen_wrapper


def _async_gen_wrapper(fn, start, capture_output):
    async def async_gen_wrapper(*args, **kwargs):
        span = start(args, kwargs)    # None: untraced, the same loop without the tracing
        out = _Collector() if capture_output and span is not None else None
        first = span is not None
        agen = None
        sent, thrown = None, None
        try:
            while True:
                token = _current.set(span) if span is not None else None
                try:
                    if agen is None:
                        agen = fn(*args, **kwargs)
                    item = await (agen.asend(sent) if thrown is None else agen.athrow(thrown))
                finally:
                    if token is not None:
                        _current.reset(token)
                    thrown = None
                if first:
                    first = False
                    _span.mark_first_token(span)
                if out is not None:
                    out.add(item)
                try:
                    sent = yield item
                except GeneratorExit:
                    raise
                except BaseException as e:  # thrown in by the consumer: pass it on
                    sent, thrown = None, e
        except StopAsyncIteration:
            if span is not None:
                _end(span, out.output() if out is not None else None)
        except GeneratorExit:  # the consumer stopped early (aclose(), or the loop was left)
            token = _current.set(span) if span is not None else None
            try:
                if agen is not None:
                    await agen.aclose()
            finally:
                if token is not None:
                    _current.reset(token)
                if span is not None:
                    _end(span, out.output() if out is not None else None)
            raise
        except BaseException as e:
            if span is not None:
                _end(span, None, e)
            raise
    return async_gen_wrapper
