"""The checks: each a small function of a recorded :class:`~kaffe.doctor.
store.Run` returning a list of :class:`~kaffe.doctor.findings.Finding`.

They read only the run's description and records (the numbers a live run
or a ``--stats`` directory holds), never a net, so that the same checks
serve ``kaffe doctor --solver``, ``--model`` and ``--stats``.
"""
import math

from .describe import DATA_TYPES, FLT_MIN_LOSS
from .findings import Finding

# Thresholds, with why.
RAW_PIXEL_MAX = 20.0      # [0, 1] or mean-centred inputs stay far below this
UPDATE_RATIO_HIGH = 0.1   # healthy SGD changes weights ~1e-3 of their norm
UPDATE_RATIO_WILD = 1.0   # a step larger than the weights themselves
DEAD_ERROR = 0.9          # fractions of a ReLU's units never positive
DEAD_WARNING = 0.5
GRADIENT_SPREAD = 1e4     # relative gradient, first vs last learnable layer
GRADIENT_GROWTH = 1e3     # growth of a layer's gradient norm during the run
CONSTANT = 1e-6           # batch std of the scores relative to their size


def run_checks(run):
    """Every check over ``run``; the findings unordered."""
    found = []
    for check in CHECKS:
        found.extend(check(run))
    return found


# -- helpers -----------------------------------------------------------------
def _layers_by_name(run):
    return {layer["name"]: layer for layer in run.layers}


def _producer(run, blob, before=None):
    """The last layer (before index ``before``) writing ``blob``."""
    found = None
    for layer in run.layers:
        if before is not None and layer["index"] >= before:
            break
        if blob in layer["tops"]:
            found = layer
    return found


def _source_layer(run, blob, before=None):
    """Follow Split layers back to the layer that first makes ``blob``."""
    layer = _producer(run, blob, before)
    while layer is not None and layer["type"] == "Split" and \
            layer["bottoms"]:
        layer = _producer(run, layer["bottoms"][0], layer["index"])
    return layer


def blob_stats(run, record, blob, before=None):
    """The statistics of ``blob`` in ``record`` as the last layer before
    index ``before`` (any, if None) left it; None if not recorded."""
    found = None
    for layer in run.layers:
        if before is not None and layer["index"] >= before:
            break
        s = record.get("tops", {}).get(layer["name"], {}).get(blob)
        if s is not None:
            found = s
    return found


def _learnable(run):
    """Layers owning parameters, in order."""
    return [layer for layer in run.layers
            if any(not p["shared"] for p in layer["params"])]


def _finding(kind, severity, message, fix, layer=None, blob=None,
             iteration=None, run=None, **evidence):
    order = 0
    if run is not None and layer is not None:
        order = _layers_by_name(run).get(layer, {}).get("index", 0)
    return Finding(kind=kind, severity=severity, layer=layer, blob=blob,
                   iteration=iteration, evidence=evidence, fix=fix,
                   message=message, order=order)


def _losses(run):
    out = []
    for record in run.records:
        out.extend(tuple(x) for x in record.get("losses", []))
    return out


def _finite(x):
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


# -- the checks ---------------------------------------------------------------
def check_label_range(run):
    """Labels outside [0, C) of a classifier with C outputs (ignore_label
    aside): Caffe reads past the scores, kaffe stops."""
    out, seen = [], set()
    for record in run.sampled:
        for name, lab in record.get("labels", {}).items():
            if name in seen or not lab["bad"]:
                continue
            seen.add(name)
            layer = _layers_by_name(run).get(name, {})
            scores = layer.get("bottoms", ["?"])[0]
            maker = _source_layer(run, scores, layer.get("index"))
            maker_name = maker["name"] if maker else scores
            c = lab["classes"]
            if lab["min"] is not None and lab["min"] >= 1 and \
                    lab["max"] == c:
                fix = (f"the labels look 1-based ({lab['min']}..{lab['max']}"
                       f"): subtract 1 when writing the data so that they "
                       f"run 0..{c - 1}")
            else:
                fix = (f"make the labels run 0..{c - 1}, or set num_output "
                       f"of '{maker_name}' to {max(lab['max'] + 1, c)}"
                       + (", or mark the unlabelled items with "
                          "loss_param.ignore_label" if lab["min"] is not None
                          and lab["min"] < 0 else ""))
            out.append(_finding(
                "label_range", "error",
                f"labels {lab['min']}..{lab['max']} for {c} classes: "
                f"{lab['bad']} of {lab['count']} outside 0..{c - 1}",
                fix, layer=name, blob=lab["blob"], iteration=record["iter"],
                run=run, label_min=lab["min"], label_max=lab["max"],
                classes=c, outside=lab["bad"], labels=lab["count"],
                ignore_label=lab["ignore_label"]))
    return out


def check_weights_unmatched(run):
    """Layers that received nothing from --weights, file layers that matched
    no layer, parameters whose shapes differ."""
    out = []
    learnable = [layer["name"] for layer in _learnable(run)]
    for report in run.meta.get("weights") or []:
        path = report["path"]
        missing, unused = report["missing"], report["unused"]
        for m in report["mismatched"]:
            out.append(_finding(
                "weights_unmatched", "error",
                f"param {m['param']} of '{m['layer']}' is {m['file']} in "
                f"{path} but {m['net']} in the net; it was not loaded",
                "rename the layer to learn it from scratch, or change its "
                "definition (num_output, kernel, input size) to match the "
                "file", layer=m["layer"], run=run, weights=path,
                param=m["param"], file_shape=m["file"], net_shape=m["net"]))
        if not missing and not unused:
            continue
        guesses = report.get("guesses", {})
        if missing and not report["loaded"]:
            severity = "error"
            message = (f"nothing in {path} was loaded: none of its layer "
                       "names is a layer of this net")
        elif missing and not (missing == learnable[-1:]):
            severity = "warning"
            message = (f"{len(missing)} of {len(learnable)} learnable layers "
                       f"got nothing from {path}: {', '.join(missing)}")
        elif missing:
            severity = "info"
            message = (f"the last learnable layer '{missing[0]}' starts "
                       f"from its filler (the usual fine-tuning recipe)")
        else:
            severity = "info"
            message = (f"{len(unused)} layer(s) of {path} match no layer "
                       f"of the net: {', '.join(unused[:8])}")
        if guesses:
            fix = ("layers are matched by name: rename " + ", ".join(
                f"'{n}' back to '{o}'" for n, o in guesses.items())
                + " to load their weights")
        elif missing:
            fix = ("layers are matched by name: give the layers that should "
                   "start from the file the names they have in it")
        else:
            fix = "nothing to do if those layers were left out on purpose"
        out.append(_finding(
            "weights_unmatched", severity, message, fix,
            layer=missing[0] if missing else None, run=run, weights=path,
            not_loaded=missing, unused_in_file=unused,
            loaded=report["loaded"], rename_guesses=guesses))
    return out


def check_batchnorm_phase(run):
    """use_global_stats against the phase: stored averages while training
    never learn; batch statistics at test time depend on the batch."""
    out = []
    for net in [run.net] + list(run.meta.get("test_nets") or []):
        out.extend(_batchnorm_phase(run, net))
    return out


def _batchnorm_phase(run, net):
    out = []
    phase = net["phase"]
    for layer in net["layers"]:
        if layer["type"] != "BatchNorm":
            continue
        ugs = layer["config"].get("use_global_stats")
        if phase == "TRAIN" and ugs is True:
            out.append(_finding(
                "batchnorm_phase", "error",
                f"'{layer['name']}' normalises with its stored averages "
                "while training: they are never updated, so every batch "
                "is scaled by whatever the averages hold",
                "remove use_global_stats from the train net (Caffe picks "
                "batch statistics in TRAIN and the averages in TEST by "
                "itself)", layer=layer["name"], run=run, phase=phase,
                use_global_stats=True))
        elif phase == "TEST" and ugs is False:
            out.append(_finding(
                # A deploy net's outputs are wrong; a test net's scores are
                # only misleading.
                "batchnorm_phase", "error" if net is run.net else "warning",
                f"'{layer['name']}' normalises each test batch by its own "
                "statistics: outputs depend on the batch, and a single "
                "image is normalised to zero",
                "remove use_global_stats: false from the test/deploy net so "
                "that the stored averages are used", layer=layer["name"],
                run=run, phase=phase, use_global_stats=False))
    return out


def check_input_scale(run):
    """Raw 0–255 pixels reaching the first learnable layer."""
    learnable = _learnable(run)
    if not learnable or not run.sampled or run.meta.get("mode") != "train":
        return []       # a deploy net's input is what the doctor fed it
    first = learnable[0]
    if not first["bottoms"]:
        return []
    blob = first["bottoms"][0]
    source = _source_layer(run, blob, first["index"])
    stats = [s for s in (blob_stats(run, r, blob, first["index"])
                         for r in run.sampled) if s is not None]
    if not stats and source is not None:
        # The blob comes through a Split: use the data layer's own top.
        blob = source["tops"][0]
        stats = [s for s in (blob_stats(run, r, blob) for r in run.sampled)
                 if s is not None]
    if not stats:
        return []
    lows = [s["min"] for s in stats if _finite(s["min"])]
    highs = [s["max"] for s in stats if _finite(s["max"])]
    if not lows or not highs:
        return []
    lo, hi = min(lows), max(highs)
    mean = stats[0]["mean"]
    if not (hi > RAW_PIXEL_MAX and lo >= 0):
        return []
    cfg = source["config"] if source else {}
    where = (f"data layer '{source['name']}'" if source and source["type"]
             in DATA_TYPES else "the input")
    if source and source["type"] in ("Data", "ImageData", "WindowData"):
        fix = (f"add transform_param {{ scale: 0.00390625 }} to {where} "
               f"(1/255: pixels 0..255 become 0..1), or subtract a mean")
    else:
        fix = (f"divide {where}'s values by 255 (or subtract a mean) before "
               "they reach the net")
    return [_finding(
        "input_scale", "error",
        f"'{blob}' reaches '{first['name']}' with values {lo:g}..{hi:g} "
        f"(mean {mean:g}): raw pixels, not scaled or centred",
        fix, layer=first["name"], blob=blob,
        iteration=run.sampled[0]["iter"], run=run, min=lo, max=hi,
        mean=mean, std=stats[0]["std"], scale=cfg.get("scale"),
        mean_subtracted=cfg.get("mean", False))]


def check_frozen(run):
    """No learnable parameter changes: every lr_mult is 0, base_lr is 0, or
    the recorded updates are all exactly zero."""
    learnable = _learnable(run)
    if not learnable or run.meta.get("mode") != "train":
        return []       # a deploy net does not learn
    solver = run.meta.get("solver")
    mults = [p["lr_mult"] for layer in learnable for p in layer["params"]
             if not p["shared"]]
    evidence = {"learnable_layers": len(learnable),
                "params": len(mults),
                "params_with_lr_mult_0": sum(1 for m in mults if m == 0)}
    if solver is not None:
        evidence["base_lr"] = solver["base_lr"]
    if all(m == 0 for m in mults):
        return [_finding(
            "frozen", "error", f"all {len(mults)} parameter blobs of the "
            f"{len(learnable)} learnable layers have lr_mult: 0, so "
            "training changes nothing",
            "give the layers that should learn a non-zero lr_mult (remove "
            "param { lr_mult: 0 } from them)", run=run, **evidence)]
    if solver is not None and solver["base_lr"] == 0:
        return [_finding(
            "frozen", "error", "base_lr is 0, so training changes nothing",
            "set base_lr in the solver (0.01 is Caffe's usual start)",
            run=run, **evidence)]
    updates = [p["update_norm"] for r in run.sampled
               for p in r.get("params", {}).values() if "update_norm" in p]
    grads = [p["grad_norm"] for r in run.sampled
             for p in r.get("params", {}).values()]
    # Gradients that arrive but change nothing (with no gradient at all the
    # trouble is upstream: dead units, zero weights).
    if updates and max(updates) == 0 and any(
            _finite(g) and g > 0 for g in grads) and \
            run.meta.get("mode") == "train":
        evidence["largest_update"] = 0.0
        return [_finding(
            "frozen", "error", f"no parameter changed in "
            f"{len(run.sampled)} recorded iterations",
            "check lr_mult, base_lr and that the loss reaches the learnable "
            "layers (loss_weight, propagate_down)", run=run, **evidence)]
    return []


def _update_ratios(run):
    """Per record with updates: [(ratio, iteration, layer, update, weight)]
    for the layers whose weights and update are finite and non-zero."""
    out = []
    for record in run.sampled:
        row = []
        for name, p in record.get("params", {}).items():
            u, w = p.get("update_norm"), p.get("weight_norm")
            if not _finite(u) or not _finite(w) or w <= 1e-12:
                continue
            row.append((u / w, record["iter"], name, u, w))
        if row:
            out.append(row)
    return out


def _loss_trend(run):
    """(first, last, rising, nonfinite_at) of the recorded losses."""
    losses = _losses(run)
    if not losses:
        return None, None, False, None
    bad = next((it for it, v in losses if not _finite(v)), None)
    finite = [v for _, v in losses if _finite(v)]
    if not finite:
        return None, None, False, bad
    k = max(1, len(finite) // 5)
    head = sum(finite[:k]) / k
    tail = sum(finite[-k:]) / k
    rising = bad is not None or tail > head * 1.2 or (
        tail >= FLT_MIN_LOSS * 0.999 and head < FLT_MIN_LOSS * 0.999)
    return finite[0], finite[-1], rising, bad


def _saturated_at_start(run):
    """Whether a softmax loss was saturated in the first record."""
    if not run.sampled:
        return False
    record = run.sampled[0]
    for layer in run.layers:
        if layer["type"] != "SoftmaxWithLoss":
            continue
        s = record.get("scores", {}).get(layer["bottoms"][0])
        if s is not None and s["saturated"] >= 0.5:
            return True
    return False


def check_lr_too_high(run):
    """Updates large against the weights from the start, with the loss
    rising, oscillating or blowing up."""
    solver = run.meta.get("solver")
    rows = _update_ratios(run)
    if solver is None or not rows or check_input_scale(run):
        return []       # raw inputs make the gradients, hence the steps, big
    # The first iteration with a step too large for its weights (else the
    # largest step of the first few iterations), and its worst layer.
    high = [row for row in rows
            if max(r[0] for r in row) >= UPDATE_RATIO_HIGH]
    row = high[0] if high else max(rows[:5], key=lambda x: max(
        r[0] for r in x))
    ratio, it, name, u, w = max(row, key=lambda r: r[0])
    first, last, rising, bad = _loss_trend(run)
    if _saturated_at_start(run):
        # Broken before the first step: large steps follow, not lead.
        severity = "warning" if ratio >= UPDATE_RATIO_HIGH else None
    elif ratio >= UPDATE_RATIO_WILD or (ratio >= UPDATE_RATIO_HIGH and
                                        rising):
        severity = "error"
    elif ratio >= UPDATE_RATIO_HIGH:
        severity = "warning"
    else:
        severity = None
    if severity is None:
        return []
    lr = solver["base_lr"]
    # Down by the powers of ten that bring the step under 1e-2 of the weights.
    suggest = lr / 10 ** max(1, math.ceil(math.log10(ratio / 1e-2)))
    return [_finding(
        "lr_too_high", severity,
        f"the update of '{name}' at iteration {it} is {ratio:.3g}× its "
        f"weights' norm (healthy: about 1e-3)"
        + (f"; the loss went from {first:.4g} to {last:.4g}"
           if first is not None else "")
        + (f" and turned NaN/Inf at iteration {bad}" if bad is not None
           else ""),
        f"lower base_lr from {lr:g} to about {suggest:.2g} (or set "
        "clip_gradients)", layer=name, iteration=it, run=run,
        update_weight_ratio=ratio, update_norm=u, weight_norm=w,
        base_lr=lr, loss_first=first, loss_last=last,
        loss_nonfinite_at=bad)]


def check_dead_relu(run):
    """ReLU units (channels) whose input was never positive in any sampled
    batch (inputs exactly zero everywhere are left to constant_output)."""
    if not run.sampled:
        return []
    last = run.sampled[-1]
    out = []
    for name, r in last.get("relu", {}).items():
        units, dead = r["units"], r["never_positive"]
        if not units:
            continue
        frac = dead / units
        if run.meta.get("mode") != "train" and dead < units:
            continue    # one or two inputs are too few to call a unit dead
        if frac >= DEAD_ERROR:
            severity = "error"
        elif frac >= DEAD_WARNING:
            severity = "warning"
        else:
            continue
        layer = _layers_by_name(run).get(name, {})
        blob = layer.get("bottoms", [None])[0]
        maker = _source_layer(run, blob, layer.get("index")) if blob \
            else None
        init = (maker or {}).get("config", {}).get("weight_filler")
        out.append(_finding(
            "dead_relu", severity,
            f"{dead} of {units} units of '{name}' were never positive in "
            f"{len(run.sampled)} sampled batches (largest input "
            f"{r['max_input']:g})",
            "initialise the layer before it with weight_filler msra or "
            "xavier and bias_filler constant 0 (or a small positive value), "
            "and lower base_lr if units died during training",
            layer=name, blob=blob, iteration=last["iter"], run=run,
            units=units, dead=dead, dead_fraction=frac,
            largest_input=r["max_input"],
            feeding_layer=(maker or {}).get("name"),
            feeding_weight_filler=init))
    return out


def check_nonfinite(run):
    """The first blob that turned NaN/Inf, with its inputs' ranges."""
    event = next((r["nonfinite"] for r in run.sampled if "nonfinite" in r),
                 None)
    losses = _losses(run)
    if event is None:
        bad = next((it for it, v in losses if not _finite(v)), None)
        if bad is None:
            return []
        return [_finding(
            "nonfinite", "error", f"the loss is NaN/Inf at iteration {bad}",
            "lower base_lr (or set clip_gradients) and check the inputs' "
            "range", iteration=bad, run=run, loss_nonfinite_at=bad)]
    where = (f"the gradient of '{event['blob']}'" if event["pass"] ==
             "backward" and event["blob"] else
             f"a parameter gradient of '{event['layer']}'"
             if event["pass"] == "backward" else f"'{event['blob']}'")
    ranges = ", ".join(f"{k} {v[0]}..{v[1]}" for k, v in
                       event["inputs"].items())
    return [_finding(
        "nonfinite", "error",
        f"{where} turned NaN/Inf first, in the {event['pass']} pass of "
        f"'{event['layer']}' ({event['type']}) at iteration "
        f"{event['iteration']}" + (f"; its inputs: {ranges}" if ranges
                                   else ""),
        "lower base_lr (or set clip_gradients) if values grew over the "
        "iterations before; otherwise fix the inputs of this layer "
        "(their range, a log or division of zero)",
        layer=event["layer"], blob=event["blob"],
        iteration=event["iteration"], run=run, direction=event["pass"],
        nonfinite_values=event["count"], inputs=event["inputs"])]


def check_saturated_softmax(run):
    """A softmax loss at −log(FLT_MIN) ≈ 87.3365, or scores so far apart
    that probabilities are exactly 0 and 1. Saturated before the first
    update, it is the initialisation (or the input), not the rate."""
    out = []
    first = run.sampled[0]["iter"] if run.sampled else None
    for layer in run.layers:
        if layer["type"] == "Softmax" and layer["tops"]:
            out.extend(_certain_softmax(run, layer))
        if layer["type"] != "SoftmaxWithLoss" or not layer["tops"]:
            continue
        top, scores = layer["tops"][0], layer["bottoms"][0]
        values = [(r["iter"], r.get("tops", {}).get(layer["name"], {})
                   .get(top)) for r in run.sampled]
        stuck = [(it, s["max"]) for it, s in values
                 if s is not None and _finite(s["max"])
                 and s["max"] >= FLT_MIN_LOSS * 0.999]
        sat = [(r["iter"], r["scores"][scores]["saturated"])
               for r in run.sampled if scores in r.get("scores", {})]
        heavy = [x for x in sat if x[1] >= 0.5]
        at_start = (stuck and stuck[0][0] == first) or (
            heavy and heavy[0][0] == first)
        evidence = {}
        if at_start:
            evidence = _initial_scale(run)
            hand_set = [name for name, f in evidence["weight_fillers"]
                        .items() if f and not f.startswith(("xavier",
                                                            "msra"))]
            fix = ("the scores are huge before any update: initialise "
                   + ", ".join(f"'{n}'" for n in hand_set) + " with "
                   "weight_filler xavier or msra (or a much smaller std)"
                   if hand_set else
                   "the scores are huge before any update although the "
                   "fillers scale to their inputs: scale the inputs to "
                   "about [0, 1]")
        if stuck:
            out.append(_finding(
                "saturated_softmax", "error",
                f"'{top}' is {stuck[0][1]:g} = −log(FLT_MIN) from iteration "
                f"{stuck[0][0]} ({len(stuck)} sampled iterations): the "
                "label's probability underflowed to 0",
                fix if at_start else "the scores became huge: lower "
                "base_lr, scale the inputs and check the labels",
                layer=layer["name"], blob=top, iteration=stuck[0][0],
                run=run, loss=stuck[0][1], saturated_iterations=len(stuck),
                flt_min_loss=FLT_MIN_LOSS, **evidence))
        elif heavy:
            out.append(_finding(
                "saturated_softmax", "error" if at_start else "warning",
                f"in {heavy[0][1]:.0%} of the items of iteration "
                f"{heavy[0][0]} the scores of '{scores}' spread over 87.3, "
                "so some probabilities are exactly 0"
                + (" — before any update" if at_start else ""),
                fix if at_start else "lower base_lr or add weight decay; "
                "the scores grow without bound", layer=layer["name"],
                blob=scores, iteration=heavy[0][0], run=run,
                saturated_fraction=heavy[0][1], **evidence))
    return out


def _initial_scale(run):
    """Evidence for a too-large start: the std of each learnable layer's
    output in the first record, and each one's weight filler."""
    record = run.sampled[0]
    stds, fillers = {}, {}
    for layer in _learnable(run):
        tops = record.get("tops", {}).get(layer["name"], {})
        for s in tops.values():
            stds[layer["name"]] = s["std"]
        fillers[layer["name"]] = layer["config"].get("weight_filler")
    return {"initial_output_std": stds, "weight_fillers": fillers}


def _certain_softmax(run, layer):
    top = layer["tops"][0]
    for r in run.sampled:
        s = r.get("tops", {}).get(layer["name"], {}).get(top)
        if s is not None and s.get("certain", 0) >= 0.5:
            return [_finding(
                "saturated_softmax", "warning",
                f"{s['certain']:.0%} of the items of '{top}' have a "
                "probability of exactly 1 (and 0 for the other classes)",
                "the scores before the softmax are huge: scale the inputs "
                "as in training, and check the weights", layer=layer["name"],
                blob=top, iteration=r["iter"], run=run,
                certain_fraction=s["certain"])]
    return []


def _relative_gradients(record, learnable):
    out = []
    for layer in learnable:
        p = record.get("params", {}).get(layer["name"])
        if p and _finite(p["grad_norm"]) and _finite(p["weight_norm"]) \
                and p["weight_norm"] > 0:
            out.append((layer["name"], p["grad_norm"] / p["weight_norm"]))
    return out


def check_exploding_gradient(run):
    """Gradient norms growing during the run, or from the loss down to the
    first layers."""
    learnable = _learnable(run)
    out = []
    grads = {}
    for record in run.sampled:
        for name, p in record.get("params", {}).items():
            grads.setdefault(name, []).append((record["iter"],
                                               p["grad_norm"]))
    for name, series in grads.items():
        finite = [(it, g) for it, g in series if _finite(g) and g > 0]
        if len(finite) < 2:
            continue
        (i0, g0), (i1, g1) = finite[0], max(finite, key=lambda x: x[1])
        if g1 / g0 >= GRADIENT_GROWTH and i1 > i0:
            out.append(_finding(
                "exploding_gradient", "error",
                f"the gradient norm of '{name}' grew {g1 / g0:.3g}× from "
                f"iteration {i0} ({g0:.3g}) to {i1} ({g1:.3g})",
                "lower base_lr or set clip_gradients (e.g. 10)",
                layer=name, iteration=i1, run=run, grad_norm_first=g0,
                grad_norm_peak=g1, growth=g1 / g0))
            break
    if run.sampled and len(learnable) >= 2:
        rel = _relative_gradients(run.sampled[0], learnable)
        if len(rel) >= 2 and rel[-1][1] > 0 and \
                rel[0][1] / rel[-1][1] >= GRADIENT_SPREAD:
            out.append(_finding(
                "exploding_gradient", "warning",
                f"relative to its weights the gradient of '{rel[0][0]}' is "
                f"{rel[0][1] / rel[-1][1]:.3g}× that of '{rel[-1][0]}'",
                "normalise between layers (BatchNorm) or scale the "
                "initialisation down (xavier/msra fillers)",
                layer=rel[0][0], iteration=run.sampled[0]["iter"], run=run,
                relative_gradients=dict(rel)))
    return out


def check_vanishing_gradient(run):
    """The first learnable layers get (almost) no gradient compared with the
    last."""
    learnable = _learnable(run)
    if not run.sampled or len(learnable) < 2:
        return []
    record = run.sampled[0]
    rel = _relative_gradients(record, learnable)
    if len(rel) < 2 or rel[-1][1] <= 0:
        return []
    spread = rel[0][1] / rel[-1][1]
    if spread > 1 / GRADIENT_SPREAD:
        return []
    return [_finding(
        "vanishing_gradient", "error" if spread == 0 else "warning",
        f"relative to its weights the gradient of '{rel[0][0]}' is "
        f"{spread:.3g}× that of '{rel[-1][0]}': the first layers barely "
        "learn", "use ReLU instead of sigmoid/tanh in deep stacks, msra/"
        "xavier fillers, or BatchNorm", layer=rel[0][0],
        iteration=record["iter"], run=run, relative_gradients=dict(rel))]


def check_constant_output(run):
    """The scores do not depend on the input: the same for every item."""
    out = []
    inputs = _input_variation(run)
    for record in run.sampled[-1:]:
        for blob, s in record.get("scores", {}).items():
            if s["items"] < 2 or not _finite(s["batch_std"]) or \
                    not _finite(s["absmean"]):
                continue
            if s["batch_std"] > CONSTANT * max(s["absmean"], 1e-30):
                continue
            if inputs is not None and inputs <= 0:
                continue    # the input itself is the same for every item
            maker = _source_layer(run, blob)
            out.append(_finding(
                "constant_output", "error",
                f"'{blob}' is the same for all {s['items']} items of "
                f"iteration {record['iter']} (largest std over the batch "
                f"{s['batch_std']:g}, mean |value| {s['absmean']:g}): the "
                "output does not depend on the input",
                "give the learnable layers a weight_filler (Caffe's default "
                "is constant 0) such as xavier or msra, and check for dead "
                "ReLUs", layer=(maker or {}).get("name"), blob=blob,
                iteration=record["iter"], run=run,
                batch_std=s["batch_std"], absmean=s["absmean"],
                items=s["items"], input_batch_std=inputs))
    return out


def _input_variation(run):
    """How much the first learnable layer's input varies over a batch
    (its std over a sample), or None if unknown."""
    learnable = _learnable(run)
    if not learnable or not learnable[0]["bottoms"] or not run.sampled:
        return None
    blob = learnable[0]["bottoms"][0]
    s = blob_stats(run, run.sampled[-1], blob, learnable[0]["index"])
    return None if s is None else s["std"]


CHECKS = (check_label_range, check_weights_unmatched, check_batchnorm_phase,
          check_input_scale, check_frozen, check_lr_too_high,
          check_dead_relu, check_nonfinite, check_saturated_softmax,
          check_exploding_gradient, check_vanishing_gradient,
          check_constant_output)
