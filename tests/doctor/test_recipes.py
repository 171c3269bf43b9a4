"""Broken training recipes from the caffe-users list get the right kind as
their top finding; the healthy recipe gets no warning or worse.

Each recipe trains a reduced LeNet on the MNIST-like LMDB of
doctor_recipes for a few iterations (seconds)."""
import pytest

import doctor_recipes as recipes
from kaffe.doctor import diagnose_solver, healthy

ITERATIONS = 20


def diagnose(tmp_path, db, iterations=ITERATIONS, weights=(), **recipe):
    solver = recipes.write_recipe(tmp_path, db=db, **recipe)
    findings, run = diagnose_solver(solver, weights=weights,
                                    iterations=iterations)
    return findings, run


def kinds(findings):
    return [f.kind for f in findings]


def test_the_healthy_recipe_has_no_warning(tmp_path, digits_db):
    findings, run = diagnose(tmp_path, digits_db)
    assert healthy(findings)
    assert [f for f in findings if f.severity != "info"] == []
    losses = [loss for r in run.records for _, loss in r["losses"]]
    assert len(losses) == ITERATIONS and losses[-1] < losses[0]


def test_lenet_without_scale_is_input_scale(tmp_path, digits_db):
    # Pixels 0..255 straight into conv1: the loss explodes (NaN within a few
    # iterations); the cause named first is the input, not the symptoms.
    findings, _ = diagnose(tmp_path, digits_db, scale="")
    top = findings[0]
    assert top.kind == "input_scale" and top.severity == "error"
    assert (top.layer, top.blob) == ("conv1", "data")
    assert top.evidence["max"] >= 200 and top.evidence["min"] == 0
    assert "scale: 0.00390625" in top.fix
    assert "nonfinite" in kinds(findings)


def test_learning_rate_100x_is_lr_too_high_before_its_nan(tmp_path,
                                                          digits_db):
    # base_lr 1 instead of 0.01. The loss turns NaN a few iterations in;
    # the NaN is the symptom, a step far larger than the weights the cause:
    # lr_too_high comes first, nonfinite after it.
    findings, _ = diagnose(tmp_path, digits_db, base_lr=1.0)
    top = findings[0]
    assert top.kind == "lr_too_high" and top.severity == "error"
    assert top.iteration == 0
    assert top.evidence["update_weight_ratio"] > 0.1
    assert top.evidence["base_lr"] == 1.0
    assert "0.01" in top.fix
    assert kinds(findings).index("nonfinite") > 0


def test_labels_1_to_10_for_10_outputs_is_label_range(tmp_path):
    pytest.importorskip("lmdb", reason="lmdb (kaffe[data]) not installed")
    # kaffe stops at the first label 10 (Caffe reads past the scores); the
    # doctor turns that stop into the finding.
    findings, run = diagnose(tmp_path, None, labels_from=1)
    top = findings[0]
    assert top.kind == "label_range" and top.layer == "loss"
    assert top.blob == "label" and top.iteration == 0
    assert top.evidence["label_min"] == 1 and top.evidence["label_max"] == 10
    assert top.evidence["classes"] == 10
    assert "subtract 1" in top.fix
    assert run.error is not None


def _pretrained(tmp_path, db):
    import kaffe
    (tmp_path / "base").mkdir()
    solver = kaffe.get_solver(recipes.write_recipe(tmp_path / "base", db=db))
    solver.step(3)
    path = str(tmp_path / "base.caffemodel")
    solver.net.save(path)
    return path


def test_fine_tuning_with_renamed_layers_is_weights_unmatched(tmp_path,
                                                              digits_db):
    weights = _pretrained(tmp_path, digits_db)
    findings, _ = diagnose(tmp_path, digits_db, weights=[weights],
                           name_conv1="conv1_ft", name_ip1="fc1")
    top = findings[0]
    assert top.kind == "weights_unmatched" and top.severity == "warning"
    assert top.evidence["not_loaded"] == ["conv1_ft", "fc1"]
    assert top.evidence["unused_in_file"] == ["conv1", "ip1"]
    assert top.evidence["rename_guesses"] == {"conv1_ft": "conv1",
                                              "fc1": "ip1"}
    assert "rename 'conv1_ft' back to 'conv1'" in top.fix


def test_nothing_loaded_is_an_error(tmp_path, digits_db):
    weights = _pretrained(tmp_path, digits_db)
    findings, _ = diagnose(tmp_path, digits_db, weights=[weights],
                           iterations=2, name_conv1="a", name_conv2="b",
                           name_ip1="c", name_ip2="d")
    top = findings[0]
    assert top.kind == "weights_unmatched" and top.severity == "error"
    assert top.evidence["loaded"] == []
    assert top.evidence["not_loaded"] == ["a", "b", "c", "d"]


def test_a_new_last_layer_is_only_info(tmp_path, digits_db):
    # The usual fine-tuning recipe: a new classifier under a new name.
    weights = _pretrained(tmp_path, digits_db)
    findings, _ = diagnose(tmp_path, digits_db, weights=[weights],
                           name_ip2="ip2_new")
    assert healthy(findings)
    info = [f for f in findings if f.kind == "weights_unmatched"]
    assert len(info) == 1 and info[0].severity == "info"
    assert info[0].evidence["not_loaded"] == ["ip2_new"]


def test_a_shape_that_differs_is_weights_unmatched(tmp_path, digits_db):
    weights = _pretrained(tmp_path, digits_db)
    text = recipes.lenet(digits_db).replace("num_output: 64", "num_output: 32")
    findings, _ = diagnose(tmp_path, digits_db, weights=[weights],
                           net_text=text, iterations=2)
    top = findings[0]
    assert top.kind == "weights_unmatched" and top.severity == "error"
    assert top.layer == "ip1"
    assert top.evidence["file_shape"] == [64, 256]
    assert top.evidence["net_shape"] == [32, 256]


def test_everything_frozen_is_frozen(tmp_path, digits_db):
    findings, _ = diagnose(
        tmp_path, digits_db, iterations=3,
        conv1_extra="param { lr_mult: 0 } param { lr_mult: 0 }")
    top = findings[0]
    assert top.kind == "frozen" and top.severity == "error"
    assert top.evidence["params_with_lr_mult_0"] == 8


def test_batchnorm_with_global_stats_while_training_is_batchnorm_phase(
        tmp_path, digits_db):
    middle = ('layer { name: "bn" type: "BatchNorm" bottom: "pool2" '
              'top: "pool2" batch_norm_param { use_global_stats: true } }')
    findings, _ = diagnose(tmp_path, digits_db, iterations=3, middle=middle)
    top = findings[0]
    assert top.kind == "batchnorm_phase" and top.layer == "bn"
    assert top.evidence == {"phase": "TRAIN", "use_global_stats": True}


def test_dead_relus_from_a_bad_bias_are_dead_relu(tmp_path, digits_db):
    findings, _ = diagnose(
        tmp_path, digits_db, iterations=8,
        ip1_extra='bias_filler { type: "constant" value: -10 }')
    top = findings[0]
    assert top.kind == "dead_relu" and top.layer == "relu1"
    assert top.evidence["dead"] == top.evidence["units"] == 64
    assert top.evidence["largest_input"] < 0


def test_no_weight_filler_is_constant_output(tmp_path, digits_db):
    # Caffe's default filler is constant 0: every item gets the same scores.
    findings, _ = diagnose(tmp_path, digits_db, iterations=8, fillers="")
    top = findings[0]
    assert top.kind == "constant_output" and top.blob == "ip2"
    assert top.evidence["batch_std"] == 0
    assert top.evidence["input_batch_std"] > 0
    assert "weight_filler" in top.fix


def test_a_too_large_init_is_a_softmax_saturated_before_any_update(
        tmp_path, digits_db):
    # gaussian std 1 where xavier gives ~0.1: the loss starts near 87 before
    # the first step, so the rate is not the cause (lr_too_high is only a
    # warning after it) and the fix is the filler.
    findings, _ = diagnose(
        tmp_path, digits_db, iterations=8,
        fillers='weight_filler { type: "gaussian" std: 1 }')
    top = findings[0]
    assert top.kind == "saturated_softmax" and top.iteration == 0
    assert top.severity == "error"
    assert "initialise 'conv1', 'conv2', 'ip1', 'ip2' with" in top.fix
    assert top.evidence["weight_fillers"]["ip2"] == "gaussian std 1"
    assert [f.severity for f in findings if f.kind == "lr_too_high"] in (
        [], ["warning"])


def test_batchnorm_without_global_stats_in_the_test_net(tmp_path,
                                                        digits_db):
    # The test net is only read (not built, its data not opened).
    middle = ('layer { name: "bn" type: "BatchNorm" bottom: "pool2" '
              'top: "pool2" include { phase: TEST } '
              'batch_norm_param { use_global_stats: false } }')
    findings, _ = diagnose(tmp_path, digits_db, iterations=2, middle=middle,
                           solver_extra="test_iter: 1\ntest_interval: 100")
    top = findings[0]
    assert (top.kind, top.layer, top.severity) == ("batchnorm_phase", "bn",
                                                   "warning")
    assert top.evidence == {"phase": "TEST", "use_global_stats": False}


def test_hdf5_weights_are_matched_too(tmp_path, digits_db):
    pytest.importorskip("h5py", reason="h5py (kaffe[hdf5]) not installed")
    import kaffe
    (tmp_path / "base").mkdir()
    solver = kaffe.get_solver(recipes.write_recipe(tmp_path / "base",
                                                   db=digits_db))
    weights = str(tmp_path / "base.caffemodel.h5")
    solver.net.save_hdf5(weights)
    findings, _ = diagnose(tmp_path, digits_db, weights=[weights],
                           iterations=2, name_conv1="conv1_ft")
    top = findings[0]
    assert top.kind == "weights_unmatched" and top.severity == "warning"
    assert top.evidence["not_loaded"] == ["conv1_ft"]
    assert top.evidence["rename_guesses"] == {"conv1_ft": "conv1"}
