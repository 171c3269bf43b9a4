"""How many threads kaffe and its BLAS use: decided here, and only here.

kaffe computes with NumPy, whose BLAS (OpenBLAS, MKL, ...) starts its own
threads, by default one per core, and keeps them spinning for a while after
each call. Left alone that goes wrong twice: a small GEMM split over cores
costs more in handing out and waiting than it saves, and when another
process keeps a core busy, every multi-threaded GEMM waits for the thread
that shares its core with the neighbour: kaffe was measured 3-5× slower
with one CPU-bound neighbour on a 2-core machine (issue 12). So:

* :func:`set_num_threads` (or the ``KAFFE_NUM_THREADS`` environment
  variable) says how many threads kaffe may use at most; by default the
  cores this process may run on (``os.sched_getaffinity``).
* :func:`usable_threads` is that, less the cores other processes are
  keeping busy: on Linux, the machine's busy time in ``/proc/stat`` less
  this process's own CPU time, over the last quarter-second or more (sampled
  at most every ``SAMPLE_SECONDS``; a read costs about 20 µs; before the
  first interval, the one-minute load average). A neighbour
  taking a core therefore costs kaffe that core, not a cliff. Turn it off
  with ``set_num_threads(n, adaptive=False)``.
* :func:`blas_for` sets the BLAS thread count for a GEMM of so many flops
  just before kaffe calls it: one thread below ``SMALL_GEMM_FLOPS``, else
  :func:`usable_threads`. It goes through threadpoolctl (an optional
  dependency, the ``perf`` extra); without it BLAS keeps its own setting.
* :func:`parallel_for` runs independent tasks (Winograd's chunks or its 36
  GEMMs when they are too small for BLAS's threads, depthwise blocks) on
  :func:`usable_threads` threads, BLAS on one thread meanwhile so the two
  never oversubscribe the cores. Everything else — im2col, elementwise
  layers — stays on one thread: kaffe's tasks measured slower than BLAS's
  own threads there (docs/performance.md, "Why the second core is BLAS's
  alone"). Tasks are
  handed out one at a time from a shared counter, so a thread slowed by a
  neighbour simply takes fewer; idle workers block on a condition variable
  and never spin.
"""
import os
import threading
import time
from .optional import available

__all__ = ["set_num_threads", "get_num_threads", "usable_threads",
           "blas_for", "parallel_for", "blas_available",
           "ENV", "SMALL_GEMM_FLOPS", "SAMPLE_SECONDS"]

ENV = "KAFFE_NUM_THREADS"
# GEMMs below this many flops (2·M·N·K) run on one BLAS thread (batch 1,
# two threads, ms with 8 → 1 MFLOP: GoogLeNet 42.6 → 39.6, ResNet-50 80.9
# → 78.9, MobileNet v1 27.6 → 26.4, SqueezeNet 1.1 12.1 → 11.7).
SMALL_GEMM_FLOPS = 1 << 20
# The load of other processes is re-sampled at most this often.
SAMPLE_SECONDS = 0.25
# Another process counts as taking a core from this much of one on.
_BUSY_CORE = 0.5


def _affinity_cores():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _env_threads():
    value = os.environ.get(ENV, "").strip()
    if not value:
        return None
    try:
        count = int(value)
    except ValueError:
        return None
    return count if count >= 1 else None


class _Settings:
    def __init__(self):
        self.cores = _affinity_cores()
        self.threads = _env_threads() or self.cores
        self.adaptive = True
        self.blas = None          # threadpoolctl's BLAS controllers, or False
        self.blas_threads = None  # what kaffe last set
        self.pool = None
        self.lock = threading.Lock()


_settings = _Settings()
# Set in kaffe's workers and while a parallel_for runs: a nested one runs
# serially.
_inside = threading.local()


def set_num_threads(count=None, adaptive=True):
    """Let kaffe use at most ``count`` threads (None: the environment
    variable ``KAFFE_NUM_THREADS``, else every core this process may run
    on), fewer while other processes keep cores busy when ``adaptive``."""
    if count is not None:
        count = int(count)
        if count < 1:
            raise ValueError(f"set_num_threads: count must be >= 1, "
                             f"received {count}")
    _settings.threads = count or _env_threads() or _settings.cores
    _settings.adaptive = bool(adaptive)
    _load.reset()
    _set_blas(_settings.threads)


def get_num_threads():
    """The most threads kaffe may use (see :func:`set_num_threads`)."""
    return _settings.threads


class _Load:
    """Cores kept busy by other processes, from /proc/stat (Linux)."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.sample = None
        self.busy_elsewhere = 0.0
        self.checked = -1.0

    @staticmethod
    def _read():
        with open("/proc/stat", "rb") as stat:
            fields = stat.readline().split()[1:]
        ticks = [int(f) for f in fields[:8]]
        busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]
        total = busy + ticks[3] + ticks[4]
        own = os.times()
        return busy, total, own.user + own.system

    def others(self):
        """Cores other processes kept busy lately (0.0 when unknown)."""
        now = time.monotonic()
        if now - self.checked < SAMPLE_SECONDS:
            return self.busy_elsewhere
        self.checked = now
        try:
            sample = self._read()
        except (OSError, ValueError, IndexError):
            return self.busy_elsewhere
        if self.sample is not None:
            busy0, total0, own0 = self.sample
            busy, total, own = sample
            cpus = os.cpu_count() or 1
            elapsed = (total - total0) / cpus       # ticks per CPU
            if elapsed > 0:
                ours = (own - own0) * _clock_ticks()
                self.busy_elsewhere = max(0.0, (busy - busy0 - ours)
                                          / elapsed)
        else:
            # No interval yet: the one-minute load average stands in.
            self.busy_elsewhere = _load_average()
        self.sample = sample
        return self.busy_elsewhere


def _load_average():
    try:
        with open("/proc/loadavg", "rb") as f:
            return min(float(f.read().split()[0]), os.cpu_count() or 1)
    except (OSError, ValueError, IndexError):
        return 0.0


def _clock_ticks():
    try:
        return os.sysconf("SC_CLK_TCK")
    except (AttributeError, ValueError, OSError):
        return 100


_load = _Load()


def usable_threads():
    """How many threads kaffe should use now: :func:`get_num_threads`, less
    the cores other processes keep busy (when adaptive), at least 1."""
    threads = _settings.threads
    if threads == 1 or not _settings.adaptive:
        return threads
    taken = int(_load.others() + 1 - _BUSY_CORE)
    return max(1, min(threads, _settings.cores - taken))


def _blas():
    if _settings.blas is None:
        threadpoolctl = available("threadpoolctl")
        if threadpoolctl is None:
            _settings.blas = False
        else:
            controllers = threadpoolctl.ThreadpoolController().select(
                user_api="blas").lib_controllers
            # NumPy's own BLAS when it can be told apart (another library,
            # OpenCV's or PyTorch's, may bring a BLAS of its own: not ours
            # to set).
            numpy_blas = [c for c in controllers
                          if "numpy" in str(getattr(c, "filepath", ""))]
            _settings.blas = numpy_blas or controllers or False
    return _settings.blas


def blas_available():
    """Whether kaffe can set its BLAS's thread count (threadpoolctl found
    a BLAS it knows)."""
    return bool(_blas())


def _set_blas(count):
    if _settings.blas_threads == count:
        return
    controllers = _blas()
    if controllers:
        for controller in controllers:
            controller.set_num_threads(count)
    _settings.blas_threads = count


def blas_for(flops):
    """Set BLAS's thread count for a GEMM of ``flops`` (2·M·N·K) about to
    run: 1 if small, else :func:`usable_threads`. Returns the count."""
    count = 1 if flops < SMALL_GEMM_FLOPS else usable_threads()
    _set_blas(count)
    return count


class _Pool:
    """Worker threads that run the tasks of one :func:`parallel_for` at a
    time, taking task indices from a shared counter."""

    def __init__(self, workers):
        self.workers = workers
        self.cond = threading.Condition()
        self.job = None          # (fn, count, helpers)
        self.generation = 0
        self.next = 0
        self.active = 0
        self.error = None
        for _ in range(workers):
            threading.Thread(target=self._work, daemon=True,
                             name="kaffe-worker").start()

    def _take(self):
        with self.cond:
            if self.job is None or self.next >= self.job[1]:
                return None
            index = self.next
            self.next += 1
            return index

    def _run_tasks(self, fn):
        while True:
            index = self._take()
            if index is None:
                return
            try:
                fn(index)
            except BaseException as error:  # handed to the caller
                with self.cond:
                    if self.error is None:
                        self.error = error
                    self.next = self.job[1]
                return

    def _work(self):
        _inside.active = True
        seen = 0
        while True:
            with self.cond:
                while self.generation == seen:
                    self.cond.wait()
                seen = self.generation
                if self.job is None or self.active >= self.job[2]:
                    continue
                fn = self.job[0]
                self.active += 1
            self._run_tasks(fn)
            with self.cond:
                self.active -= 1
                self.cond.notify_all()

    def run(self, fn, count, helpers):
        with self.cond:
            self.job = (fn, count, helpers)
            self.next = 0
            self.error = None
            self.generation += 1
            self.cond.notify_all()
        self._run_tasks(fn)
        with self.cond:
            while self.active or self.next < count:
                self.cond.wait()
            self.job = None
            error = self.error
            self.error = None
        if error is not None:
            raise error


def parallel_for(fn, count):
    """Run ``fn(i)`` for i in 0..count-1, on up to :func:`usable_threads`
    threads (the caller's among them); BLAS on one thread meanwhile. The
    calls must be independent (write disjoint outputs). Returns when all
    have finished; the first exception raised by one is raised here."""
    threads = min(usable_threads(), count)
    if threads <= 1 or getattr(_inside, "active", False):
        for i in range(count):
            fn(i)
        return
    with _settings.lock:
        previous = _settings.blas_threads
        _set_blas(1)
        if _settings.pool is None or _settings.pool.workers < threads - 1:
            _settings.pool = _Pool(_settings.cores - 1 or 1)
        _inside.active = True
        try:
            _settings.pool.run(fn, count, threads - 1)
        finally:
            _inside.active = False
            if previous is not None:
                _set_blas(previous)
