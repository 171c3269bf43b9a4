"""Data-parallel training throughput: 1 worker × 1 thread, 2 workers × 1
thread (``mpiexec -n 2``) and 1 worker × 2 threads, on the same net.

Run ``python benchmarks/parallel.py [--steps S] [--batch B]``. The net is
examples/mnist's LeNet (train phase) reading a synthetic 28×28 LMDB through
its Data layer (so the workers read their shards, prefetch threads
included), trained with the recipe's SGD; every worker runs ``--batch``
images per step, so 2 workers train on twice the images per step. Each
configuration runs in its own processes (the threads are fixed with
OMP_NUM_THREADS / OPENBLAS_NUM_THREADS before NumPy loads, and with
kaffe.threads, not adaptive); after warm-up steps, worker 0 times S steps between two
barriers. It prints images/s, the compute and all-reduce time per step, and
the ratios against 1 worker × 1 thread measured in the same run. Nothing is
asserted: on a shared machine the numbers move; compare the ratios.

``--model alexnet|resnet50 [--batch B]`` instead times one worker's
training step of that net (random data, 1 thread, then 2 threads) and
prints the compute per image and the gradient bytes, the two inputs of the
scaling model in docs/scaling.md.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

SOLVER = """net: "{net}"
base_lr: 0.01
momentum: 0.9
weight_decay: 0.0005
lr_policy: "inv"
gamma: 0.0001
power: 0.75
display: 0
max_iter: 100000000
snapshot_after_train: false
random_seed: 1
layer_wise_reduce: {layer_wise}
"""


def _threads_env(threads):
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                 "MKL_NUM_THREADS"):
        env[name] = str(threads)
    env.pop("KAFFE_NUM_THREADS", None)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _make_lmdb(path, count=2048):
    import numpy as np

    from kaffe.data.datum import array_to_datum
    from kaffe.data.db import BatchWriter
    rng = np.random.RandomState(0)
    with BatchWriter(path, "lmdb") as writer:
        for i in range(count):
            image = rng.randint(0, 256, (1, 28, 28)).astype(np.uint8)
            writer.put(b"%08d" % i, array_to_datum(image, i % 10)
                       .SerializeToString())


def _write_net(folder, batch):
    with open(os.path.join(ROOT, "examples/mnist/lenet_train_test.prototxt"),
              encoding="utf-8") as f:
        text = f.read()
    db = os.path.join(folder, "train_lmdb")
    text = text.replace("examples/mnist/mnist_train_lmdb", db)
    text = text.replace("batch_size: 64", f"batch_size: {batch}")
    path = os.path.join(folder, "lenet.prototxt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


# -- one worker's measurement ---------------------------------------------------
def worker(args):
    import numpy as np

    import kaffe
    from kaffe import parallel
    from kaffe.parallel.threads import limit_threads
    comm = None
    if parallel.launched_size() > 1:
        comm = parallel.init(threads=args.threads)
    limit_threads(args.threads, adaptive=False)
    solver = kaffe.get_solver(args.solver)
    times = {"comm": [], "wait": []}
    if comm is not None:
        nccl = kaffe.NCCL(solver)
        nccl.bcast()
        reduce = nccl.on_gradients_ready

        def timed_reduce():
            # The barrier separates waiting for the slower worker from the
            # all-reduce itself (it costs a small message round).
            start = time.perf_counter()
            if not args.layer_wise:
                comm.barrier()
            middle = time.perf_counter()
            reduce()
            end = time.perf_counter()
            times["wait"].append(middle - start)
            times["comm"].append(end - middle)
        nccl.on_gradients_ready = timed_reduce
        solver.add_callback(nccl)
        if args.layer_wise:
            solver.net.after_backward(nccl)
    solver.step(args.warmup)
    if comm is not None:
        comm.barrier()
    times["comm"], times["wait"] = [], []
    start = time.perf_counter()
    solver.step(args.steps)
    if comm is not None:
        comm.barrier()
    elapsed = time.perf_counter() - start
    size = 1 if comm is None else comm.size
    grad_bytes = sum(b.count for b in solver.net.learnable_params) * \
        np.dtype(np.float32).itemsize
    alone = []
    if comm is not None:
        # The all-reduce alone (no training around it), for the model.
        buffer = np.ones(grad_bytes // 4, np.float32)
        for _ in range(args.steps):
            comm.barrier()
            start = time.perf_counter()
            comm.allreduce_sum(buffer)
            alone.append(time.perf_counter() - start)
    if comm is None or comm.rank == 0:
        batch = solver.net.blobs["data"].shape[0]
        print(json.dumps({
            "workers": size, "threads": args.threads,
            "images_per_s": size * batch * args.steps / elapsed,
            "step_ms": 1000 * elapsed / args.steps,
            "allreduce_ms": 1000 * _median(times["comm"]),
            "allreduce_mean_ms": 1000 * _mean(times["comm"]),
            "wait_ms": 1000 * _mean(times["wait"]),
            "allreduce_alone_ms": 1000 * _median(alone),
            "gradient_bytes": grad_bytes}), flush=True)


def _median(values):
    return sorted(values)[len(values) // 2] if values else 0.0


def _mean(values):
    return sum(values) / len(values) if values else 0.0


# -- the driver -----------------------------------------------------------------
def _run(command, threads):
    result = subprocess.run(command, env=_threads_env(threads),
                            capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        sys.exit(f"benchmark run failed: {' '.join(command)}\n"
                 f"{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _mpiexec():
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.path.exists(beside) else shutil.which("mpiexec")


def driver(args):
    import numpy as np
    mpiexec = _mpiexec()
    if mpiexec is None:
        sys.exit("no mpiexec: pip install 'kaffe[mpi]'")
    folder = tempfile.mkdtemp(prefix="kaffe-parallel-bench-")
    try:
        _make_lmdb(os.path.join(folder, "train_lmdb"))
        net = _write_net(folder, args.batch)
        solver = os.path.join(folder, "solver.prototxt")
        with open(solver, "w", encoding="utf-8") as f:
            f.write(SOLVER.format(net=net, layer_wise=str(
                args.layer_wise).lower()))
        me = [sys.executable, os.path.abspath(__file__), "--worker",
              "--solver", solver, "--steps", str(args.steps), "--warmup",
              str(args.warmup)] + (["--layer-wise"] if args.layer_wise
                                   else [])
        configs = [("1 worker  x 1 thread ", me + ["--threads", "1"], 1),
                   ("2 workers x 1 thread ",
                    [mpiexec, "-n", "2"] + me + ["--threads", "1"], 1),
                   ("1 worker  x 2 threads", me + ["--threads", "2"], 2)]
        print(f"LeNet (examples/mnist), batch {args.batch} per worker, "
              f"{args.steps} steps after {args.warmup} warm-up, "
              f"{'layer-wise' if args.layer_wise else 'flat'} all-reduce; "
              f"numpy {np.__version__}, {os.cpu_count()} CPUs")
        results = []
        for name, command, threads in configs:
            runs = [_run(command, threads) for _ in range(args.repeat)]
            best = max(runs, key=lambda r: r["images_per_s"])
            results.append((name, best))
        base = results[0][1]["images_per_s"]
        print(f"gradient: {results[0][1]['gradient_bytes']:,} bytes")
        print(f"{'configuration':24} {'images/s':>9} {'ms/step':>8} "
              f"{'allreduce ms':>17} {'wait ms':>8} {'vs 1x1':>7}")
        for name, r in results:
            reduce = f"{r['allreduce_ms']:.3f} ({r['allreduce_mean_ms']:.2f})"
            print(f"{name:24} {r['images_per_s']:9.1f} {r['step_ms']:8.2f} "
                  f"{reduce:>17} {r['wait_ms']:8.2f} "
                  f"{r['images_per_s'] / base:6.2f}x")
        print("allreduce ms: median (mean) time to sum the gradients, after "
              "a barrier;\nwait ms: mean wait at that barrier for the "
              "slower worker")
        two = results[1][1]
        print(f"the all-reduce alone (no training around it, median): "
              f"{two['allreduce_alone_ms']:.3f} ms for "
              f"{two['gradient_bytes']:,} bytes")
        print(f"(best of {args.repeat} runs each; threads fixed per worker "
              "with OMP_NUM_THREADS/OPENBLAS_NUM_THREADS and "
              "kaffe.threads.set_num_threads(n, adaptive=False))")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- compute per image of bigger nets (for docs/scaling.md) ----------------------
def alexnet(batch):
    """BVLC AlexNet's train net (grouped convs, LRN, dropout), Input data."""
    def conv(name, bottom, n, k, s=1, p=0, g=1):
        return (f'layer {{ name: "{name}" type: "Convolution" bottom: '
                f'"{bottom}" top: "{name}" convolution_param {{ num_output: '
                f'{n} kernel_size: {k} stride: {s} pad: {p} group: {g} '
                f'weight_filler {{ type: "gaussian" std: 0.01 }} }} }}\n'
                f'layer {{ name: "r{name}" type: "ReLU" bottom: "{name}" '
                f'top: "{name}" }}\n')

    def pool(name, bottom):
        return (f'layer {{ name: "{name}" type: "Pooling" bottom: "{bottom}"'
                f' top: "{name}" pooling_param {{ pool: MAX kernel_size: 3 '
                f'stride: 2 }} }}\n')

    def lrn(name, bottom):
        return (f'layer {{ name: "{name}" type: "LRN" bottom: "{bottom}" '
                f'top: "{name}" lrn_param {{ local_size: 5 alpha: 0.0001 '
                f'beta: 0.75 }} }}\n')

    def fc(name, bottom, n, relu=True):
        text = (f'layer {{ name: "{name}" type: "InnerProduct" bottom: '
                f'"{bottom}" top: "{name}" inner_product_param {{ '
                f'num_output: {n} weight_filler {{ type: "gaussian" '
                f'std: 0.005 }} }} }}\n')
        if relu:
            text += (f'layer {{ name: "r{name}" type: "ReLU" bottom: '
                     f'"{name}" top: "{name}" }}\n'
                     f'layer {{ name: "d{name}" type: "Dropout" bottom: '
                     f'"{name}" top: "{name}" }}\n')
        return text

    return (_input(batch, 227) + conv("conv1", "data", 96, 11, 4) +
            lrn("norm1", "conv1") + pool("pool1", "norm1") +
            conv("conv2", "pool1", 256, 5, p=2, g=2) + lrn("norm2", "conv2")
            + pool("pool2", "norm2") + conv("conv3", "pool2", 384, 3, p=1) +
            conv("conv4", "conv3", 384, 3, p=1, g=2) +
            conv("conv5", "conv4", 256, 3, p=1, g=2) + pool("pool5", "conv5")
            + fc("fc6", "pool5", 4096) + fc("fc7", "fc6", 4096) +
            fc("fc8", "fc7", 1000, relu=False) + _loss("fc8"))


def resnet50(batch):
    """ResNet-50 as Kaiming He's Caffe release (BatchNorm + Scale)."""
    layers = []

    def conv_bn(name, bottom, n, k, s=1, p=0, relu=True):
        layers.append(
            f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}"'
            f' top: "{name}" convolution_param {{ num_output: {n} '
            f'kernel_size: {k} stride: {s} pad: {p} bias_term: false '
            f'weight_filler {{ type: "msra" }} }} }}\n'
            f'layer {{ name: "bn_{name}" type: "BatchNorm" bottom: "{name}" '
            f'top: "{name}" }}\n'
            f'layer {{ name: "sc_{name}" type: "Scale" bottom: "{name}" '
            f'top: "{name}" scale_param {{ bias_term: true }} }}\n')
        if relu:
            layers.append(f'layer {{ name: "r_{name}" type: "ReLU" bottom: '
                          f'"{name}" top: "{name}" }}\n')
        return name

    x = conv_bn("conv1", "data", 64, 7, 2, 3)
    layers.append('layer { name: "pool1" type: "Pooling" bottom: "conv1" '
                  'top: "pool1" pooling_param { pool: MAX kernel_size: 3 '
                  'stride: 2 } }\n')
    x = "pool1"
    for stage, (width, blocks) in enumerate(((64, 3), (128, 4), (256, 6),
                                             (512, 3)), start=2):
        for b in range(blocks):
            name = f"res{stage}{chr(ord('a') + b)}"
            stride = 2 if b == 0 and stage > 2 else 1
            if b == 0:
                short = conv_bn(f"{name}_branch1", x, 4 * width, 1, stride,
                                relu=False)
            else:
                short = x
            y = conv_bn(f"{name}_branch2a", x, width, 1, stride)
            y = conv_bn(f"{name}_branch2b", y, width, 3, 1, 1)
            y = conv_bn(f"{name}_branch2c", y, 4 * width, 1, relu=False)
            layers.append(
                f'layer {{ name: "{name}" type: "Eltwise" bottom: "{short}" '
                f'bottom: "{y}" top: "{name}" }}\n'
                f'layer {{ name: "r_{name}" type: "ReLU" bottom: "{name}" '
                f'top: "{name}" }}\n')
            x = name
    layers.append(f'layer {{ name: "pool5" type: "Pooling" bottom: "{x}" '
                  'top: "pool5" pooling_param { pool: AVE kernel_size: 7 '
                  'stride: 1 } }\n'
                  'layer { name: "fc1000" type: "InnerProduct" bottom: '
                  '"pool5" top: "fc1000" inner_product_param { num_output: '
                  '1000 weight_filler { type: "msra" } } }\n')
    return _input(batch, 224) + "".join(layers) + _loss("fc1000")


def _input(batch, size):
    return (f'layer {{ name: "data" type: "Input" top: "data" top: "label" '
            f'input_param {{ shape {{ dim: {batch} dim: 3 dim: {size} dim: '
            f'{size} }} shape {{ dim: {batch} }} }} }}\n')


def _loss(bottom):
    return (f'layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: '
            f'"{bottom}" bottom: "label" top: "loss" }}\n')


def model_worker(args):
    import numpy as np

    import kaffe
    from kaffe.parallel.threads import limit_threads
    from kaffe.proto import caffe_pb2
    from kaffe.proto.io import parse_text
    limit_threads(args.threads, adaptive=False)
    text = {"alexnet": alexnet, "resnet50": resnet50}[args.model](args.batch)
    param = caffe_pb2.SolverParameter()
    parse_text(SOLVER.replace('net: "{net}"\n', "").format(
        layer_wise="false"), param)
    param.net_param.CopyFrom(parse_text(text, caffe_pb2.NetParameter()))
    param.net_param.state.phase = caffe_pb2.TRAIN
    solver = kaffe.SGDSolver(param)
    rng = np.random.RandomState(0)
    net = solver.net
    net.blobs["data"].data[...] = rng.standard_normal(
        net.blobs["data"].shape).astype(np.float32)
    net.blobs["label"].data[...] = rng.randint(0, 1000, args.batch)
    solver.step(1)
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        solver.step(1)
        times.append(time.perf_counter() - start)
    times.sort()
    step = times[len(times) // 2]
    print(json.dumps({
        "model": args.model, "threads": args.threads, "batch": args.batch,
        "step_s": step, "s_per_image": step / args.batch,
        "params": int(sum(b.count for b in net.learnable_params)),
        "gradient_bytes": int(sum(b.count for b in net.learnable_params))
        * 4}), flush=True)


def model_driver(args):
    me = [sys.executable, os.path.abspath(__file__), "--model", args.model,
          "--worker", "--batch", str(args.batch), "--steps", str(args.steps)]
    print(f"{args.model}: one worker's training step, batch {args.batch}, "
          f"median of {args.steps}")
    rows = [_run(me + ["--threads", str(t)], t) for t in (1, 2)]
    for r in rows:
        print(f"  {r['threads']} thread(s): {r['step_s']:.3f} s/step, "
              f"{1000 * r['s_per_image']:.1f} ms/image; {r['params']:,} "
              f"learnable params = {r['gradient_bytes'] / 2**20:.1f} MiB of "
              "float32 gradients")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs per configuration (the best is shown)")
    parser.add_argument("--layer-wise", action="store_true",
                        help="reduce layer by layer during backward")
    parser.add_argument("--model", choices=("alexnet", "resnet50"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker", action="store_true",
                        help=argparse.SUPPRESS)
    parser.add_argument("--solver", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.model:
        args.batch = args.batch or 2
        args.steps = args.steps or 3
        (model_worker if args.worker else model_driver)(args)
    else:
        args.batch = args.batch or 64
        args.steps = args.steps or 40
        (worker if args.worker else driver)(args)


if __name__ == "__main__":
    main()
