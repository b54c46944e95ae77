"""tracesift - publish the traces of a Python inference service to Kafka through libtracesift

    import tracesift
    tracesift.configure(brokers="127.0.0.1:9092", project="support-bot")

    @tracesift.track(type="llm")
    def call_llm(prompt): ...

Each call of a decorated function becomes a span; the outermost one is the
trace, published when it returns, without waiting on the network.  The
library does the serializing and sending (see docs/python.md).  Threads and
thread pools started inside a decorated call join its trace (importing the
package patches threading.Thread and ThreadPoolExecutor.submit for that, see
_threads.py).  Tracing never raises into the application: what fails is
counted in stats() and logged once through the "tracesift" logger.
"""
from ._client import configure, flush, stats
from ._span import _NOTHING, current as _current, update as _update
from ._track import track
from . import _span, _threads

_threads.install()

__version__ = "0.1.0"
__all__ = ["configure", "track", "update_current_span", "update_current_trace", "mark_first_token",
           "current_trace_id", "flush", "stats"]


def update_current_span(*, input=_NOTHING, output=_NOTHING, metadata=None, tags=None, usage=None,
                        model=None, time_to_first_token_ms=None):
    """Sets fields of the span the caller runs in (the innermost decorated
    call); does nothing outside one.  input, output: any value (an output set
    here is kept instead of the return value); metadata: a dict, merged;
    tags: a string or a list, added; usage: {"input_tokens": n,
    "output_tokens": m} (or prompt_tokens/completion_tokens, or an object with
    those attributes); model: the model's name; time_to_first_token_ms: a
    measured time to first token, from the span's start."""
    span = _current.get()
    if span is not None:
        _update(span, False, input=input, output=output, metadata=metadata, tags=tags, usage=usage,
                model=model, time_to_first_token_ms=time_to_first_token_ms)


def update_current_trace(*, input=_NOTHING, output=_NOTHING, metadata=None, tags=None, usage=None,
                         model=None, project=None):
    """Sets the record's top-level fields (those of the outermost decorated
    call) from anywhere inside the trace; does nothing outside one.  Same
    fields as update_current_span, and project.  The record's usage, model and
    time to first token default to what its spans say (usage summed, the first
    llm span's model, the earliest first token) unless set here."""
    span = _current.get()
    if span is not None:
        _update(span, True, input=input, output=output, metadata=metadata, tags=tags, usage=usage,
                model=model, project=project)


def mark_first_token():
    """Marks now as the time to first token of the current span (the first
    mark counts), for streams a decorated generator does not see."""
    span = _current.get()
    if span is not None:
        _span.mark_first_token(span)


def current_trace_id():
    """The trace id (32 hex characters) of the trace the caller runs in, or None."""
    span = _current.get()
    return _span.trace_id(span) if span is not None else None
