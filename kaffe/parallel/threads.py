"""How many threads each worker uses, when several share a node.

Several workers on one node share its cores: by default each may use
``cores // workers on the node`` (at least 1), so that 2 workers on 2 cores
run one thread each instead of fighting over the cores with two each. The
count is handed to :mod:`kaffe.threads`, the one place that sets kaffe's and
its BLAS's threads (and still lowers them while other processes keep cores
busy). A ``KAFFE_NUM_THREADS`` the user set is left alone.
"""
import os

from .. import threads as kaffe_threads


def node_cores():
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:          # not on Linux
        return os.cpu_count() or 1


def default_threads(workers_on_node):
    """The node's cores divided by the workers on it (at least 1)."""
    return max(1, node_cores() // max(1, int(workers_on_node)))


def limit_threads(threads, adaptive=True):
    """Let this worker use at most ``threads`` threads (kaffe's and BLAS's);
    returns that count, or None when ``KAFFE_NUM_THREADS`` decides."""
    if os.environ.get(kaffe_threads.ENV, "").strip():
        return None
    kaffe_threads.set_num_threads(int(threads), adaptive=adaptive)
    return int(threads)
