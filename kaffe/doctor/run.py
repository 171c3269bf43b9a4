"""Running the doctor: train a few iterations (or run a deploy net forward)
with a :class:`~kaffe.doctor.record.Recorder` attached, then check.

* :func:`diagnose_solver` — N training iterations of a solver on its real
  data;
* :func:`diagnose_model` — a deploy net: the static checks and two forward
  passes (an image or a pattern, and a different input);
* :func:`diagnose_stats` — a directory that ``kaffe train --stats`` wrote.

Each returns ``(findings, run)``: the findings ordered most severe first.
"""
import logging

import numpy as np

from ..errors import KaffeError
from .checks import run_checks
from .describe import LABELLED, describe_net, describe_param, \
    load_matching, match_weights, weight_shapes
from .findings import ordered
from .record import Recorder
from .store import Run, read_run, solver_settings

log = logging.getLogger("kaffe")


def diagnose_solver(solver, weights=(), iterations=50, level=0, stages=()):
    """Train ``iterations`` iterations of ``solver`` (a path or a
    SolverParameter) and check what was recorded.

    Weights (the solver's own ``weights`` entries and ``weights``) are
    matched by name against the net first; layers that fit are loaded, the
    rest are reported, not raised. No test net runs, nothing is snapshot.
    """
    from ..solvers import get_solver
    from ..solvers.solver import load_solver
    if iterations < 1:
        from ..errors import KaffeConfigError
        raise KaffeConfigError("must be at least 1", field="--iterations",
                               received=iterations)
    param, source = load_solver(solver)
    test_nets = _test_net_descriptions(param)
    files = [w.strip() for entry in list(param.weights) + list(weights)
             for w in entry.split(",") if w.strip()]
    param.ClearField("weights")
    param.train_state.level = level
    param.train_state.stage.extend(stages)
    # The doctor trains to look, not to keep: no test nets (their data is
    # not opened), no snapshots.
    for name in ("test_iter", "test_net", "test_net_param", "test_state"):
        param.ClearField(name)
    param.test_interval = 0
    param.test_initialization = False
    param.snapshot = 0
    param.snapshot_after_train = False
    param.max_iter = iterations
    solver = get_solver(param, source=source)
    net = solver.net
    meta = {"mode": "train", "net": describe_net(net),
            "solver": solver_settings(param), "every": 1,
            "weights": _load_weights(net, files, describe_net(net)),
            "test_nets": test_nets}
    recorder = Recorder(net, every=1).attach(solver)
    error = None
    with np.errstate(all="ignore"):
        try:
            solver.step(iterations)
        except KaffeError as e:
            error = e
    recorder.finish(error)
    run = Run(meta=meta, records=recorder.records,
              error=None if error is None else str(error))
    findings = ordered(run_checks(run))
    if error is not None and not any(f.severity == "error"
                                     for f in findings):
        raise error     # the run failed for a reason no check explains
    return findings, run


def _test_net_descriptions(param):
    """The solver's test nets as the static checks see them (their layers
    and configs; nothing is built, no data opened)."""
    from ..core.net import TEST
    from ..proto import caffe_pb2
    from ..proto.io import load_net
    nets = [load_net(path)[0] for path in param.test_net]
    nets += [_copy(p) for p in param.test_net_param]
    if len(param.test_iter) > len(nets):
        if param.HasField("net_param"):
            nets.append(_copy(param.net_param))
        elif param.net:
            nets.append(load_net(param.net)[0])
    out = []
    for i, net in enumerate(nets):
        net.state.CopyFrom(param.test_state[i] if i < len(param.test_state)
                           else caffe_pb2.NetState())
        net.state.phase = TEST
        out.append(describe_param(net))
    return out


def _copy(message):
    out = type(message)()
    out.CopyFrom(message)
    return out


def _load_weights(net, files, description):
    reports = []
    for path in files:
        log.info("Matching weights from %s", path)
        report = match_weights(description, weight_shapes(path), path)
        load_matching(net, path, report)
        reports.append(report)
    return reports


def diagnose_model(model, weights=None, image=None, shapes=None):
    """Check deploy net ``model`` (a path): static checks, then two forward
    passes — ``image`` (or a synthetic pattern) and a different input — to
    look for NaN/Inf, saturated probabilities, dead ReLUs and an output
    that does not depend on the input.

    Data layers become inputs (their sources are not opened; ``shapes``
    gives {top: shape} where the net does not say, as ``kaffe explain
    --shape``). The image is fed as read, RGB (or grey) in [0, 1], resized
    to the input. A net with Python layers gets only the static checks:
    inspecting a net never imports or runs a user's code.
    """
    from ..core.net import Net, TEST
    from ..proto.io import load_net
    from ..viz.explain_inputs import replace_data_layers
    param, source = load_net(model)
    param.state.phase = TEST
    if _has_python_layers(param):
        meta = {"mode": "deploy", "net": describe_param(param),
                "solver": None, "every": 1, "weights": [],
                "notes": ["the net has Python layers: kaffe does not run "
                          "them while inspecting, so only the static "
                          "checks ran"]}
        run = Run(meta=meta)
        return ordered(run_checks(run)), run
    replace_data_layers(param, source, shapes or {})
    net = Net.from_param(param, source)
    description = describe_net(net)
    meta = {"mode": "deploy", "net": description, "solver": None,
            "every": 1, "weights": _load_weights(
                net, [weights] if weights else [], description)}
    recorder = Recorder(net, every=1).attach()
    # The outputs that carry the net's answer (not losses or accuracies).
    answers = [name for name in net.outputs
               if name not in description["loss_blobs"]
               and not any(name in node.tops and node.type in LABELLED
                           for node in net.graph)]
    outputs = []
    with np.errstate(all="ignore"):
        for batch in _two_inputs(net, image):
            for name, array in batch.items():
                net.blobs[name].data[...] = array
            net.forward()
            outputs.append({name: np.array(net.blobs[name].data,
                                           np.float64)
                            for name in answers})
            recorder.next_pass()
    recorder.finish()
    records = recorder.records[:2]
    records[-1]["scores"] = _output_variation(outputs)
    run = Run(meta=meta, records=records)
    return ordered(run_checks(run)), run


def _has_python_layers(param):
    from ..core.net import layer_included
    return any(layer.type == "Python" and layer_included(param.state, layer)
               for layer in param.layer)


def _two_inputs(net, image):
    """Two different fillings of the net's inputs: [the image or a pattern,
    the same picture mirrored with noise added]."""
    from ..viz.report import synthetic_image
    rng = np.random.default_rng(0)
    maker = {top: node for node in net.graph for top in node.tops}
    labels = set()
    for node in net.graph:
        if node.type in LABELLED and len(node.bottoms) > 1:
            blob = node.bottoms[1]
            while blob in maker and maker[blob].type == "Split":
                blob = maker[blob].bottoms[0]
            labels.add(blob)
    first, second = {}, {}
    for name in net.inputs:
        shape = net.blobs[name].data.shape
        if name in labels:          # class 0: valid for any classifier
            first[name] = second[name] = np.zeros(shape, np.float32)
            continue
        if len(shape) == 4 and shape[1] in (1, 3):
            if image is not None:
                from ..io import load_image, resize_image
                picture = resize_image(load_image(image, color=shape[1] == 3),
                                       shape[2:])
            else:
                picture = synthetic_image(shape[2], shape[3], shape[1])
            chw = np.asarray(picture, np.float32).transpose(2, 0, 1)
            a = np.broadcast_to(chw, shape).astype(np.float32)
        else:
            a = rng.standard_normal(shape).astype(np.float32)
        b = a[..., ::-1] + rng.standard_normal(shape).astype(np.float32) \
            * max(float(np.abs(a).mean()), 1e-3) * 0.5
        first[name], second[name] = a, b.astype(np.float32)
    return [first, second]


def _output_variation(outputs):
    """Per net output, how much it changed between the two passes (the
    largest difference), in the form the constant_output check reads."""
    out = {}
    for name, a in outputs[0].items():
        b = outputs[1][name]
        if a.shape != b.shape:
            # the output's shape follows the input (DetectionOutput keeps a
            # varying number of boxes): it is not constant, nothing to score
            continue
        with np.errstate(invalid="ignore"):
            diff = float(np.abs(a - b).max()) if a.size else 0.0
        out[name] = {"batch_std": diff,
                     "absmean": float(np.abs(np.concatenate(
                         [a.ravel(), b.ravel()])).mean()) if a.size else 0.0,
                     "items": 2, "saturated": 0.0}
    return out


def diagnose_stats(directory):
    """Check a run recorded by ``kaffe train --stats directory``."""
    run = read_run(directory)
    return ordered(run_checks(run)), run
