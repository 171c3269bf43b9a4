"""The checks on hand-written runs (the numbers a recorder would keep), for
the kinds the recipes do not reach on their own, and the ordering."""
import math

import numpy as np
import pytest

from kaffe.doctor import Finding, ordered, report_json
from kaffe.doctor.checks import (check_exploding_gradient, check_nonfinite,
                                 check_saturated_softmax,
                                 check_vanishing_gradient)
from kaffe.doctor.record import array_stats, diff_stats, score_stats
from kaffe.doctor.store import Run


def layer(index, name, type_, bottoms, tops, params=0):
    return {"index": index, "name": name, "type": type_, "bottoms": bottoms,
            "tops": tops, "inserted": False, "in_place": False,
            "need_backward": True, "config": {},
            "params": [{"shape": [4, 4], "lr_mult": 1.0, "decay_mult": 1.0,
                        "shared": False}] * params}


def deep_run(grads, weights=1.0):
    """A chain of InnerProduct layers ip0..ipK, one record per grads row."""
    k = len(grads[0])
    layers = [layer(0, "data", "Input", [], ["data"])]
    prev = "data"
    for i in range(k):
        layers.append(layer(i + 1, f"ip{i}", "InnerProduct", [prev],
                            [f"ip{i}"], params=2))
        prev = f"ip{i}"
    records = [{"iter": it, "tops": {}, "diffs": {}, "relu": {},
                "labels": {}, "scores": {}, "losses": [[it, 1.0]],
                "params": {f"ip{i}": {"weight_norm": weights,
                                      "grad_norm": g, "update_norm": 1e-4}
                           for i, g in enumerate(row)}}
               for it, row in enumerate(grads)]
    net = {"name": "deep", "phase": "TRAIN", "layers": layers, "blobs": {},
           "loss_blobs": [], "outputs": []}
    return Run(meta={"mode": "train", "net": net, "solver": {
        "base_lr": 0.01}, "weights": [], "every": 1}, records=records)


def test_vanishing_gradient_across_depth():
    found = check_vanishing_gradient(deep_run([[1e-9, 1e-6, 1e-3, 1e-1]]))
    assert [f.kind for f in found] == ["vanishing_gradient"]
    assert found[0].layer == "ip0"
    assert found[0].evidence["relative_gradients"]["ip3"] == 0.1
    assert check_vanishing_gradient(deep_run([[0.1, 0.2, 0.1, 0.3]])) == []


def test_exploding_gradient_over_iterations_and_depth():
    grads = [[1.0, 1.0], [50.0, 2.0], [5e3, 3.0]]
    found = check_exploding_gradient(deep_run(grads))
    assert found[0].kind == "exploding_gradient"
    assert found[0].layer == "ip0" and found[0].iteration == 2
    assert found[0].evidence["growth"] == pytest.approx(5e3)
    deep = check_exploding_gradient(deep_run([[1e5, 1.0, 1e-1]]))
    assert [f.severity for f in deep] == ["warning"]
    assert check_exploding_gradient(deep_run([[1.0, 2.0], [1.5, 2.5]])) == []


def test_nonfinite_names_the_first_layer_and_its_inputs():
    run = deep_run([[1.0, 1.0], [1.0, 1.0]])
    run.records[1]["nonfinite"] = {
        "iteration": 1, "layer": "ip1", "type": "InnerProduct",
        "blob": "ip1", "pass": "forward", "count": 12,
        "inputs": {"ip0": [-3e38, 3e38]}}
    found = check_nonfinite(run)
    assert found[0].layer == "ip1" and found[0].iteration == 1
    assert found[0].evidence["inputs"] == {"ip0": [-3e38, 3e38]}
    assert "forward pass of 'ip1'" in found[0].message


def test_saturated_softmax_at_minus_log_flt_min():
    run = deep_run([[1.0, 1.0]] * 3)
    run.net["layers"].append(layer(3, "loss", "SoftmaxWithLoss",
                                   ["ip1", "label"], ["loss"]))
    for r in run.records:
        r["tops"]["loss"] = {"loss": dict(array_stats(np.float32([
            87.33654475 if r["iter"] else 2.3])))}
    found = check_saturated_softmax(run)
    assert found[0].kind == "saturated_softmax"
    assert found[0].iteration == 1
    assert found[0].evidence["saturated_iterations"] == 2


def test_statistics_with_nan_and_inf():
    a = np.array([1, 2, np.nan, np.inf, -4], np.float32)
    s = array_stats(a)
    assert s["nonfinite"] == 2 and (s["min"], s["max"]) == (-4, 2)
    d = diff_stats(a)
    assert d["nonfinite"] == 2 and not math.isfinite(d["norm"])
    same = score_stats(np.ones((5, 3), np.float32))
    assert same["batch_std"] == 0 and same["items"] == 5
    wide = score_stats(np.float32([[0, 100, 0], [1, 0, 2]]))
    assert wide["saturated"] == 0.5


def test_ordering_and_json():
    def f(kind, severity, iteration=0):
        return Finding(kind, severity, None, None, iteration, {"x": math.nan},
                       "fix.", "seen.")
    found = ordered([f("nonfinite", "error", 3), f("dead_relu", "warning"),
                     f("input_scale", "error", 0), f("frozen", "info")])
    assert [x.kind for x in found] == ["input_scale", "nonfinite",
                                       "dead_relu", "frozen"]
    report = report_json(found)
    assert report["healthy"] is False
    assert report["findings"][0]["evidence"] == {"x": "nan"}
    assert report_json([f("frozen", "info")])["healthy"] is True
    with pytest.raises(ValueError):
        Finding("no_such_kind", "error", None, None, None, {}, "", "")
