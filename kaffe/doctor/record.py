"""Recording per-layer statistics while a net trains (or runs forward).

A :class:`Recorder` hooks into a net through its public callbacks
(``net.before_forward``, ``after_forward``, ``after_backward``) and into a
solver through ``solver.add_callback``. On a *sampled* iteration (every
``every``-th) it keeps, per layer:

* each layer's tops' range, mean, std, |mean| and zero fraction (keyed by
  layer, so an in-place layer's input and output both show; min, max and the
  NaN/Inf count over the whole blob; the moments over a strided sample of
  at most ``sample`` values);
* each bottom gradient's norm and largest magnitude, after backward;
* each learnable layer's weight norm, gradient norm and — at the next
  iteration — the norm of the update the solver applied (for its weights,
  the first parameter blob);
* per ReLU, which units (channels) were ever positive, accumulated;
* per labelled loss/accuracy layer, the labels' range against the number
  of classes, and how much the scores vary across the batch;
* the first blob that turned NaN/Inf, forward or backward, with its inputs'
  ranges.

Every iteration it only notes the loss. Other iterations cost one Python
call per layer. Statistics are plain dicts of floats (one *record* per
sampled iteration) so that they can be written as JSON lines to a
``--stats`` directory and read back (:mod:`kaffe.doctor.store`).
"""
import math
import os

import numpy as np

from ..backend import to_numpy
from .describe import LABELLED


class Recorder:
    """Per-layer statistics of ``net`` every ``every`` iterations.

    Args:
        net: the kaffe.Net to watch (hooks are added at :meth:`attach`).
        every: sample every ``every``-th iteration (1: all).
        sample: at most this many values per blob for the moments.
        on_record: called with each finished record (a dict).
    """

    def __init__(self, net, every=1, sample=4096, on_record=None):
        self.net = net
        self.every = max(1, int(every))
        self.sample = int(sample)
        self.on_record = on_record
        self.nodes = net.graph
        self.blobs = net.blobs
        self.loss_weights = {b: w for b, w in net.blob_loss_weights.items()
                             if w}
        self.records = []
        self.iteration = 0
        self.sampling = True
        self.current = None
        self.pending_losses = []
        self.first_nonfinite = None
        self._saved = None          # layer -> its weights before the update
        # layer -> (ever positive, ever varied, largest input) per unit
        self._relu = {}
        self._passes = 0            # forward passes begun (layer 0 ran)
        self._loss_pass = -1        # the pass the last loss entry belongs to
        self._by_name = {n.name: n for n in self.nodes}
        self._learnable = [n for n in self.nodes
                           if any(p.owner is None for p in n.params)]
        self._labelled = {n.index for n in self.nodes if n.type in LABELLED}

    # -- wiring ---------------------------------------------------------------
    def attach(self, solver=None):
        """Hook into the net (and ``solver``: its iterations, updates)."""
        self.net.before_forward(self._before_forward)
        self.net.after_forward(self._after_forward)
        self.net.after_backward(self._after_backward)
        self.solver = solver
        if solver is not None:
            solver.add_callback(self._on_start, self._on_gradients_ready)
        self._open(solver.iter if solver is not None else 0)
        return self

    def _open(self, iteration):
        self.iteration = iteration
        self.sampling = iteration % self.every == 0
        if self.sampling:
            self.current = {"iter": iteration, "tops": {}, "diffs": {},
                            "params": {}, "relu": {}, "labels": {},
                            "scores": {}}

    def _on_start(self):
        it = self.solver.iter
        if it == self.iteration:
            return              # the iteration opened at attach()
        self._close()
        self._open(it)

    def next_pass(self):
        """Without a solver: end the current record, start the next."""
        self._close()
        self._open(self.iteration + 1)

    def finish(self, error=None):
        """End the run: close the last record (``error``: why it stopped)."""
        if self.current is not None and error is not None:
            self.current["error"] = str(error)
        self._close()
        if self.pending_losses:
            # The iterations after the last sample still have their losses.
            record = {"iter": self.iteration, "losses_only": True,
                      "losses": self.pending_losses}
            if error is not None:
                record["error"] = str(error)
            self.pending_losses = []
            self.records.append(record)
            if self.on_record is not None:
                self.on_record(record)

    def _close(self):
        record = self.current
        if record is None:
            return
        self.current = None
        if self._saved is not None:
            for name, copy in self._saved.items():
                blob = _own(self._by_name[name])[0].blob
                with np.errstate(over="ignore", invalid="ignore"):
                    d = to_numpy(blob.data).astype(np.float64) - copy
                    update = math.sqrt(float(np.dot(d.ravel(), d.ravel())))
                record["params"].setdefault(name, {})["update_norm"] = \
                    _f(update)
            self._saved = None
        for name, (positive, varied, peak) in self._relu.items():
            record["relu"][name] = {
                "units": int(positive.size),
                "never_positive": int((~positive & ~(~varied & (peak == 0)))
                                      .sum()),
                "zero_constant": int((~positive & ~varied & (peak == 0))
                                     .sum()),
                "max_input": _f(float(peak.max()))}
        record["losses"] = self.pending_losses
        self.pending_losses = []
        if self.first_nonfinite is not None and \
                self.first_nonfinite["iteration"] == record["iter"]:
            record["nonfinite"] = self.first_nonfinite
        self.records.append(record)
        if self.on_record is not None:
            self.on_record(record)

    # -- the hooks ------------------------------------------------------------
    def _before_forward(self, i):
        if i == 0:
            self._passes += 1
        if not self.sampling:
            return
        node = self.nodes[i]
        if node.type == "ReLU" and node.bottoms:
            self._relu_units(node)
        if i in self._labelled and len(node.bottoms) >= 2:
            self._labels(node)

    def _after_forward(self, i):
        node = self.nodes[i]
        loss = 0.0
        for top in node.tops:
            w = self.loss_weights.get(top)
            if w:
                loss += w * float(np.sum(to_numpy(self.blobs[top].data)))
        if loss:
            # One entry per forward pass (iter_size passes make several per
            # iteration): the first loss layer of a pass opens it.
            if self._loss_pass != self._passes:
                self._loss_pass = self._passes
                self.pending_losses.append([self.iteration, 0.0])
            self.pending_losses[-1][1] = _f(self.pending_losses[-1][1] + loss)
        if not self.sampling or node.inserted:
            return
        tops = self.current["tops"].setdefault(node.name, {})
        for top in node.tops:
            data = to_numpy(self.blobs[top].data)
            stats = array_stats(data, self.sample)
            if node.type == "Softmax" and data.ndim > 1:
                stats["certain"] = _certain(data, node.param.softmax_param
                                            .axis % data.ndim)
            tops[top] = stats
            if stats["nonfinite"] and self.first_nonfinite is None:
                self._note_nonfinite(node, top, "forward", stats)

    def _after_backward(self, i):
        if not self.sampling:
            return
        node = self.nodes[i]
        if not node.need_backward or node.inserted:
            return
        for bottom in node.bottoms:
            diff = to_numpy(self.blobs[bottom].diff)
            stats = diff_stats(diff)
            self.current["diffs"][bottom] = stats
            if stats["nonfinite"] and self.first_nonfinite is None:
                self._note_nonfinite(node, bottom, "backward", stats)

    def _on_gradients_ready(self):
        if not self.sampling or self.current is None:
            return
        saved = {}
        for node in self._learnable:
            # The layer's weights (its first own blob) speak for it: biases
            # start at 0, so ratios over them say nothing.
            blob = _own(node)[0].blob
            data = to_numpy(blob.data)
            diff = to_numpy(blob.diff)
            with np.errstate(over="ignore", invalid="ignore"):
                grad = _sq(diff)
                self.current["params"][node.name] = {
                    "weight_norm": _f(math.sqrt(_sq(data))),
                    "grad_norm": _f(math.sqrt(grad))}
            if not math.isfinite(grad) and self.first_nonfinite is None:
                self._note_nonfinite(node, None, "backward",
                                     {"nonfinite": int(
                                         (~np.isfinite(diff)).sum())})
            saved[node.name] = data.astype(np.float64)
        self._saved = saved

    # -- pieces ---------------------------------------------------------------
    def _relu_units(self, node):
        if node.param.relu_param.negative_slope != 0:
            return
        x = to_numpy(self.blobs[node.bottoms[0]].data)
        axes = tuple(a for a in range(x.ndim) if a != 1) if x.ndim > 1 \
            else ()
        with np.errstate(invalid="ignore"):
            high = x.max(axis=axes) if axes else x.copy()
            low = x.min(axis=axes) if axes else x.copy()
        positive, varied, peak = self._relu.get(node.name, (None,) * 3)
        if positive is None:
            positive = np.zeros(high.shape, bool)
            varied = np.zeros(high.shape, bool)
            peak = np.full(high.shape, -np.inf)
        self._relu[node.name] = (positive | (high > 0), varied | (high > low),
                                 np.maximum(peak, high))

    def _labels(self, node):
        cfg_axis = 1
        p = node.param
        if node.type == "SoftmaxWithLoss":
            cfg_axis = p.softmax_param.axis
        elif node.type == "Accuracy":
            cfg_axis = p.accuracy_param.axis
        scores = to_numpy(self.blobs[node.bottoms[0]].data)
        axis = cfg_axis % scores.ndim
        classes = scores.shape[axis]
        labels = to_numpy(self.blobs[node.bottoms[1]].data).astype(np.int64)
        ignore = None
        if p.loss_param.HasField("ignore_label"):
            ignore = p.loss_param.ignore_label
        if node.type == "Accuracy" and p.accuracy_param.HasField(
                "ignore_label"):
            ignore = p.accuracy_param.ignore_label
        counted = labels[labels != ignore] if ignore is not None else \
            labels.ravel()
        bad = int(((counted < 0) | (counted >= classes)).sum())
        self.current["labels"][node.name] = {
            "blob": node.bottoms[1], "classes": int(classes),
            "min": int(counted.min()) if counted.size else None,
            "max": int(counted.max()) if counted.size else None,
            "bad": bad, "count": int(counted.size), "ignore_label": ignore}
        if node.bottoms[0] not in self.current["scores"]:
            self.current["scores"][node.bottoms[0]] = score_stats(scores,
                                                                  axis)

    def _note_nonfinite(self, node, blob, direction, stats):
        inputs = {}
        for b in node.bottoms:
            if b == blob and direction == "forward":
                continue
            inputs[b] = finite_range(to_numpy(self.blobs[b].data))
        if direction == "backward":
            for t in node.tops:
                inputs[t + " (gradient)"] = finite_range(
                    to_numpy(self.blobs[t].diff))
        self.first_nonfinite = {
            "iteration": self.iteration, "layer": node.name,
            "type": node.type, "blob": blob, "pass": direction,
            "count": stats.get("nonfinite", 0), "inputs": inputs}


def _certain(prob, axis):
    """The fraction of a softmax's items with a probability of exactly 1."""
    items = prob.size // max(1, prob.shape[axis])
    return _f(float((prob == 1).sum()) / max(1, items))


def _own(node):
    """The parameter blobs a layer owns (shared ones are counted once, at
    their owner)."""
    return [p for p in node.params if p.owner is None]


def _sq(a):
    """Σ a², in float64 when float32 overflows on finite values."""
    flat = a.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        value = float(np.dot(flat, flat))
    if not math.isfinite(value) and flat.dtype != np.float64:
        value = float(np.dot(flat.astype(np.float64),
                             flat.astype(np.float64)))
    return value


def _f(x):
    return float(f"{float(x):.6g}")


def array_stats(a, sample=4096):
    """min, max, NaN/Inf count (whole array); mean, std, |mean| and the zero
    fraction over a strided sample of at most ``sample`` values."""
    flat = a.reshape(-1)
    if flat.size == 0:
        return {"min": 0.0, "max": 0.0, "mean": 0.0, "std": 0.0,
                "absmean": 0.0, "zero": 0.0, "nonfinite": 0, "count": 0}
    with np.errstate(over="ignore", invalid="ignore"):
        total = flat.sum()
    nonfinite = 0
    if not np.isfinite(total):
        bad = ~np.isfinite(flat)
        nonfinite = int(bad.sum())
        finite = flat[~bad]
    else:
        finite = flat
    if finite.size == 0:
        lo = hi = float("nan")
    else:
        lo, hi = float(finite.min()), float(finite.max())
    step = max(1, flat.size // sample)
    s = flat[::step][:sample].astype(np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        s = np.zeros(1)
    return {"min": _f(lo), "max": _f(hi), "mean": _f(s.mean()),
            "std": _f(s.std()), "absmean": _f(np.abs(s).mean()),
            "zero": _f((s == 0).mean()), "nonfinite": nonfinite,
            "count": int(flat.size)}


def diff_stats(a):
    """A gradient's L2 norm, largest magnitude and NaN/Inf count."""
    flat = a.reshape(-1)
    sq = _sq(flat) if flat.size else 0.0
    nonfinite = 0
    if not math.isfinite(sq):
        nonfinite = int((~np.isfinite(flat)).sum())
    with np.errstate(invalid="ignore"):
        peak = float(np.abs(flat).max()) if flat.size else 0.0
    return {"norm": _f(math.sqrt(sq)) if math.isfinite(sq) else sq,
            "absmax": _f(peak), "nonfinite": nonfinite}


def finite_range(a):
    flat = a.reshape(-1)
    finite = flat[np.isfinite(flat)]
    if finite.size == 0:
        return [None, None]
    return [_f(finite.min()), _f(finite.max())]


def score_stats(scores, axis=1):
    """How a classifier's scores vary across the batch: per unit the std
    over items, its largest value ("batch_std"); the scores' |mean|; and the
    fraction of items whose softmax has an exact 0 (score spread over
    −log(FLT_MIN) ≈ 87.3)."""
    s = np.moveaxis(scores, axis, -1).reshape(-1, scores.shape[axis])
    s = s.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        spread = s.max(axis=1) - s.min(axis=1)
        std = s.std(axis=0)
    std = std[np.isfinite(std)]
    batch_std = float(std.max()) if s.shape[0] > 1 and std.size else 0.0
    return {"batch_std": _f(batch_std), "absmean": _f(np.abs(s).mean()),
            "items": int(s.shape[0]),
            "saturated": _f(np.mean(spread > 87.3365)) if s.size else 0.0}


def record_training(solver, param, directory, tensorboard=False):
    """Attach a Recorder to ``solver``'s train net that writes every
    ``display``-th iteration (every 100th without display) to
    ``directory``; returns the writer (close it when training ends)."""
    from .describe import describe_net, match_weights, weight_shapes
    from .store import StatsWriter, solver_settings
    net = solver.net
    every = param.display or 100
    description = describe_net(net)
    files = [w.strip() for entry in param.weights for w in entry.split(",")
             if w.strip()]
    meta = {"mode": "train", "net": description,
            "solver": solver_settings(param), "every": every,
            "weights": [match_weights(description, weight_shapes(w), w)
                        for w in files]}
    meta["net_file"] = NET_FILE
    meta["train_state"] = {"level": param.train_state.level,
                           "stages": list(param.train_state.stage)}
    writer = StatsWriter(directory, meta, tensorboard=tensorboard)
    write_train_net(param, os.path.join(directory, NET_FILE))
    recorder = Recorder(net, every=every, on_record=writer)
    recorder.attach(solver)
    return _Finishing(recorder, writer)


NET_FILE = "train_net.prototxt"


def write_train_net(param, path):
    """The solver's train net definition as prototxt at ``path``, so that
    a recorded directory can be drawn without the original files."""
    from google.protobuf import text_format

    from ..proto.io import atomic_write, load_net
    if param.HasField("train_net_param"):
        net = param.train_net_param
    elif param.HasField("net_param"):
        net = param.net_param
    else:
        net, _ = load_net(param.train_net or param.net)
    atomic_write(path, text_format.MessageToString(net))


class _Finishing:
    """Closes the last record, then the files."""

    def __init__(self, recorder, writer):
        self.recorder = recorder
        self.writer = writer

    def close(self):
        self.recorder.finish()
        self.writer.close()
