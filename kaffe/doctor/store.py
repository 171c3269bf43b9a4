"""A recorded run: the net's description plus one record per sampled
iteration, in memory (:class:`Run`) or in a ``--stats`` directory.

The directory holds ``meta.json`` (the net as :mod:`kaffe.doctor.describe`
sees it, the solver's settings, the weight-file match; written atomically)
and ``stats.jsonl`` (one JSON record per sampled iteration, appended and
flushed as training goes, so that a run stopped half-way is still readable:
a reader skips a last line cut short).
"""
import json
import os
from dataclasses import dataclass, field

from ..errors import KaffeConfigError, KaffeFormatError

META = "meta.json"
STATS = "stats.jsonl"
VERSION = 1


@dataclass
class Run:
    """What the checks read.

    Attributes:
        meta: {"net": describe_net(...), "solver": {...} or None,
            "weights": [match_weights(...)], "every": int, "mode":
            "train" | "deploy"}.
        records: the per-iteration records, in order.
        error: why the run stopped early (a message), or None.
    """
    meta: dict
    records: list = field(default_factory=list)
    error: str = None

    @property
    def sampled(self):
        """The records of sampled iterations (without the losses-only
        record that ends a run between two samples)."""
        return [r for r in self.records if not r.get("losses_only")]

    @property
    def net(self):
        return self.meta["net"]

    @property
    def layers(self):
        return self.meta["net"]["layers"]


def solver_settings(param):
    """The solver fields the checks read, from a SolverParameter."""
    return {"type": param.type or "SGD", "base_lr": param.base_lr,
            "lr_policy": param.lr_policy, "momentum": param.momentum,
            "weight_decay": param.weight_decay, "display": param.display,
            "clip_gradients": param.clip_gradients,
            "iter_size": param.iter_size}


class StatsWriter:
    """Writes a run to ``directory`` as it is recorded (``kaffe train
    --stats``); optionally the same numbers as TensorBoard scalars."""

    def __init__(self, directory, meta, tensorboard=False):
        from ..proto.io import atomic_write
        directory = os.fspath(directory)
        if os.path.exists(directory) and not os.path.isdir(directory):
            raise KaffeConfigError("names a file, not a folder",
                                   field="--stats", received=directory,
                                   fix="give a folder for the statistics")
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        atomic_write(os.path.join(directory, META),
                     json.dumps(dict(meta, version=VERSION), indent=1))
        self.file = open(os.path.join(directory, STATS), "w",
                         encoding="utf-8")
        self.tb = _tensorboard_writer(directory) if tensorboard else None

    def __call__(self, record):
        self.file.write(json.dumps(record, allow_nan=True) + "\n")
        self.file.flush()
        if self.tb is not None:
            write_scalars(self.tb, record)

    def close(self):
        self.file.close()
        if self.tb is not None:
            self.tb.close()


def _tensorboard_writer(directory):
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise KaffeConfigError(
            "needs the tensorboardX package, which is not installed",
            field="--tensorboard",
            fix="pip install 'kaffe[tensorboard]' (or pip install "
                "tensorboardX), or leave out --tensorboard") from None
    return SummaryWriter(os.path.join(directory, "tensorboard"))


def write_scalars(writer, record):
    """One record as TensorBoard scalars: loss, and per layer the top's std,
    the gradient norm, the weight norm and the update/weight ratio."""
    step = record["iter"]
    for it, loss in record.get("losses", []):
        writer.add_scalar("loss", loss, it)
    for layer, tops in record.get("tops", {}).items():
        for top, s in tops.items():
            writer.add_scalar(f"activation_std/{layer}/{top}", s["std"], step)
    for name, p in record.get("params", {}).items():
        writer.add_scalar(f"weight_norm/{name}", p["weight_norm"], step)
        writer.add_scalar(f"grad_norm/{name}", p["grad_norm"], step)
        if "update_norm" in p and p["weight_norm"] > 0:
            writer.add_scalar(f"update_ratio/{name}",
                              p["update_norm"] / p["weight_norm"], step)


def read_run(directory):
    """The :class:`Run` recorded in ``directory`` by ``kaffe train --stats``
    (or ``kaffe doctor --save-stats``)."""
    directory = os.fspath(directory)
    meta_path = os.path.join(directory, META)
    if not os.path.isfile(meta_path):
        raise KaffeConfigError(
            "holds no recorded statistics (no meta.json)", field="--stats",
            received=directory,
            fix="record some with kaffe train --stats DIR, or pass the "
                "folder that command wrote")
    meta = _load_json(meta_path)
    if not isinstance(meta, dict) or meta.get("version") != VERSION or \
            "net" not in meta:
        raise KaffeFormatError(
            "is not a statistics description kaffe wrote", file=meta_path,
            expected=f"a JSON object with version {VERSION} and 'net'",
            fix="record the run again with kaffe train --stats")
    records = []
    stats_path = os.path.join(directory, STATS)
    if os.path.isfile(stats_path):
        with open(stats_path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                if number >= len(lines) - 1:
                    break       # the last line, cut short by a stopped run
                raise KaffeFormatError(
                    f"line is not JSON ({e.msg})", file=stats_path,
                    line=number,
                    fix="record the run again with kaffe train --stats") \
                    from None
            records.append(record)
    return Run(meta=meta, records=records)


def _load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise KaffeFormatError(f"is not JSON ({e.msg})", file=path,
                               line=e.lineno) from None
