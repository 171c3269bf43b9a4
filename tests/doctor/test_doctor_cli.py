"""kaffe doctor on the command line: text and --json reports, exit codes,
--model for deploy nets, --stats for a recorded run (kaffe train --stats),
and kaffe viz --stats."""
import json
import pathlib

import pytest

import doctor_recipes as recipes
from kaffe.tools import cli

ROOT = pathlib.Path(__file__).parents[2]
LENET = str(ROOT / "examples" / "mnist" / "lenet.prototxt")


def doctor(capsys, *args):
    status = cli.main(["doctor", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_json_report_of_a_broken_recipe(tmp_path, digits_db, capsys):
    solver = recipes.write_recipe(tmp_path, db=digits_db, scale="")
    status, out, _ = doctor(capsys, "--solver", solver, "--iterations",
                            "6", "--json")
    assert status == 0                      # a finding is not an error
    report = json.loads(out)
    assert report["healthy"] is False
    first = report["findings"][0]
    assert set(first) >= {"kind", "severity", "layer", "blob", "iteration",
                          "evidence", "fix"}
    assert first["kind"] == "input_scale"
    assert first["evidence"]["max"] >= 200
    severities = [f["severity"] for f in report["findings"]]
    order = {"error": 0, "warning": 1, "info": 2}
    assert severities == sorted(severities, key=order.get)


def test_text_report_of_the_healthy_recipe(tmp_path, digits_db, capsys):
    solver = recipes.write_recipe(tmp_path, db=digits_db)
    status, out, _ = doctor(capsys, "--solver", solver, "--iterations", "4")
    assert status == 0
    assert "No findings" in out
    assert out.rstrip().endswith("healthy: 0 errors, 0 warnings, 0 infos")


def test_bad_files_and_options_exit_2(tmp_path, capsys):
    status, _, err = doctor(capsys, "--solver", str(tmp_path / "no.prototxt"))
    assert status == 2 and err.startswith("kaffe: error:")
    status, _, err = doctor(capsys, "--model", LENET, "--solver", "x")
    assert status == 2 and "exactly one of" in err
    bad = tmp_path / "bad.prototxt"
    bad.write_text("layer { name: 'a' type: 'Nope' }")
    status, _, err = doctor(capsys, "--model", str(bad))
    assert status == 2 and "Traceback" not in err
    status, _, err = doctor(capsys, "--stats", str(tmp_path))
    assert status == 2 and "meta.json" in err


def test_model_healthy_deploy_net(capsys):
    status, out, _ = doctor(capsys, "--model", LENET, "--json")
    assert status == 0
    report = json.loads(out)
    assert report["healthy"] is True, report


def test_model_frozen_deploy_net_is_not_frozen(tmp_path, capsys):
    # Converted deploy nets often carry lr_mult: 0 everywhere: no finding.
    text = pathlib.Path(LENET).read_text().replace(
        "lr_mult: 1", "lr_mult: 0").replace("lr_mult: 2", "lr_mult: 0")
    assert text.count("lr_mult: 0") == 8
    net = tmp_path / "deploy.prototxt"
    net.write_text(text)
    status, out, _ = doctor(capsys, "--model", str(net), "--json")
    assert json.loads(out) == {"findings": [], "healthy": True}


def test_model_without_fillers_is_constant_output(tmp_path, capsys):
    text = pathlib.Path(LENET).read_text().replace(
        'weight_filler {\n      type: "xavier"\n    }', "")
    text = text.replace('weight_filler { type: "xavier" }', "")
    assert "xavier" not in text
    net = tmp_path / "deploy.prototxt"
    net.write_text(text)
    status, out, _ = doctor(capsys, "--model", str(net), "--json")
    report = json.loads(out)
    assert report["findings"][0]["kind"] == "constant_output"
    assert report["findings"][0]["blob"] == "prob"


def test_model_batchnorm_without_global_stats_in_test(tmp_path, capsys):
    net = tmp_path / "bn.prototxt"
    net.write_text("""name: "bn"
layer { name: "data" type: "Input" top: "data"
  input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 3
    weight_filler { type: "xavier" } } }
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv"
  batch_norm_param { use_global_stats: false } }
""")
    status, out, _ = doctor(capsys, "--model", str(net), "--json")
    first = json.loads(out)["findings"][0]
    assert (first["kind"], first["layer"]) == ("batchnorm_phase", "bn")
    assert first["evidence"] == {"phase": "TEST", "use_global_stats": False}


def test_model_never_imports_python_layers(tmp_path, capsys, monkeypatch):
    # If the doctor imported the module, this import would fail loudly.
    net = tmp_path / "py.prototxt"
    net.write_text("""name: "py"
layer { name: "data" type: "Input" top: "data"
  input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "mine" type: "Python" bottom: "data" top: "out"
  python_param { module: "doctor_must_not_import_this" layer: "X" } }
layer { name: "bn" type: "BatchNorm" bottom: "out" top: "out"
  batch_norm_param { use_global_stats: false } }
""")
    import sys
    status, out, _ = doctor(capsys, "--model", str(net))
    assert status == 0
    assert "doctor_must_not_import_this" not in sys.modules
    assert "only the static checks ran" in out
    assert "batchnorm_phase" in out


@pytest.mark.filterwarnings("ignore::RuntimeWarning")     # the NaN run
def test_train_stats_then_doctor_and_viz(tmp_path, digits_db, capsys):
    solver = recipes.write_recipe(tmp_path, db=digits_db, scale="",
                                  solver_extra="display: 2")
    text = pathlib.Path(solver).read_text().replace(
        "max_iter: 1000", "max_iter: 7").replace("display: 0\n", "")
    text += f'snapshot_prefix: "{tmp_path}/snap"\n'
    pathlib.Path(solver).write_text(text)
    stats = tmp_path / "stats"
    assert cli.main(["train", "--solver", solver, "--stats",
                     str(stats)]) == 0
    records = [json.loads(line) for line in
               (stats / "stats.jsonl").read_text().splitlines()]
    sampled = [r["iter"] for r in records if not r.get("losses_only")]
    assert sampled == [0, 2, 4, 6]
    losses = [it for r in records for it, _ in r["losses"]]
    assert losses[:7] == list(range(7))
    capsys.readouterr()
    status, out, _ = doctor(capsys, "--stats", str(stats), "--json")
    assert status == 0
    assert json.loads(out)["findings"][0]["kind"] == "input_scale"
    # A run stopped while writing leaves a cut line: still readable.
    with open(stats / "stats.jsonl", "a") as f:
        f.write('{"iter": 8, "tops"')
    status, out, _ = doctor(capsys, "--stats", str(stats), "--json")
    assert status == 0 and json.loads(out)["findings"]
    page = tmp_path / "page.html"
    assert cli.main(["viz", "--stats", str(stats), "-o", str(page)]) == 0
    html = page.read_text()
    assert 'id="training"' in html and "input_scale" in html
    assert html.count('class="training-block"') >= 4
    assert "update / weights" in html


def test_tensorboard_scalars(tmp_path, digits_db):
    pytest.importorskip("tensorboardX", reason="tensorboardX not installed")
    solver = recipes.write_recipe(tmp_path, db=digits_db)
    text = pathlib.Path(solver).read_text().replace(
        "max_iter: 1000", "max_iter: 3").replace("display: 0", "display: 1")
    text += f'snapshot_prefix: "{tmp_path}/snap"\n'
    pathlib.Path(solver).write_text(text)
    stats = tmp_path / "stats"
    assert cli.main(["train", "--solver", solver, "--stats", str(stats),
                     "--tensorboard"]) == 0
    events = list((stats / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


def test_tensorboard_needs_stats(tmp_path, capsys):
    status = cli.main(["train", "--solver", str(tmp_path / "s.prototxt"),
                       "--tensorboard"])
    assert status == 2


def test_model_softmax_of_exactly_one_is_saturated(tmp_path, capsys):
    net = tmp_path / "sat.prototxt"
    net.write_text("""name: "sat"
layer { name: "data" type: "Input" top: "data"
  input_param { shape { dim: 2 dim: 16 } } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
  inner_product_param { num_output: 5
    weight_filler { type: "gaussian" std: 1000 } } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
""")
    status, out, _ = doctor(capsys, "--model", str(net), "--json")
    first = json.loads(out)["findings"][0]
    assert (first["kind"], first["blob"]) == ("saturated_softmax", "prob")
    assert first["evidence"]["certain_fraction"] == 1


def test_model_with_a_data_layer_takes_shape(capsys):
    train_test = str(ROOT / "examples" / "mnist" /
                     "lenet_train_test.prototxt")
    status, _, err = doctor(capsys, "--model", train_test)
    assert status == 2 and "--shape data=100" in err
    status, out, _ = doctor(capsys, "--model", train_test, "--shape",
                            "data=2,1,28,28", "--shape", "label=2")
    assert status == 0 and "net 'LeNet' (TEST)" in out
    assert "healthy: 0 errors, 0 warnings" in out     # accuracy is no answer


def test_save_stats_reads_back_the_same_findings(tmp_path, digits_db,
                                                 capsys):
    solver = recipes.write_recipe(tmp_path, db=digits_db, labels_from=0,
                                  ip1_extra='bias_filler { type: "constant"'
                                            ' value: -5 }')
    saved = tmp_path / "saved"
    status, live, _ = doctor(capsys, "--solver", solver, "--iterations", "4",
                             "--json", "--save_stats", str(saved))
    assert status == 0
    status, again, _ = doctor(capsys, "--stats", str(saved), "--json")
    live, again = json.loads(live), json.loads(again)
    assert live["findings"][0]["kind"] == "dead_relu"
    assert [f["kind"] for f in again["findings"]] == \
        [f["kind"] for f in live["findings"]]
