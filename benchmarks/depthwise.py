"""Depthwise convolution: kaffe.ops.depthwise against kaffe's general
grouped convolution (kaffe.ops.conv's im2col + GEMM per group, with its
depthwise path switched off for the comparison), PyTorch and OpenCV,
measured in the same run.

Run ``python benchmarks/depthwise.py [--repeat R]``. For the 3×3 depthwise
layers of MobileNet (224×224 input) at batch 1 it prints the forward time of
each side and kaffe's direct path's ratio to the others (>1: the direct path
is faster), then forward + backward (data and weights) for kaffe's two paths
and PyTorch. Threads: numpy's BLAS and PyTorch use their defaults (all
cores); OpenCV its own pool. Times are medians of R runs after two warm-up
runs. Nothing is asserted.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))

from kaffe.ops import conv as conv_ops  # noqa: E402
from kaffe.ops.depthwise import (depthwise_backward,  # noqa: E402
                                 depthwise_forward)

# MobileNet v1's depthwise layers: channels, input size, stride.
LAYERS = [(32, 112, 1), (64, 112, 2), (128, 56, 1), (128, 56, 2),
          (256, 28, 1), (256, 28, 2), (512, 14, 1), (512, 14, 2),
          (1024, 7, 1)]


def generic(fn):
    """``fn`` of kaffe.ops.conv with its depthwise path switched off."""
    def run(*args, **kwargs):
        original = conv_ops.depthwise_applies
        conv_ops.depthwise_applies = lambda *a: False
        try:
            return fn(*args, **kwargs)
        finally:
            conv_ops.depthwise_applies = original
    return run


conv_forward = generic(conv_ops.conv_forward)
conv_backward = generic(conv_ops.conv_backward)


def median_seconds(fn, repeat, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def opencv_forward(channels, size, stride, w, b, x):
    """A readNetFromCaffe net of one depthwise Convolution, or None."""
    try:
        import cv2
    except ImportError:
        return None
    text = f"""
input: "data" input_shape {{ dim: 1 dim: {channels} dim: {size} dim: {size} }}
layer {{ name: "dw" type: "Convolution" bottom: "data" top: "dw"
  convolution_param {{ num_output: {channels} group: {channels}
    kernel_size: 3 pad: 1 stride: {stride} }} }}"""
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".prototxt",
                                     delete=False) as f:
        f.write(text)
    try:
        net = cv2.dnn.readNetFromCaffe(f.name)
    finally:
        os.unlink(f.name)
    layer = net.getLayer(net.getLayerId("dw"))
    layer.blobs = [w, b]
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)

    def run():
        net.setInput(x)
        net.forward()
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    try:
        import torch
        torch_threads = torch.get_num_threads()
    except ImportError:
        torch = None
        torch_threads = 0
    print(f"threads: numpy BLAS default, torch {torch_threads or 'n/a'}; "
          f"medians of {args.repeat} runs (ms)")
    print(f"{'layer':>18} {'direct':>8} {'grouped':>8} {'torch':>8} "
          f"{'opencv':>8}  {'÷grouped':>8} {'÷torch':>7} {'÷opencv':>7}"
          f"   fwd+bwd: {'direct':>8} {'grouped':>8} {'torch':>8}")
    rng = np.random.default_rng(0)
    for channels, size, stride in LAYERS:
        x = rng.standard_normal((1, channels, size, size), dtype=np.float32)
        w = rng.standard_normal((channels, 1, 3, 3), dtype=np.float32)
        b = rng.standard_normal(channels, dtype=np.float32)
        geometry = dict(stride=(stride, stride), pad=(1, 1),
                        dilation=(1, 1))
        y = depthwise_forward(x, w, b, **geometry)
        dy = rng.standard_normal(y.shape, dtype=np.float32)
        direct = median_seconds(
            lambda: depthwise_forward(x, w, b, **geometry), args.repeat)
        grouped = median_seconds(
            lambda: conv_forward(x, w, b, group=channels, **geometry),
            args.repeat)
        direct_all = median_seconds(lambda: (
            depthwise_forward(x, w, b, **geometry),
            depthwise_backward(dy, x, w, **geometry)), args.repeat)
        dw = np.zeros_like(w)
        grouped_all = median_seconds(lambda: (
            conv_forward(x, w, b, group=channels, **geometry),
            conv_backward(dy, x, w, dw, group=channels, **geometry)),
            args.repeat)
        torch_fwd = torch_all = float("nan")
        if torch is not None:
            xt = torch.from_numpy(x).requires_grad_()
            wt = torch.from_numpy(w).requires_grad_()
            bt = torch.from_numpy(b)
            conv = torch.nn.functional.conv2d
            with torch.no_grad():
                torch_fwd = median_seconds(
                    lambda: conv(xt, wt, bt, stride, 1, 1, channels),
                    args.repeat)
            dyt = torch.from_numpy(dy)
            torch_all = median_seconds(
                lambda: conv(xt, wt, bt, stride, 1, 1, channels).backward(
                    dyt), args.repeat)
        cv_run = opencv_forward(channels, size, stride, w, b, x)
        cv_fwd = median_seconds(cv_run, args.repeat) if cv_run else \
            float("nan")
        name = f"{channels}×{size}² /{stride}"
        ms = lambda s: f"{s * 1e3:8.2f}"
        print(f"{name:>18} {ms(direct)} {ms(grouped)} {ms(torch_fwd)} "
              f"{ms(cv_fwd)}  {grouped / direct:8.2f} "
              f"{torch_fwd / direct:7.2f} {cv_fwd / direct:7.2f}"
              f"            {ms(direct_all)} {ms(grouped_all)} "
              f"{ms(torch_all)}")


if __name__ == "__main__":
    main()
