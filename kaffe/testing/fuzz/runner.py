"""Run mutated files through kaffe's API and CLI and classify what happens.

Every case runs in a worker process (started fresh with ``spawn``) under an
address-space limit (``RLIMIT_AS``, 3 GiB by default) and a file-size limit,
with a per-case timeout. Outcomes:

=============  ===============================================================
``ok``         the file was accepted and the action completed
``kaffe``      a :class:`kaffe.KaffeError` (the file was refused, as it should)
``long``       a valid solver asking for a long run (not run; see MAX_PASSES)
``foreign``    any other exception escaped the API (a bug)
``memory``     a ``MemoryError`` escaped (a bug: sizes must be checked first)
``traceback``  the CLI let an exception escape (it would print a traceback)
``internal``   the CLI exited 1 with "please report" (an unexpected error)
``hang``       the case ran past the timeout (the worker is killed)
``crash``      the worker died (a segmentation fault, an abort)
=============  ===============================================================

The last six are failures; for each, the kaffe source line where the
exception was raised (its "place") groups the cases, and the case file is
kept for reproduction.
"""
import collections
import contextlib
import io
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
import traceback

from .corpus import DATA_NET, build_corpus
from .mutators import mutate_file, new_rng

FAILURES = ("foreign", "memory", "traceback", "internal", "hang", "crash")
GiB = 1 << 30


def _limit(address_space, file_size):
    import resource
    if address_space:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    if file_size:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))


# -- what each case does -------------------------------------------------------
def cli_argv(kind, path, ctx, scratch):
    """The ``kaffe`` command line that reads ``path`` (a file of ``kind``)."""
    if kind == "net":
        return ["explain", path] if hash(path) % 2 else \
            ["draw", path, os.path.join(scratch, "out.dot")]
    if kind in ("weights", "weights_h5"):
        return ["explain", ctx["tiny_net"], "--weights", path]
    if kind == "solver":
        return ["train", "--solver", path]
    if kind == "solverstate":
        return ["train", "--solver", ctx["solver"], "--snapshot", path]
    if kind == "solverstate_h5":
        return ["train", "--solver", ctx["solver_h5"], "--snapshot", path]
    if kind == "lmdb":
        net = _data_net(path, scratch)
        return ["test", "--model", net, "--iterations", "2"]
    return None


def _data_net(path, scratch):
    net = os.path.join(scratch, "datanet.prototxt")
    with open(net, "w") as f:
        f.write(DATA_NET % path)
    return net


def api_call(kind, path, ctx, scratch):
    """Exercise the Python API on ``path``."""
    import kaffe
    if kind == "net":
        from kaffe.viz.explain import explain
        explain(path)
        net = kaffe.Net(path, kaffe.TEST)
        net.forward()
    elif kind in ("weights", "weights_h5"):
        net = kaffe.Net(ctx["tiny_net"], kaffe.TEST, weights=path)
        net.forward()
    elif kind == "solver":
        solver = kaffe.get_solver(path)
        if long_by_design(path):
            return "long"
        solver.step(2)
        solver.snapshot()
    elif kind in ("solverstate", "solverstate_h5"):
        solver = kaffe.get_solver(ctx["solver_h5" if kind.endswith("h5")
                                      else "solver"])
        solver.restore(path)
        solver.step(1)
    elif kind == "mean":
        from kaffe.proto.io import read_blobproto
        mean = kaffe.io.blobproto_to_array(read_blobproto(path))
        transformer = kaffe.io.Transformer({"data": (1, 3, 6, 6)})
        transformer.set_mean("data", mean[0] if mean.ndim == 4 and len(mean)
                             else mean)
    elif kind == "lmdb":
        net = kaffe.Net(_data_net(path, scratch), kaffe.TRAIN)
        net.forward()
        net.forward()


# Forward/backward passes a solver may ask for before a case counts as
# long by design (a valid file asking for a long run is no hang).
MAX_PASSES = 2000


def long_by_design(solver_path):
    """Whether a solver file asks for more than MAX_PASSES net passes in
    training (max_iter × iter_size, plus its tests), so that running it is
    slow by the user's choice; such cases are counted as ``long``."""
    from google.protobuf import text_format

    from kaffe.proto import caffe_pb2
    param = caffe_pb2.SolverParameter()
    try:
        with open(solver_path, encoding="utf-8") as f:
            text_format.Parse(f.read(), param)
    except Exception:  # noqa: BLE001 (kaffe reports unreadable files)
        return False
    train = max(param.max_iter, 0) * max(param.iter_size, 1)
    tests = sum(max(n, 0) for n in param.test_iter)
    if tests and param.test_interval > 0:
        tests *= max(param.max_iter, 0) // param.test_interval + 1
    return train + tests > MAX_PASSES


def _place(exc):
    """'file.py:line (Type)' of the innermost kaffe frame of ``exc``."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = None
    for frame in frames:
        if f"{os.sep}kaffe{os.sep}" in frame.filename:
            where = frame
    if where is None and frames:
        where = frames[-1]
    name = type(exc).__name__
    if where is None:
        return name
    short = where.filename.split(f"{os.sep}kaffe{os.sep}")[-1]
    return f"{short}:{where.lineno} ({name})"


def run_case(kind, mode, path, ctx, scratch):
    """(outcome, detail) of one case, in this process."""
    from kaffe.core.errors import KaffeError
    os.makedirs(scratch, exist_ok=True)
    if ctx.get("modules") and ctx["modules"] not in sys.path:
        sys.path.insert(0, ctx["modules"])
    if mode == "cli":
        from kaffe.tools.cli import main
        argv = cli_argv(kind, path, ctx, scratch)
        if kind == "solver" and long_by_design(path):
            return "long", ""
        err = io.StringIO()
        try:
            with contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(err):
                status = main(argv)
        except MemoryError as e:
            return "memory", _place(e)
        except BaseException as e:  # noqa: BLE001 (classifying everything)
            return "traceback", _place(e)
        text = err.getvalue()
        if "Traceback (most recent call last)" in text:
            return "traceback", text.strip().splitlines()[-1][:200]
        if "ran out of memory while running kaffe" in text:
            return "memory", text.strip().splitlines()[-1][:200]
        if status == 1 and "please report" in text:
            return "internal", text.strip().splitlines()[-1][:200]
        return ("ok" if status == 0 else "kaffe"), f"exit {status}"
    try:
        if api_call(kind, path, ctx, scratch) == "long":
            return "long", ""
    except KaffeError as e:
        return "kaffe", type(e).__name__
    except MemoryError as e:
        return "memory", _place(e)
    except Exception as e:  # noqa: BLE001 (classifying everything)
        return "foreign", _place(e)
    return "ok", ""


def _worker(conn, address_space, file_size, scratch):
    _limit(address_space, file_size)
    os.makedirs(scratch, exist_ok=True)
    os.chdir(scratch)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    import logging
    logging.getLogger("kaffe").addHandler(logging.NullHandler())
    logging.getLogger("kaffe").propagate = False
    import kaffe  # noqa: F401 (import once, before the first case)
    conn.send("ready")
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        kind, mode, path, ctx, case_scratch = task
        try:
            result = run_case(kind, mode, path, ctx, case_scratch)
        except BaseException as e:  # noqa: BLE001
            result = ("foreign", "harness: " + _place(e))
        conn.send(result)


class Worker:
    """A spawned worker process that runs cases one at a time."""

    def __init__(self, address_space, file_size, scratch):
        self.args = (address_space, file_size, scratch)
        self.proc = None
        self.conn = None

    def start(self):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, *self.args),
                                daemon=True)
        self.proc.start()
        child.close()
        if not self.conn.poll(120) or self.conn.recv() != "ready":
            raise RuntimeError("the fuzz worker did not start")

    def run(self, task, timeout):
        if self.proc is None or not self.proc.is_alive():
            self.start()
        self.conn.send(task)
        try:
            if self.conn.poll(timeout):
                return self.conn.recv()
        except EOFError:
            pass
        if self.proc.is_alive():
            self.kill()
            return "hang", f"over {timeout:g} s"
        code = self.proc.exitcode
        self.proc = None
        return "crash", f"worker exit code {code}"

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.join()
        self.proc = None

    def stop(self):
        if self.proc is not None and self.proc.is_alive():
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.proc.join(5)
            self.kill()


def run_cli_subprocess(kind, path, ctx, scratch, timeout, address_space,
                       file_size):
    """One CLI case as a real ``python -m kaffe`` child process."""
    argv = cli_argv(kind, path, ctx, scratch)
    if argv is None or (kind == "solver" and long_by_design(path)):
        return None
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "kaffe", *argv], cwd=scratch, env=env,
            capture_output=True, text=True, errors="replace", timeout=timeout,
            preexec_fn=lambda: _limit(address_space, file_size))
    except subprocess.TimeoutExpired:
        return "hang", f"over {timeout:g} s"
    if proc.returncode < 0:
        return "crash", f"signal {-proc.returncode}"
    if "Traceback (most recent call last)" in proc.stderr:
        return "traceback", proc.stderr.strip().splitlines()[-1][:200]
    if "ran out of memory while running kaffe" in proc.stderr:
        return "memory", proc.stderr.strip().splitlines()[-1][:200]
    if proc.returncode == 1 and "please report" in proc.stderr:
        return "internal", proc.stderr.strip().splitlines()[-1][:200]
    return ("ok" if proc.returncode == 0 else "kaffe"), \
        f"exit {proc.returncode}"


class Stats:
    """Outcome counts per kind and the failing places with an example."""

    def __init__(self):
        self.counts = collections.Counter()
        self.by_kind = collections.defaultdict(collections.Counter)
        self.places = {}        # (outcome, detail) -> [count, example case]

    def add(self, kind, mode, outcome, detail, case):
        self.counts[outcome] += 1
        self.by_kind[f"{kind}/{mode}"][outcome] += 1
        if outcome in FAILURES:
            entry = self.places.setdefault((outcome, detail), [0, case])
            entry[0] += 1

    @property
    def cases(self):
        return sum(self.counts.values())

    @property
    def failures(self):
        return sum(self.counts[o] for o in FAILURES)

    def report(self):
        lines = [f"{self.cases} cases: " + ", ".join(
            f"{k} {v}" for k, v in sorted(self.counts.items()))]
        for key in sorted(self.by_kind):
            lines.append(f"  {key:22s} " + ", ".join(
                f"{k} {v}" for k, v in sorted(self.by_kind[key].items())))
        if self.places:
            lines.append(f"{len(self.places)} distinct failures:")
            for (outcome, detail), (n, case) in sorted(self.places.items()):
                lines.append(f"  {outcome:9s} x{n:<5d} {detail}  [{case}]")
        return "\n".join(lines)


def fuzz(folder, cases, *, seed=0, kinds=None, cli_fraction=0.25,
         subprocess_fraction=0.0, timeout=20.0, address_space=3 * GiB,
         file_size=GiB, keep="failures", log=None, seconds=None):
    """Run ``cases`` mutated files (or until ``seconds`` have passed).

    Args:
        folder: a scratch folder (the corpus, the cases and kept failures go
            there).
        cases: how many cases to run.
        seed: the random seed (a run is reproducible from it).
        kinds: which file kinds to mutate (default: all the corpus has).
        cli_fraction: the share of cases run through the CLI (in the worker,
            calling ``kaffe.tools.cli.main``).
        subprocess_fraction: of the CLI cases, the share run as real
            ``python -m kaffe`` child processes (slower; checks stderr).
        timeout: seconds before a case counts as a hang.
        address_space: the workers' RLIMIT_AS in bytes (0: none).
        file_size: the workers' RLIMIT_FSIZE in bytes (0: none).
        keep: "failures" keeps the failing cases under folder/failures;
            "none" keeps nothing.
        log: a function given each failure line as it happens.

    Returns:
        a :class:`Stats`.
    """
    folder = os.path.abspath(folder)
    seeds, ctx = build_corpus(os.path.join(folder, "corpus"))
    kinds = [k for k in (kinds or seeds) if k in seeds]
    rng = new_rng(seed)
    stats = Stats()
    cases_dir = os.path.join(folder, "cases")
    failures_dir = os.path.join(folder, "failures")
    # Nested, so that a mutated "../x" snapshot prefix stays inside folder.
    scratch = os.path.join(folder, "work", "a", "b")
    os.makedirs(cases_dir, exist_ok=True)
    os.makedirs(scratch, exist_ok=True)
    worker = Worker(address_space, file_size, scratch)
    start = time.monotonic()
    try:
        for i in range(cases):
            if seconds is not None and time.monotonic() - start > seconds:
                break
            kind = kinds[i % len(kinds)]
            seed_file = rng.choice(seeds[kind])
            ext = {"lmdb": "_lmdb", "weights_h5": ".caffemodel.h5",
                   "solverstate_h5": ".solverstate.h5"}.get(
                       kind, os.path.splitext(seed_file)[1])
            case = os.path.join(cases_dir, f"case{i % 50}{ext}")
            if os.path.isdir(case):
                shutil.rmtree(case)
            try:
                how = mutate_file(rng, kind, seed_file, case)
            except Exception:  # noqa: BLE001 (an unwritable mutant: skip)
                continue
            mode = "cli" if rng.random() < cli_fraction else "api"
            if kind == "mean":
                mode = "api"
            result = None
            if mode == "cli" and rng.random() < subprocess_fraction:
                result = run_cli_subprocess(kind, case, ctx, scratch, timeout,
                                            address_space, file_size)
                mode = "subprocess"
            if result is None:
                result = worker.run((kind, mode, case, ctx, scratch), timeout)
            outcome, detail = result
            kept = case
            if outcome in FAILURES and keep == "failures":
                os.makedirs(failures_dir, exist_ok=True)
                kept = os.path.join(failures_dir, f"{i}_{kind}_{mode}{ext}")
                if os.path.isdir(case):
                    shutil.copytree(case, kept)
                else:
                    shutil.copyfile(case, kept)
                if log:
                    log(f"[{i}] {kind}/{mode} ({how}): {outcome}: {detail} "
                        f"-> {kept}")
            stats.add(kind, mode, outcome, detail, kept)
    finally:
        worker.stop()
    return stats
