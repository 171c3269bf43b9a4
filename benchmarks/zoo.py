"""Forward speed of a suite of real architectures: kaffe against OpenCV's
dnn module (its Caffe importer), measured in the same run.

Run ``python benchmarks/zoo.py [--quick] [--busy] [--nets a,b]
[--batches 1,8] [--threads 1,all] [--repeat R] [--rounds K]
[--json FILE] [--plot FILE]``.

The suite: LeNet, MTCNN's P-Net, AlexNet, GoogLeNet, VGG-16, ResNet-50,
SqueezeNet 1.1, MobileNet v1 and v2 (prototxts in benchmarks/nets/, written
from the published architectures by benchmarks/nets/generate.py, random
weights saved to a temporary caffemodel that both sides load), open_nsfw
and the res10 SSD face detector (their real weights, read from
../shared/models beside the repository; never copied). A net kaffe cannot
build (a layer type it lacks) is left out with a printed note.

For every net, batch size (default 1 and 8) and thread setting (default
one thread, and every core: kaffe via ``kaffe.threads.set_num_threads``,
which also sets its BLAS through threadpoolctl, OpenCV via
``cv2.setNumThreads``) it prints the median milliseconds of one forward
on the same float32 input, kaffe and OpenCV (its defaults otherwise:
layer fusion on, its own CPU backend), timed in ``--rounds`` alternating
blocks of ``--repeat`` forwards each after a warm-up, then the ratio
kaffe / OpenCV (below 1: kaffe is faster) and the largest difference of
the two outputs relative to their scale. Then, per setting, the geometric
mean of the ratios and the largest one. Memory: kaffe's weights, its blobs
and the peak of what one forward allocates besides (tracemalloc); "lean":
weights plus the peak of a forward with ``net.release_intermediates`` on
(each intermediate blob freed after its last reader), next to the issue's
bound (weights + the two largest activations × 1.5).

``--fold``: also time the opt-in ``kaffe.fold_batchnorm(net)`` (BatchNorm
and Scale folded into the layer before, as OpenCV's importer always does;
float32 results change by rounding), each against OpenCV again.
``--quick``: batch 1, all cores, one round of 3. ``--cpu-clock``: one
thread, timed by the process's CPU time instead of the wall clock, which
is far steadier on a machine other processes load (what a loaded core
costs both sides shows in the wall-clock runs instead). ``--busy``: the
whole measurement runs twice, once as it is and once with a CPU-bound
neighbour process pinned to the last core, and a table of busy / quiet
times for both sides follows. Nothing is asserted: the timings depend on the machine
and its load; compare the ratios, which are measured side by side.
"""
import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import kaffe  # noqa: E402
from kaffe import threads  # noqa: E402
import kaffe.fold  # noqa: E402

NETS_DIR = os.path.join(ROOT, "benchmarks", "nets")
SHARED = os.path.join(ROOT, "..", "shared", "models")

# display name, prototxt, caffemodel (None: random weights)
SUITE = [
    ("LeNet", os.path.join(NETS_DIR, "lenet.prototxt"), None),
    ("MTCNN P-Net", os.path.join(NETS_DIR, "pnet.prototxt"), None),
    ("AlexNet", os.path.join(NETS_DIR, "alexnet.prototxt"), None),
    ("GoogLeNet", os.path.join(NETS_DIR, "googlenet.prototxt"), None),
    ("VGG-16", os.path.join(NETS_DIR, "vgg16.prototxt"), None),
    ("ResNet-50", os.path.join(NETS_DIR, "resnet50.prototxt"), None),
    ("SqueezeNet 1.1", os.path.join(NETS_DIR, "squeezenet11.prototxt"),
     None),
    ("MobileNet v1", os.path.join(NETS_DIR, "mobilenet_v1.prototxt"), None),
    ("MobileNet v2", os.path.join(NETS_DIR, "mobilenet_v2.prototxt"), None),
    ("open_nsfw", os.path.join(SHARED, "open_nsfw", "deploy.prototxt"),
     os.path.join(SHARED, "open_nsfw", "resnet_50_1by2_nsfw.caffemodel")),
    ("res10 SSD", os.path.join(SHARED, "res10_ssd", "deploy.prototxt"),
     os.path.join(SHARED, "res10_ssd",
                  "res10_300x300_ssd_iter_140000.caffemodel")),
]


def key(name):
    return "".join(c for c in name.lower() if c.isalnum())


def build(name, prototxt, weights, folder):
    """The kaffe TEST net and the caffemodel both sides load (random
    weights saved to ``folder`` when none ship; BatchNorm statistics set
    to mean 0, variance 1 so activations stay in range)."""
    if weights is not None:
        return kaffe.Net(prototxt, kaffe.TEST, weights=weights), weights
    kaffe.set_random_seed(1)
    net = kaffe.Net(prototxt, kaffe.TEST)
    for layer_name, layer in zip(net._layer_names, net.layers):
        if layer.type == "BatchNorm":
            mean, var, factor = net.params[layer_name]
            mean.data[...] = 0
            var.data[...] = 1
            factor.data[...] = 1
    path = os.path.join(folder, key(name) + ".caffemodel")
    net.save(path)
    return net, path


def input_array(net, batch, real):
    shape = (batch,) + tuple(net.blobs[net.inputs[0]].data.shape[1:])
    rng = np.random.default_rng(0)
    if real:   # image-like: mean-subtracted 8-bit values
        return rng.uniform(-120, 120, shape).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


def set_threads(count, cv2):
    threads.set_num_threads(count)
    cv2.setNumThreads(count)


def time_pair(kaffe_fn, cv_fn, repeat, rounds, clock=time.perf_counter):
    """Median ms of kaffe_fn and cv_fn, timed in alternating blocks."""
    kaffe_fn()
    cv_fn()
    samples = ([], [])
    for _ in range(rounds):
        for fn, out in ((kaffe_fn, samples[0]), (cv_fn, samples[1])):
            for _ in range(repeat):
                start = clock()
                fn()
                out.append(clock() - start)
    return tuple(1000 * statistics.median(s) for s in samples)


def memory(net):
    """(weights MB, blobs MB, forward workspace peak MB, bound MB, lean MB):
    the bound is weights + 1.5 × the two largest blobs; lean is weights +
    the peak of one forward with ``net.release_intermediates`` on (blobs
    allocated as they are written, freed after their last reader). Both
    peaks on one thread."""
    weights = sum(b.data.nbytes for p in net.params.values() for b in p)
    sizes = sorted((b.data.nbytes for b in net.blobs.values()),
                   reverse=True)
    blobs = sum(sizes)
    # On one thread: kaffe's task threads each keep their own scratch.
    threads_before = threads.get_num_threads()
    threads.set_num_threads(1)
    tracemalloc.start()
    net.forward()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    net.release_intermediates = True
    net.forward()       # frees the intermediate blobs
    tracemalloc.start()
    net.forward()
    lean = weights + tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    net.release_intermediates = False
    net.forward()
    threads.set_num_threads(threads_before)
    bound = weights + 1.5 * sum(sizes[:2])
    mb = 1 << 20
    return weights / mb, blobs / mb, peak / mb, bound / mb, lean / mb


def run_suite(args, cv2, folder, label):
    rows = []
    notes = []
    wanted = set(key(n) for n in args.nets.split(",")) if args.nets else None
    for name, prototxt, weights in SUITE:
        if wanted is not None and key(name) not in wanted:
            continue
        if not os.path.exists(prototxt) or (
                weights is not None and not os.path.exists(weights)):
            notes.append(f"{name}: left out, {prototxt} or its weights "
                         f"not found")
            continue
        try:
            net, model = build(name, prototxt, weights, folder)
        except Exception as error:  # a layer type kaffe lacks, ...
            notes.append(f"{name}: left out, kaffe cannot build it: "
                         f"{type(error).__name__}: "
                         f"{str(error).splitlines()[0][:120]}")
            continue
        cv_net = cv2.dnn.readNetFromCaffe(prototxt, model)
        cv_net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        cv_net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        data = net.inputs[0]
        for batch in args.batch_list:
            x = input_array(net, batch, weights is not None)
            net.blobs[data].reshape(*x.shape)
            net.reshape()
            net.blobs[data].data[...] = x
            cv_net.setInput(x)
            out_name = net.outputs[0]
            ours = net.forward()[out_name].copy()
            theirs = cv_net.forward(out_name)
            diff = float("nan")
            if ours.size == theirs.size and "SSD" not in name:
                scale = max(1e-12, float(np.abs(theirs).max()))
                diff = float(np.abs(ours.ravel() - theirs.ravel()).max()
                             / scale)
            mem = memory(net)
            folded = None
            if args.fold and kaffe.fold.foldable_chains(net):
                folded = kaffe.fold_batchnorm(net)
                folded.blobs[data].data[...] = x
                f_out = folded.forward()[out_name]
                f_diff = float(np.abs(f_out - ours).max()
                               / max(1e-12, float(np.abs(ours).max())))
            for count in args.thread_list:
                set_threads(count, cv2)
                k_ms, c_ms = time_pair(net.forward, cv_net.forward,
                                       args.repeat, args.rounds, args.clock)
                row = dict(net=name, batch=batch, threads=count,
                           kaffe_ms=k_ms, opencv_ms=c_ms,
                           ratio=k_ms / c_ms, diff=diff, mem=mem,
                           label=label)
                rows.append(row)
                print(f"{name:15s} b{batch:<2d} t{count} | kaffe "
                      f"{k_ms:9.2f} ms | OpenCV {c_ms:9.2f} ms | ratio "
                      f"{k_ms / c_ms:5.2f} | max|Δ|/scale {diff:.1e} | "
                      f"MB weights {mem[0]:.1f} blobs {mem[1]:.1f} "
                      f"forward peak {mem[2]:.1f}, lean {mem[4]:.1f} "
                      f"(bound {mem[3]:.1f})",
                      flush=True)
                if folded is not None:
                    f_ms, c2_ms = time_pair(folded.forward, cv_net.forward,
                                            args.repeat, args.rounds,
                                            args.clock)
                    row.update(folded_ms=f_ms, folded_ratio=f_ms / c2_ms)
                    print(f"{'':15s} folded | kaffe {f_ms:9.2f} ms | OpenCV "
                          f"{c2_ms:9.2f} ms | ratio {f_ms / c2_ms:5.2f} | "
                          f"max|Δ| to unfolded / scale {f_diff:.1e}",
                          flush=True)
        del net, cv_net
    return rows, notes


def summary(rows, notes):
    for note in notes:
        print("note:", note)
    settings = sorted({(r["batch"], r["threads"]) for r in rows})
    print("\nsetting          nets  geomean kaffe/OpenCV  max (net)")
    for batch, count in settings:
        sel = [r for r in rows if (r["batch"], r["threads"])
               == (batch, count)]
        geo = math.exp(statistics.fmean(math.log(r["ratio"]) for r in sel))
        worst = max(sel, key=lambda r: r["ratio"])
        print(f"batch {batch:<2d} t{count}       {len(sel):3d}  "
              f"{geo:8.2f}              {worst['ratio']:.2f} "
              f"({worst['net']})")
        if any("folded_ratio" in r for r in sel):
            geo = math.exp(statistics.fmean(
                math.log(r.get("folded_ratio", r["ratio"])) for r in sel))
            print(f"  with --fold (opt-in, folded where possible)    "
                  f"{geo:8.2f}")


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def neighbour():
    """A CPU-bound process pinned to the last core."""
    code = "while True: pass"
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        last = max(os.sched_getaffinity(0))
        os.sched_setaffinity(proc.pid, {last})
    except (AttributeError, OSError):
        pass
    return proc


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    nets = list(dict.fromkeys(r["net"] for r in rows))
    settings = sorted({(r["label"], r["batch"], r["threads"])
                       for r in rows})
    fig, ax = plt.subplots(figsize=(max(8, len(nets) * 0.9), 4.5))
    width = 0.8 / max(1, len(settings))
    for i, (label, batch, count) in enumerate(settings):
        values = []
        for net in nets:
            match = [r["ratio"] for r in rows if (r["net"], r["label"],
                     r["batch"], r["threads"]) == (net, label, batch, count)]
            values.append(match[0] if match else float("nan"))
        ax.bar([j + i * width for j in range(len(nets))], values, width,
               label=f"{label} batch {batch}, {count} thread(s)")
    ax.set_yscale("log")    # ratios: 2× slower and 2× faster look alike
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(nets))])
    ax.set_xticklabels(nets, rotation=30, ha="right")
    ax.set_ylabel("forward time kaffe / OpenCV (lower is better)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print("plot written to", path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--busy", action="store_true")
    parser.add_argument("--fold", action="store_true",
                        help="also time kaffe.fold_batchnorm(net), the "
                             "opt-in BatchNorm/Scale folding (changes "
                             "float32 rounding)")
    parser.add_argument("--nets", default="")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--threads", default="1,all")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", default="")
    parser.add_argument("--plot", default="")
    parser.add_argument("--cpu-clock", action="store_true",
                        help="time with the process's CPU time instead of "
                             "the wall clock (one thread only: steadier on "
                             "a loaded machine)")
    args = parser.parse_args()
    try:
        import cv2
    except ImportError:
        print("OpenCV (cv2) is not installed: nothing to compare with")
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(
        os, "sched_getaffinity") else os.cpu_count()
    if args.quick:
        args.batches, args.threads, args.repeat, args.rounds = (
            "1", "all", 3, 1)
    args.clock = time.perf_counter
    if args.cpu_clock:
        args.clock = time.process_time
        args.threads = "1"
    args.batch_list = [int(b) for b in args.batches.split(",")]
    args.thread_list = [cores if t == "all" else int(t)
                        for t in args.threads.split(",")]
    blas = "not settable (no threadpoolctl)"
    if threads.blas_available():
        import threadpoolctl
        info = threadpoolctl.threadpool_info()
        blas = ", ".join(f"{i['internal_api']} {i.get('version')} "
                         f"{i.get('architecture')}" for i in info
                         if i["user_api"] == "blas")
    print(f"numpy {np.__version__}, OpenCV {cv2.__version__}, {cores} "
          f"cores, BLAS {blas}; OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    print(f"threads: kaffe.threads.set_num_threads(t) (BLAS via "
          f"threadpoolctl, busy-adaptive) and cv2.setNumThreads(t); "
          f"median of {args.rounds} × {args.repeat} forwards, "
          f"{'CPU time' if args.cpu_clock else 'wall clock'}; load "
          f"average {load_average()}\n")
    all_rows = []
    with tempfile.TemporaryDirectory() as folder:
        rows, notes = run_suite(args, cv2, folder, "quiet")
        all_rows += rows
        summary(rows, notes)
        if args.busy:
            print("\nwith a CPU-bound neighbour on the last core:")
            proc = neighbour()
            try:
                time.sleep(0.5)
                busy, notes = run_suite(args, cv2, folder, "busy")
            finally:
                proc.kill()
                proc.wait()
            all_rows += busy
            summary(busy, notes)
            print("\nbusy / quiet time         kaffe   OpenCV")
            for q in rows:
                for b in busy:
                    if (b["net"], b["batch"], b["threads"]) == (
                            q["net"], q["batch"], q["threads"]):
                        print(f"{q['net']:15s} b{q['batch']:<2d} "
                              f"t{q['threads']}   "
                              f"{b['kaffe_ms'] / q['kaffe_ms']:6.2f} "
                              f"{b['opencv_ms'] / q['opencv_ms']:8.2f}")
    if args.json:
        import json
        with open(args.json, "w") as f:
            json.dump(all_rows, f, indent=1)
    if args.plot:
        plot(all_rows, args.plot)


if __name__ == "__main__":
    main()
