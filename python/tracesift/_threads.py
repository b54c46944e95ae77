"""tracesift/_threads.py - threads and thread pools started inside a trace join it

A new thread starts with an empty context (unless Python 3.14 runs with
thread_inherit_context), so a decorated call made in it would not see the
span of the call that started it and would begin a trace of its own.  install(), run once when the package is imported,
changes that for what a trace is current around, and for nothing else:

- threading.Thread: a thread started (or, when started outside any trace,
  created) while a span is current runs its run() - the target, or a
  subclass's own run() - in a copy of that context, made at start (or
  creation).  Threads started and created outside traces are left exactly
  as they were: one context lookup more at creation and at start.
- concurrent.futures.ThreadPoolExecutor.submit (and map, and asyncio's
  run_in_executor, which call it): a task submitted while a span is current
  runs in a copy of the context made at submit.  This is needed: the pool's
  threads are long-lived and shared by every request, so a context taken
  when a thread started would be the wrong one for later tasks.  The
  threads a submit starts are started outside the trace, so that they carry
  no request's context.

install() is idempotent: the patched functions are marked, and a second
call (or a second import after the module was reloaded) changes nothing.
"""
import concurrent.futures.thread
import contextvars
import threading

from ._span import current

_MARK = "__tracesift__"
_ATTR = "_tracesift_context"  # on a Thread created inside a trace: that context


def _wrap_run(thread, ctx):
    """Makes thread's run() (its class's, or a subclass's) run in ctx; the
    wrapper removes itself when run() returns, so that the Thread object
    keeps no trace alive.  Returns what to restore if start() fails."""
    had, before = "run" in thread.__dict__, thread.__dict__.get("run")
    run = thread.run

    def run_in_context():
        try:
            ctx.run(run)
        finally:
            if thread.__dict__.get("run") is run_in_context:
                del thread.__dict__["run"]
    thread.run = run_in_context
    return had, before


def install():
    """Patches threading.Thread and ThreadPoolExecutor.submit, once."""
    thread_init = threading.Thread.__init__
    thread_start = threading.Thread.start
    submit = concurrent.futures.thread.ThreadPoolExecutor.submit
    if getattr(thread_start, _MARK, False):
        return

    def __init__(self, *args, **kwargs):
        thread_init(self, *args, **kwargs)
        if current.get() is not None:
            self.__dict__[_ATTR] = contextvars.copy_context()

    def start(self):
        ctx = self.__dict__.pop(_ATTR, None)
        if current.get() is not None:
            ctx = contextvars.copy_context()
        if ctx is None:
            return thread_start(self)
        had, before = _wrap_run(self, ctx)
        try:
            return thread_start(self)
        except BaseException:  # not started (started already, or no thread to be had)
            if had:
                self.__dict__["run"] = before
            else:
                self.__dict__.pop("run", None)
            raise

    def pool_submit(self, fn, /, *args, **kwargs):
        if current.get() is None:
            return submit(self, fn, *args, **kwargs)
        ctx = contextvars.copy_context()
        token = current.set(None)  # the worker threads this may start carry no trace
        try:
            return submit(self, ctx.run, fn, *args, **kwargs)
        finally:
            current.reset(token)

    for patched, original in ((__init__, thread_init), (start, thread_start), (pool_submit, submit)):
        patched.__wrapped__ = original
        patched.__doc__ = original.__doc__
        patched.__name__ = original.__name__
        patched.__qualname__ = original.__qualname__
        setattr(patched, _MARK, True)
    threading.Thread.__init__ = __init__
    threading.Thread.start = start
    concurrent.futures.thread.ThreadPoolExecutor.submit = pool_submit
