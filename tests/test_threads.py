"""kaffe.threads: the thread count setting, the busy-core estimate, BLAS
control through threadpoolctl, and the task pool."""
import threading

import numpy as np
import pytest

from kaffe import threads


@pytest.fixture(autouse=True)
def restore():
    yield
    threads.set_num_threads()


def test_set_and_get():
    threads.set_num_threads(1)
    assert threads.get_num_threads() == 1
    assert threads.usable_threads() == 1
    with pytest.raises(ValueError, match=">= 1"):
        threads.set_num_threads(0)


def test_environment_variable(monkeypatch):
    monkeypatch.setenv(threads.ENV, "3")
    threads.set_num_threads()
    assert threads.get_num_threads() == 3
    monkeypatch.setenv(threads.ENV, "junk")
    threads.set_num_threads()
    assert threads.get_num_threads() >= 1


def test_busy_cores_reduce_usable_threads(monkeypatch):
    threads.set_num_threads(2)
    monkeypatch.setattr(threads._settings, "cores", 2)
    monkeypatch.setattr(threads._load, "others", lambda: 1.0)
    assert threads.usable_threads() == 1
    monkeypatch.setattr(threads._load, "others", lambda: 0.2)
    assert threads.usable_threads() == 2
    threads.set_num_threads(2, adaptive=False)
    monkeypatch.setattr(threads._load, "others", lambda: 1.0)
    assert threads.usable_threads() == 2


def test_load_sample_is_a_number():
    load = threads._Load()
    assert load.others() >= 0.0
    load.checked = -1.0
    assert load.others() >= 0.0


def test_small_gemms_run_on_one_blas_thread():
    pytest.importorskip("threadpoolctl")
    if not threads.blas_available():
        pytest.skip("threadpoolctl finds no BLAS it can control")
    from threadpoolctl import threadpool_info
    threads.set_num_threads(2, adaptive=False)
    assert threads.blas_for(1000) == 1
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    # NumPy's BLAS (another library's, e.g. OpenCV's, is left alone)
    ours = [i for i in blas if "numpy" in i["filepath"]] or blas
    assert all(i["num_threads"] == 1 for i in ours)
    assert threads.blas_for(1 << 30) == 2


def test_parallel_for_runs_every_task_once():
    threads.set_num_threads(4, adaptive=False)
    seen = np.zeros(100, dtype=int)
    names = set()

    def task(i):
        seen[i] += 1
        names.add(threading.current_thread().name)

    threads.parallel_for(task, 100)
    assert (seen == 1).all()
    # nested calls run serially instead of deadlocking
    threads.parallel_for(lambda i: threads.parallel_for(task, 3), 2)
    assert seen.sum() == 106


def test_parallel_for_raises_a_task_error():
    threads.set_num_threads(2, adaptive=False)

    def task(i):
        if i == 7:
            raise RuntimeError("task 7 failed")

    with pytest.raises(RuntimeError, match="task 7"):
        threads.parallel_for(task, 20)
    threads.parallel_for(lambda i: None, 5)     # the pool still works
