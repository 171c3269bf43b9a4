"""Prefetcher: order, depth, error propagation, clean shutdown, and seeded
determinism of a prefetching layer."""
import gc
import time

import numpy as np
import pytest

from kaffe.core.errors import KaffeError, KaffeFormatError
from kaffe.data.prefetch import Prefetcher


def test_batches_come_in_load_order():
    counter = iter(range(100))
    prefetcher = Prefetcher(lambda: next(counter), depth=3)
    assert [prefetcher.next() for _ in range(10)] == list(range(10))
    prefetcher.stop()
    assert not prefetcher.running


def test_the_queue_holds_at_most_depth_batches():
    calls = []

    def load():
        calls.append(1)
        return len(calls)

    prefetcher = Prefetcher(load, depth=2)
    time.sleep(0.3)
    # Two batches wait in the queue, a third is loaded and waits to go in.
    assert len(calls) == 3
    prefetcher.stop()


def test_an_error_in_the_thread_is_raised_by_next_as_itself():
    error = KaffeFormatError("record 'x' is broken")
    batches = iter([1, 2])

    def load():
        for batch in batches:
            return batch
        raise error

    prefetcher = Prefetcher(load, depth=4)
    assert prefetcher.next() == 1 and prefetcher.next() == 2
    with pytest.raises(KaffeFormatError) as info:
        prefetcher.next()
    assert info.value is error
    with pytest.raises(KaffeFormatError):      # and again, not a hang
        prefetcher.next()
    assert not prefetcher.running


def test_next_after_stop_is_an_error_not_a_hang():
    prefetcher = Prefetcher(lambda: 1, depth=1)
    prefetcher.stop()
    with pytest.raises(KaffeError, match="stopped"):
        prefetcher.next()


def test_the_thread_ends_when_its_owner_is_freed():
    class Owner:
        def load(self):
            return np.zeros(3)

    owner = Owner()
    prefetcher = Prefetcher(owner.load, depth=2)
    prefetcher.next()
    del owner
    gc.collect()
    deadline = time.time() + 5
    while prefetcher.running and time.time() < deadline:
        time.sleep(0.02)
    assert not prefetcher.running


def test_depth_must_be_positive():
    with pytest.raises(KaffeError, match="at least 1"):
        Prefetcher(lambda: 1, depth=0)


def test_no_thread_is_left_behind():
    prefetchers = [Prefetcher(lambda: 0, depth=1) for _ in range(5)]
    for p in prefetchers:
        p.stop()
    # Each stop() joins its own thread (counting all of the process's threads
    # would also see other tests' prefetch threads winding down).
    assert not any(p.running for p in prefetchers)
