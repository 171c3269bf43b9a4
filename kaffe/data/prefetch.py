"""Prefetcher: batches loaded on a background thread, as Caffe's
``BasePrefetchingDataLayer`` does.

A thread calls ``load_batch()`` over and over and keeps up to ``depth``
finished batches in a queue (``data_param.prefetch``, 4 by default); each
:meth:`Prefetcher.next` takes the oldest one, waiting if none is ready.

* Determinism: every random number a batch needs is drawn inside
  ``load_batch``, on the one prefetch thread, in batch order, from generators
  the layer seeded from kaffe's RNG at setup. The main thread never touches
  them, so a seeded run yields the same batches whatever the timing.
* Errors: an exception raised by ``load_batch`` ends the thread and is raised
  again, as the same object (a KaffeError stays that KaffeError), by the
  ``next()`` call that reaches it, and by every later one.
* Shutdown: :meth:`Prefetcher.stop` ends the thread cleanly (after the batch it
  is loading). When ``load_batch`` is a method, the thread holds its object
  only weakly, and the thread stops by itself once that object (the layer) is
  garbage-collected.
"""
import queue
import threading
import weakref

from ..core.errors import KaffeError

_BATCH = "batch"
_ERROR = "error"
_POLL_S = 0.05


class Prefetcher:
    """Runs ``load_batch`` on a daemon thread, ``depth`` batches ahead.

    Args:
        load_batch: a function (usually a bound method) of no arguments that
            returns the next batch (any object).
        depth: how many finished batches may wait in the queue (>= 1).
        name: the thread's name (shows in debuggers and thread dumps).
    """

    def __init__(self, load_batch, depth=4, *, name="kaffe-prefetch"):
        if depth < 1:
            raise KaffeError("prefetch depth must be at least 1",
                             received=depth)
        owner = getattr(load_batch, "__self__", None)
        if owner is not None:
            get_load = weakref.WeakMethod(load_batch)
        else:
            def get_load():
                return load_batch
        self._queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._error = None
        self._thread = threading.Thread(
            target=_run, args=(get_load, self._queue, self._stop),
            name=name, daemon=True)
        if owner is not None:
            weakref.finalize(owner, self._stop.set)
        self._thread.start()

    def next(self):
        """The next batch, in load order; re-raises a load_batch error."""
        if self._error is not None:
            raise self._error
        while True:
            try:
                kind, value = self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                if self._thread.is_alive():
                    continue
                if self._queue.empty():
                    raise KaffeError(
                        "the prefetch thread has stopped; no more batches "
                        "will come",
                        fix="set the layer up again (it was closed)") \
                        from None
                continue
            if kind == _ERROR:
                self._error = value
                raise value
            return value

    def stop(self, timeout=30):
        """Stop the thread (after the batch in hand); drop the queue."""
        self._stop.set()
        if self._thread.is_alive() and \
                self._thread is not threading.current_thread():
            self._thread.join(timeout)
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break

    @property
    def running(self):
        """Whether the thread is still alive."""
        return self._thread.is_alive()


def _run(get_load, out, stop):
    """The thread's loop (a function, so that it holds no Prefetcher)."""
    while not stop.is_set():
        load = get_load()
        if load is None:        # the layer is gone
            return
        try:
            item = (_BATCH, load())
        except BaseException as e:  # handed to the main thread by next()
            item = (_ERROR, e)
        del load
        while not stop.is_set():
            try:
                out.put(item, timeout=_POLL_S)
                break
            except queue.Full:
                if get_load() is None:
                    return
        if item[0] == _ERROR:
            return
