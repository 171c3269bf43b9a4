#!/usr/bin/env python
"""An independent fuzz driver: mutation styles the built-in harness lacks.

    python scripts/fuzz_unseen.py --cases 2000 --out /tmp/kaffe-unseen
    python scripts/fuzz_unseen.py --minutes 20 --kinds netfield,rewire

Where scripts/fuzz.py mutates the seed corpus of kaffe.testing.fuzz, this
script starts from its own seeds (small nets built from the fork layers --
PriorBox, DetectionOutput, Permute, Normalize, ROIPooling, PSROIPooling,
Proposal, Interp, Upsample, ShuffleChannel, ConvolutionDepthwise, Lstm,
CTCGreedyDecoder, BN, Axpy, ... -- and, when ../shared is there, the real
res10_ssd net and weights) and mutates them by *schema*: any scalar field
of a layer's parameter message, set or not, takes an extreme value (0, -1,
2^31-1, 2^32-1, 2^63-1, nan, inf, 1e38, ...), repeated fields grow to
hundreds of entries, layer types are swapped, bottoms and tops rewired.
Weights files are truncated, bit-flipped and re-encoded with mutated blob
shapes; solver prototxts get extreme values; solver states (binary and
HDF5) and binaryproto means are rewritten with lying shapes.

Kinds: netfield, rewire, weights, solver, solverstate, mean, cli; with
--sweep, every single field of every seed layer takes each extreme value in
turn (a deterministic run of a few thousand cases).

Each case runs in a forked child under RLIMIT_AS (3 GiB) and a timeout
(20 s). A case fails when an exception outside kaffe's error family
escapes, a MemoryError escapes, the CLI prints a traceback or "please
report", the child crashes, or it runs past the timeout. Failures are
grouped by the innermost kaffe source line and kept under OUT/failures.
Exits 1 when anything failed.
"""
import argparse
import collections
import contextlib
import io
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SHARED = os.path.join(os.path.dirname(ROOT), "shared")

import numpy as np  # noqa: E402
from google.protobuf import text_format  # noqa: E402

import kaffe  # noqa: E402
from kaffe.core.errors import KaffeError  # noqa: E402
from kaffe.proto import caffe_pb2  # noqa: E402

from fuzz_unseen_mutators import (  # noqa: E402
    SEEDS, SOLVER, SOLVER_TYPES, TRAIN_NET, _input,
    _mutate_h5, _scalar_fields, mutate_bytes, mutate_fields, mutate_message,
    mutate_net_fields, mutate_rewire, sweep_cases)

GiB = 1 << 30


# -- cases ---------------------------------------------------------------------
class Context:
    def __init__(self, out, rng):
        self.out = out
        self.seed_dir = os.path.join(out, "seeds")
        os.makedirs(self.seed_dir, exist_ok=True)
        self.train_net = self._write("train_net.prototxt", TRAIN_NET)
        self.solvers = {}
        self.states = []
        self.weights = []
        for name, text in SEEDS.items():
            path = self._write(f"{name}.prototxt", text)
            net = kaffe.Net(path, kaffe.TEST)
            net.forward()
            w = os.path.join(self.seed_dir, f"{name}.caffemodel")
            net.save(w)
            net.save_hdf5(w + ".h5")
            self.weights.append((path, w))
        for t in SOLVER_TYPES:
            prefix = os.path.join(self.seed_dir, f"snap_{t}")
            fmt = "HDF5" if t in ("Adam", "RMSProp") else "BINARYPROTO"
            text = SOLVER.format(net=self.train_net, prefix=prefix, type=t) + \
                f"snapshot_format: {fmt}\n"
            if t in ("AdaGrad", "RMSProp"):
                text = text.replace("momentum: 0.9\n", "")
            if t == "AdaDelta":
                text = text.replace("momentum: 0.9", "momentum: 0.95")
            if t == "RMSProp":
                text += "rms_decay: 0.98\n"
            spath = self._write(f"solver_{t}.prototxt", text)
            self.solvers[t] = spath
            with contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()):
                solver = kaffe.get_solver(spath)
                solver.step(2)
            for f in os.listdir(self.seed_dir):
                if f.startswith(f"snap_{t}") and "solverstate" in f:
                    self.states.append((spath, os.path.join(self.seed_dir, f)))
        mean = caffe_pb2.BlobProto()
        mean.shape.dim.extend([1, 3, 4, 4])
        mean.data.extend([0.5] * 48)
        self.mean = os.path.join(self.seed_dir, "mean.binaryproto")
        with open(self.mean, "wb") as f:
            f.write(mean.SerializeToString())
        self.classify_net = self._write("classify.prototxt", _input(
            "data", 1, 3, 4, 4) + 'layer { name: "ip" type: "InnerProduct" '
            'bottom: "data" top: "prob" inner_product_param { num_output: 2 '
            'weight_filler { type: "xavier" } } }\n')
        kaffe.Net(self.classify_net, kaffe.TEST).save(
            self.classify_net + ".caffemodel")
        self.images = os.path.join(self.seed_dir, "images.npy")
        np.save(self.images, np.random.RandomState(0).uniform(
            0, 1, (2, 6, 6, 3)).astype(np.float32))
        self.image = os.path.join(self.seed_dir, "image.png")
        from PIL import Image
        Image.fromarray(np.random.RandomState(1).randint(
            0, 255, (20, 24, 3), dtype=np.uint8)).save(self.image)
        res10 = os.path.join(SHARED, "models", "res10_ssd")
        self.res10 = None
        if os.path.exists(os.path.join(res10, "deploy.prototxt")):
            self.res10 = (os.path.join(res10, "deploy.prototxt"),
                          os.path.join(res10,
                                       "res10_300x300_ssd_iter_140000.caffemodel"))

    def _write(self, name, text):
        path = os.path.join(self.seed_dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _fill_inputs(net, rng):
    npr = np.random.RandomState(rng.randrange(2**31))
    for name in net.inputs:
        blob = net.blobs[name]
        blob.data[...] = npr.uniform(-1, 8, blob.data.shape)


def make_case(kind, rng, ctx, case_dir):
    """Write the mutant; return a description of what to run."""
    os.makedirs(case_dir, exist_ok=True)
    mutant = os.path.join(case_dir, "mutant")
    if kind in ("netfield", "rewire", "cli"):
        name = rng.choice(sorted(SEEDS))
        text = SEEDS[name]
        if kind == "rewire" or (kind == "cli" and rng.random() < 0.3):
            text = mutate_rewire(rng, text)
        else:
            text = mutate_net_fields(rng, text)
        with open(mutant + ".prototxt", "w") as f:
            f.write(text)
        if kind == "cli":
            cmd = rng.choice(["explain", "draw", "doctor", "test", "export",
                              "time", "detect"] if name == "ssd" else
                             ["explain", "draw", "doctor", "test", "export",
                              "time"])
            return {"action": "cli", "cmd": cmd,
                    "path": mutant + ".prototxt",
                    "weights": dict((os.path.basename(n), w) for n, w
                                    in ctx.weights)[f"{name}.prototxt"],
                    "image": ctx.image}
        return {"action": "net", "path": mutant + ".prototxt",
                "fill": rng.randrange(2**31)}
    if kind == "weights":
        if ctx.res10 and rng.random() < 0.1:
            net_path, w = ctx.res10
        else:
            net_path, w = rng.choice(ctx.weights)
        if rng.random() < 0.25 and not w.startswith(SHARED):
            dst = mutant + ".caffemodel.h5"
            shutil.copy(w + ".h5", dst)
            _mutate_h5(rng, dst)
            return {"action": "weights", "net": net_path, "path": dst,
                    "cli": rng.random() < 0.3}
        data = _read(w)
        if rng.random() < 0.5:
            data = mutate_bytes(rng, data)
        else:
            msg = caffe_pb2.NetParameter.FromString(data)
            mutate_message(rng, msg)
            data = msg.SerializeToString()
        with open(mutant + ".caffemodel", "wb") as f:
            f.write(data)
        return {"action": "weights", "net": net_path,
                "path": mutant + ".caffemodel",
                "cli": rng.random() < 0.3}
    if kind == "solver":
        t = rng.choice(SOLVER_TYPES)
        msg = text_format.Parse(_read(ctx.solvers[t]).decode(),
                                caffe_pb2.SolverParameter())
        fields = [(m, f) for m, f in _scalar_fields(msg)
                  if f.name not in ("net", "train_net", "test_net",
                                    "snapshot_prefix", "net_param")]
        mutate_fields(rng, fields, rng.choice([1, 2, 3]))
        msg.max_iter = min(max(msg.max_iter, 0), 4) if rng.random() < 0.9 \
            else msg.max_iter
        msg.snapshot_prefix = os.path.join(case_dir, "snap")
        with open(mutant + ".prototxt", "w") as f:
            f.write(text_format.MessageToString(msg))
        return {"action": "solver", "path": mutant + ".prototxt",
                "cli": rng.random() < 0.3}
    if kind == "solverstate":
        spath, state = rng.choice(ctx.states)
        if state.endswith(".h5"):
            dst = mutant + ".solverstate.h5"
            shutil.copy(state, dst)
            _mutate_h5(rng, dst)
        else:
            data = _read(state)
            if rng.random() < 0.5:
                data = mutate_bytes(rng, data)
            else:
                msg = caffe_pb2.SolverState.FromString(data)
                mutate_message(rng, msg)
                msg.learned_net = state.replace(".solverstate", ".caffemodel")
                data = msg.SerializeToString()
            dst = mutant + ".solverstate"
            with open(dst, "wb") as f:
                f.write(data)
        return {"action": "state", "solver": spath, "path": dst,
                "cli": rng.random() < 0.3}
    if kind == "mean":
        msg = caffe_pb2.BlobProto.FromString(_read(ctx.mean))
        if rng.random() < 0.3:
            data = mutate_bytes(rng, msg.SerializeToString())
        else:
            mutate_message(rng, msg)
            data = msg.SerializeToString()
        with open(mutant + ".binaryproto", "wb") as f:
            f.write(data)
        return {"action": "mean", "path": mutant + ".binaryproto",
                "cli": rng.random() < 0.5, "net": ctx.classify_net,
                "images": ctx.images}
    raise ValueError(kind)


def run_case(case, scratch, rng):
    """(outcome, detail) of one case, in this (child) process."""
    if case["action"] == "solver":
        # a valid solver asking for a long run is slow by the user's choice
        from kaffe.testing.fuzz.runner import long_by_design
        if long_by_design(case["path"]):
            return "long", ""
    if case.get("cli") or case["action"] == "cli":
        from kaffe.tools.cli import main
        argv = _argv(case, scratch)
        err = io.StringIO()
        try:
            with contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(err):
                status = main(argv)
        except SystemExit as e:
            status = e.code
        except MemoryError as e:
            return "memory", _place(e)
        except BaseException as e:  # noqa: BLE001
            return "traceback", _place(e)
        text = err.getvalue()
        if "Traceback (most recent call last)" in text:
            return "traceback", text.strip().splitlines()[-1][:200]
        if "please report" in text or "ran out of memory" in text:
            return "internal", text.strip().splitlines()[-1][:200]
        return ("ok" if status in (0, None) else "kaffe"), f"exit {status}"
    try:
        _api(case, rng)
    except KaffeError as e:
        return "kaffe", type(e).__name__
    except MemoryError as e:
        return "memory", _place(e)
    except Exception as e:  # noqa: BLE001
        return "foreign", _place(e)
    return "ok", ""


def _argv(case, scratch):
    a = case["action"]
    if a == "cli":
        p = case["path"]
        return {"explain": ["explain", p],
                "draw": ["draw", p, os.path.join(scratch, "o.dot")],
                "doctor": ["doctor", "--model", p],
                "test": ["test", "--model", p, "--weights", case["weights"],
                         "--iterations", "1"],
                "export": ["export", p, case["weights"], "-o",
                           os.path.join(scratch, "o.onnx")],
                "detect": ["detect", p, case["weights"], case["image"],
                           "--threshold", "0"],
                "time": ["time", "--model", p, "--iterations", "1"],
                }[case["cmd"]]
    if a == "weights":
        return ["test", "--model", case["net"], "--weights", case["path"],
                "--iterations", "1"]
    if a == "solver":
        return ["train", "--solver", case["path"]]
    if a == "state":
        return ["train", "--solver", case["solver"], "--snapshot",
                case["path"]]
    if a == "mean":
        return ["classify", "--model_def", case["net"],
                "--pretrained_model", case["net"] + ".caffemodel",
                "--mean_file",
                case["path"], "--images_dim", "4,4", "--center_only",
                case["images"], os.path.join(scratch, "out.npy")]
    raise ValueError(a)


def _api(case, rng):
    a = case["action"]
    with contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        if a == "net":
            from kaffe.viz.explain import explain
            explain(case["path"])
            net = kaffe.Net(case["path"], kaffe.TEST)
            _fill_inputs(net, rng)
            net.forward()
            net2 = kaffe.Net(case["path"], kaffe.TRAIN)
            _fill_inputs(net2, rng)
            net2.forward()
            net2.backward()
        elif a == "weights":
            net = kaffe.Net(case["net"], kaffe.TEST, weights=case["path"])
            if "res10" not in case["net"]:
                net.forward()
        elif a == "solver":
            solver = kaffe.get_solver(case["path"])
            solver.step(2)
            solver.snapshot()
        elif a == "state":
            solver = kaffe.get_solver(case["solver"])
            solver.restore(case["path"])
            solver.step(1)
        elif a == "mean":
            from kaffe.proto.io import read_blobproto
            mean = kaffe.io.blobproto_to_array(read_blobproto(case["path"]))
            t = kaffe.io.Transformer({"data": (1, 3, 4, 4)})
            t.set_mean("data", mean[0] if mean.ndim == 4 and len(mean) else mean)


def _place(exc):
    frames = traceback.extract_tb(exc.__traceback__)
    where = None
    for frame in frames:
        if f"{os.sep}kaffe{os.sep}" in frame.filename:
            where = frame
    if where is None and frames:
        where = frames[-1]
    name = type(exc).__name__
    if where is None:
        return f"{name}: {str(exc)[:80]}"
    short = where.filename.split(f"{os.sep}kaffe{os.sep}")[-1]
    return f"{short}:{where.lineno} ({name}: {str(exc)[:80]})"


def fork_case(case, scratch, seed, timeout, address_space):
    """Run ``case`` in a forked child; (outcome, detail, seconds)."""
    r, w = os.pipe()
    start = time.time()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.close(r)
            import resource
            if address_space:
                resource.setrlimit(resource.RLIMIT_AS,
                                   (address_space, address_space))
            os.makedirs(scratch, exist_ok=True)
            os.chdir(scratch)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            outcome = run_case(case, scratch, random.Random(seed))
            os.write(w, json.dumps(outcome).encode())
        except BaseException as e:  # noqa: BLE001
            try:
                os.write(w, json.dumps(["foreign", "driver: " + repr(e)[:150]]
                                       ).encode())
            except BaseException:  # noqa: BLE001
                pass
        os._exit(0)
    os.close(w)
    deadline = start + timeout
    status = None
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.01)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(r)
        return "hang", f"over {timeout:.0f} s", time.time() - start
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    if os.WIFSIGNALED(status) or not data:
        return "crash", f"status {status}", time.time() - start
    outcome, detail = json.loads(data)
    return outcome, detail, time.time() - start


FAILURES = ("foreign", "memory", "traceback", "internal", "hang", "crash")
KINDS = ["netfield", "rewire", "cli", "weights", "solver", "solverstate",
         "mean"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--memory-gib", type=float, default=3.0)
    parser.add_argument("--out", default=None)
    parser.add_argument("--sweep", action="store_true",
                        help="run every single-field extreme value of every "
                             "seed layer instead of random cases")
    args = parser.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="kaffe-unseen-")
    os.makedirs(out, exist_ok=True)
    rng = random.Random(args.seed)
    with contextlib.redirect_stdout(io.StringIO()):
        ctx = Context(out, rng)
    kinds = args.kinds.split(",")
    counts = collections.Counter()
    places = collections.defaultdict(list)
    start = time.time()
    print(f"fuzzing into {out}", flush=True)
    if args.sweep:
        kinds = ["sweep"]
        sweep = sweep_cases(out)
    for i in range(args.cases):
        if args.minutes and time.time() - start > args.minutes * 60:
            break
        if args.sweep:
            kind = "sweep"
            try:
                case_dir, case = next(sweep)
            except StopIteration:
                break
        else:
            kind = kinds[i % len(kinds)]
            case_dir = os.path.join(out, "cases", str(i))
            try:
                case = make_case(kind, rng, ctx, case_dir)
            except Exception:  # noqa: BLE001 (a mutant the driver can't write)
                counts[(kind, "skipped")] += 1
                if os.environ.get("FUZZ_DEBUG"):
                    traceback.print_exc()
                shutil.rmtree(case_dir, ignore_errors=True)
                continue
        outcome, detail, secs = fork_case(case, os.path.join(case_dir, "s"),
                                          rng.randrange(2**31), args.timeout,
                                          int(args.memory_gib * GiB))
        counts[(kind, outcome)] += 1
        if outcome in FAILURES:
            keep = os.path.join(out, "failures", f"{i}-{kind}-{outcome}")
            shutil.rmtree(os.path.join(case_dir, "s"), ignore_errors=True)
            shutil.move(case_dir, keep)
            with open(os.path.join(keep, "case.json"), "w") as f:
                json.dump(case, f)
            first = detail not in places
            places[detail].append(keep)
            if first:
                print(f"[{i}] {kind} {outcome}: {detail} ({secs:.1f}s) {keep}",
                      flush=True)
        else:
            shutil.rmtree(case_dir, ignore_errors=True)
    print("\noutcomes per kind:")
    for kind in kinds:
        row = {o: n for (k, o), n in sorted(counts.items()) if k == kind}
        print(f"  {kind:12s} {row}")
    print(f"{len(places)} distinct failure places")
    for detail, cases in sorted(places.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(cases):4d}  {detail}  e.g. {cases[0]}")
    return 1 if places else 0


if __name__ == "__main__":
    sys.exit(main())
