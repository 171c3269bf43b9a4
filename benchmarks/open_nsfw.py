"""open_nsfw (ResNet-50 1by2, 224×224) forward speed: kaffe against OpenCV.

Run ``python benchmarks/open_nsfw.py [--repeat R] [--batches 1,8]
[--layers] [--model-dir DIR]``. For each batch size it times, in the same
process and on the same float32 input (a fixed random image):

* kaffe's ``net.forward()``;
* OpenCV's ``cv2.dnn`` net from the same prototxt and caffemodel, with its
  default settings (layer fusion on, its default backend and thread count);

and prints the median milliseconds of R runs after two warm-up runs, the
kaffe / OpenCV ratio and the largest difference of their ``prob`` outputs.
OpenCV is skipped when it is not installed. With ``--layers`` it adds
kaffe's time per layer type and its slowest layers (each layer timed on its
own, medians over R forwards). Nothing is asserted: timings depend on the
machine and its load.

The model is looked up in ``../shared/models/open_nsfw`` beside the
repository unless ``--model-dir`` says otherwise; it is never copied.
"""
import argparse
import collections
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import kaffe  # noqa: E402

DEFAULT_MODEL_DIR = os.path.join(ROOT, "..", "shared", "models", "open_nsfw")
PROTOTXT = "deploy.prototxt"
WEIGHTS = "resnet_50_1by2_nsfw.caffemodel"


def median_ms(fn, repeat, warmup=2):
    """Median milliseconds of ``repeat`` calls after ``warmup`` calls.

    kaffe and OpenCV are timed one after the other, not in turns: OpenBLAS's
    worker threads keep spinning for a while after kaffe's last GEMM, and on
    a 2-core machine that slowed an interleaved OpenCV down up to 2×.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def layer_times_ms(net, repeat):
    """Median milliseconds of each layer's Forward (reshape included), over
    ``repeat`` forward passes run layer by layer."""
    samples = [[] for _ in net.layers]
    for _ in range(repeat):
        for i, layer in enumerate(net.layers):
            bottom, top = net._bottoms(i), net._tops(i)
            start = time.perf_counter()
            layer.Forward(bottom, top)
            samples[i].append(time.perf_counter() - start)
    return [1000 * statistics.median(s) for s in samples]


def print_layer_report(net, times, top=12):
    total = sum(times)
    by_type = collections.defaultdict(lambda: [0.0, 0])
    for layer, ms in zip(net.layers, times):
        by_type[layer.type][0] += ms
        by_type[layer.type][1] += 1
    print(f"  per layer type (sum of per-layer medians {total:.1f} ms):")
    for kind, (ms, count) in sorted(by_type.items(), key=lambda kv: -kv[1][0]):
        print(f"    {kind:<14} {count:4d} layers {ms:9.2f} ms "
              f"{100 * ms / total:5.1f} %")
    print(f"  slowest {top} layers:")
    order = sorted(range(len(times)), key=lambda i: -times[i])[:top]
    for i in order:
        layer = net.layers[i]
        shape = net._blobs[net._top_ids[i][0]].shape if net._top_ids[i] else ()
        print(f"    {net._layer_names[i]:<36} {layer.type:<12} "
              f"{str(shape):<20} {times[i]:8.2f} ms")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--batches", default="1,8",
                        help="comma-separated batch sizes (default 1,8)")
    parser.add_argument("--layers", action="store_true",
                        help="also time kaffe layer by layer")
    parser.add_argument("--model-dir", default=DEFAULT_MODEL_DIR)
    args = parser.parse_args(argv)
    prototxt = os.path.join(args.model_dir, PROTOTXT)
    weights = os.path.join(args.model_dir, WEIGHTS)
    if not (os.path.exists(prototxt) and os.path.exists(weights)):
        print(f"open_nsfw not found in {args.model_dir} (needs {PROTOTXT} "
              f"and {WEIGHTS}); pass --model-dir")
        return 1
    try:
        import cv2
    except ImportError:
        cv2 = None
        print("OpenCV (cv2) is not installed: timing kaffe only")
    print(f"numpy {np.__version__}, {os.cpu_count()} CPUs"
          + (f", OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads)"
             if cv2 else ""))

    net = kaffe.Net(prototxt, kaffe.TEST, weights=weights)
    reference = cv2.dnn.readNetFromCaffe(prototxt, weights) if cv2 else None
    rng = np.random.default_rng(0)
    rows = []
    for batch in (int(b) for b in args.batches.split(",")):
        x = rng.uniform(-128, 128, (batch, 3, 224, 224)).astype(np.float32)
        net.blobs["data"].reshape(x.shape)
        net.reshape()
        net.blobs["data"].data[...] = x
        kaffe_ms = median_ms(net.forward, args.repeat)
        ours = net.blobs["prob"].data.copy()
        cv_ms = diff = None
        if reference is not None:
            reference.setInput(x)
            cv_ms = median_ms(lambda: reference.forward("prob"), args.repeat)
            theirs = reference.forward("prob").reshape(ours.shape)
            diff = float(np.abs(ours - theirs).max())
        rows.append((batch, kaffe_ms, cv_ms, diff))
        line = f"batch {batch}: kaffe {kaffe_ms:8.1f} ms"
        if cv_ms is not None:
            line += (f" | OpenCV {cv_ms:8.1f} ms | ratio {kaffe_ms / cv_ms:5.2f}"
                     f" | max |Δprob| {diff:.2e}")
        print(line, flush=True)
        if args.layers:
            print_layer_report(net, layer_times_ms(net, args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
