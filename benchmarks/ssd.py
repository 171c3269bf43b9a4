"""OpenCV's res10 SSD face detector (300×300) forward speed: kaffe against
OpenCV, in the same run.

Run ``python benchmarks/ssd.py [--repeat R] [--layers] [--model-dir DIR]``.
It times, in the same process and on the same float32 input (faces.jpg
preprocessed as the model wants, or a fixed random image when the photo is
absent):

* kaffe's ``net.forward()`` (the whole net, PriorBox and DetectionOutput
  included);
* OpenCV's ``cv2.dnn`` net from the same prototxt and caffemodel, default
  settings (fusion on, its default backend);

under each ``--threads`` setting (default: each side's default thread
count, then one thread each), and prints the median milliseconds of R runs
after two warm-up runs, the kaffe / OpenCV ratio (the target is at most
1.5), the thread settings, and whether the detections above 0.5 agree. ``--layers`` adds
kaffe's time per layer type (each layer run on its own, medians over R
forwards). Nothing is asserted: timings depend on the machine and its load.

The model is looked up in ``../shared/models/res10_ssd`` beside the
repository unless ``--model-dir`` says otherwise; it is never copied.
"""
import argparse
import collections
import contextlib
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import kaffe  # noqa: E402

DEFAULT_MODEL_DIR = os.path.join(ROOT, "..", "shared", "models", "res10_ssd")
PHOTO = os.path.join(ROOT, "..", "shared", "data", "images", "faces.jpg")
PROTOTXT = "deploy.prototxt"
WEIGHTS = "res10_300x300_ssd_iter_140000.caffemodel"


def median_ms(fn, repeat, warmup=2):
    """Median milliseconds of ``repeat`` calls after ``warmup`` calls (one
    side after the other: BLAS worker threads spinning after kaffe's last
    GEMM would slow an interleaved OpenCV on a small machine)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def blas_threads():
    """NumPy's BLAS thread count(s), as threadpoolctl reports them."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    pools = [f"{p.get('internal_api')} {p.get('num_threads')}"
             for p in threadpool_info() if p.get("user_api") == "blas"]
    return ", ".join(pools) or "none found"


@contextlib.contextmanager
def thread_limit(threads, cv2, default_cv_threads):
    """Both sides at ``threads`` threads ("default": each side's own
    default); yields a label saying what was used."""
    if threads == "default":
        yield f"default threads (BLAS {blas_threads()})"
        return
    count = int(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield "default threads (threadpoolctl missing: no limit possible)"
        return
    if cv2 is not None:
        cv2.setNumThreads(count)
    try:
        with threadpool_limits(limits=count, user_api="blas"):
            yield f"{count} thread(s) each"
    finally:
        if cv2 is not None:
            cv2.setNumThreads(default_cv_threads)


def input_blob(cv2):
    if cv2 is not None and os.path.exists(PHOTO):
        image = cv2.imread(PHOTO)
        return "faces.jpg", cv2.dnn.blobFromImage(
            image, 1.0, (300, 300), (104.0, 177.0, 123.0))
    rng = np.random.default_rng(0)
    return "random image", rng.uniform(-128, 128, (1, 3, 300, 300)).astype(
        np.float32)


def layer_report(net, repeat):
    """Median ms of each layer's forward, summed per layer type."""
    names = list(net._layer_names)
    samples = collections.defaultdict(list)
    for _ in range(repeat):
        for name in names:
            start = time.perf_counter()
            net.forward(start=name, end=name)
            samples[name].append(time.perf_counter() - start)
    by_type = collections.Counter()
    for name, layer in zip(names, net.layers):
        by_type[layer.type] += 1000 * statistics.median(samples[name])
    total = sum(by_type.values())
    print(f"  kaffe per layer type (sum of per-layer medians {total:.1f} ms):")
    for kind, ms in by_type.most_common():
        print(f"    {kind:<16} {ms:8.2f} ms {100 * ms / total:5.1f} %")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--layers", action="store_true",
                        help="also time kaffe layer by layer")
    parser.add_argument("--model-dir", default=DEFAULT_MODEL_DIR)
    parser.add_argument("--threads", default="default,1",
                        help="comma-separated thread settings to compare, "
                             "each applied to both sides: 'default' (each "
                             "side's own) or a count (BLAS threads for "
                             "kaffe via threadpoolctl, cv2.setNumThreads for "
                             "OpenCV); default 'default,1'")
    args = parser.parse_args(argv)
    prototxt = os.path.join(args.model_dir, PROTOTXT)
    weights = os.path.join(args.model_dir, WEIGHTS)
    if not (os.path.exists(prototxt) and os.path.exists(weights)):
        print(f"res10_ssd not found in {args.model_dir} (needs {PROTOTXT} "
              f"and {WEIGHTS}); pass --model-dir")
        return 1
    try:
        import cv2
    except ImportError:
        cv2 = None
        print("OpenCV (cv2) is not installed: timing kaffe only")
    print(f"numpy {np.__version__} (BLAS threads: {blas_threads()}), "
          f"{os.cpu_count()} CPUs"
          + (f"; OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads)"
             if cv2 else ""))

    what, blob = input_blob(cv2)
    net = kaffe.Net(prototxt, kaffe.TEST, weights=weights)
    net.blobs["data"].data[...] = blob
    reference = None
    if cv2 is not None:
        reference = cv2.dnn.readNetFromCaffe(prototxt, weights)
        reference.setInput(blob)
    default_cv_threads = cv2.getNumThreads() if cv2 else None
    for threads in args.threads.split(","):
        with thread_limit(threads, cv2, default_cv_threads) as label:
            kaffe_ms = median_ms(net.forward, args.repeat)
            ours = net.blobs["detection_out"].data.reshape(-1, 7)
            line = (f"res10 SSD 300×300 on {what}, {label}: kaffe "
                    f"{kaffe_ms:7.1f} ms")
            if reference is not None:
                cv_ms = median_ms(reference.forward, args.repeat)
                theirs = reference.forward().reshape(-1, 7)
                a, b = ours[ours[:, 2] > 0.5], theirs[theirs[:, 2] > 0.5]
                same = len(a) == len(b) and np.allclose(a[:, 3:], b[:, 3:],
                                                        atol=1e-4)
                line += (f" | OpenCV {cv_ms:7.1f} ms | ratio "
                         f"{kaffe_ms / cv_ms:5.2f} (target ≤ 1.5) | "
                         f"{len(a)} detections > 0.5, "
                         f"{'equal to' if same else 'DIFFERENT from'} "
                         "OpenCV's")
            print(line, flush=True)
    if args.layers:
        layer_report(net, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
