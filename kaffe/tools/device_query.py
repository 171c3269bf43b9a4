"""``kaffe device_query``: what kaffe computes on.

Caffe's ``device_query`` describes GPUs. kaffe runs on the CPU with NumPy:
it logs the CPU, the NumPy version and the BLAS library NumPy uses, and
whether CuPy sees a GPU (a GPU backend is not available yet).
"""
import logging
import os
import platform

from .flags import add_value_flag

HELP = "describe the device kaffe computes on (caffe device_query)"
DESCRIPTION = __doc__.split("\n\n", 1)[1]

log = logging.getLogger("kaffe")


def add_arguments(parser):
    add_value_flag(parser, "gpu", default="", metavar="IDS",
                   help="GPU ids to query (kaffe has no GPU backend yet)")


def refuse_gpu(gpu_flag):
    """Refuse --gpu with a clear message (kaffe computes on the CPU)."""
    from ..core.errors import KaffeConfigError
    if gpu_flag:
        raise KaffeConfigError(
            "asks for GPU mode, which kaffe does not have yet (it runs on "
            "the CPU with NumPy)", field="--gpu", received=gpu_flag,
            fix="leave out --gpu")


def run(args):
    import numpy as np

    from ..core.backend import gpu_available
    log.info("Querying GPUs %s", args.gpu)
    log.info("Device: CPU (%s, %d logical cores)",
             platform.processor() or platform.machine(), os.cpu_count() or 1)
    log.info("NumPy %s, BLAS: %s", np.__version__, _blas_name(np))
    if gpu_available():
        log.info("CuPy sees a GPU, but kaffe has no GPU backend yet: "
                 "computing on the CPU")
    else:
        log.info("No GPU backend: computing on the CPU")
    refuse_gpu(args.gpu)
    return 0


def _blas_name(np):
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy without dict mode: not important
        return "unknown"
