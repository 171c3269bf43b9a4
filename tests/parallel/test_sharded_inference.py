"""Sharded inference: ``mpiexec -n 2 kaffe test / extract_features /
classify`` give what one worker gives — the same lines, the same DB records,
the same .npy — over an LMDB and over an image list."""
import re

import numpy as np
import pytest

from mpi_jobs import run_kaffe, write_lmdb

DATA = {
    "lmdb": 'layer {{ name: "data" type: "Data" top: "data" top: "label"\n'
            '  data_param {{ source: "{source}" backend: LMDB batch_size: 4 }}'
            '\n  transform_param {{ scale: 0.00390625 }} }}',
    "list": 'layer {{ name: "data" type: "ImageData" top: "data" '
            'top: "label"\n  image_data_param {{ source: "{source}" '
            'root_folder: "{root}/" batch_size: 4 is_color: false }}\n'
            '  transform_param {{ scale: 0.00390625 }} }}',
}

BODY = """
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 3
                      weight_filler { type: "xavier" } } }
layer { name: "ip" type: "InnerProduct" bottom: "conv" top: "ip"
  inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label"
  top: "loss" }
layer { name: "accuracy" type: "Accuracy" bottom: "ip" bottom: "label"
  top: "accuracy" }
"""


@pytest.fixture(params=["lmdb", "list"])
def scored(request, tmp_path):
    """A net over 22 items (an LMDB or an image list) and its weights."""
    import kaffe
    if request.param == "lmdb":
        pytest.importorskip("lmdb", reason="lmdb not installed")
        source = write_lmdb(tmp_path / "db", 22)
    else:
        Image = pytest.importorskip("PIL.Image", reason="Pillow not "
                                                        "installed")
        rng = np.random.RandomState(1)
        lines = []
        for i in range(22):
            Image.fromarray(rng.randint(0, 256, (6, 6)).astype(np.uint8)
                            ).save(tmp_path / f"{i}.png")
            lines.append(f"{i}.png {i % 3}\n")
        source = tmp_path / "list.txt"
        source.write_text("".join(lines))
    net_path = tmp_path / "net.prototxt"
    net_path.write_text('name: "scored"\n' + DATA[request.param].format(
        source=source, root=tmp_path) + BODY)
    kaffe.set_random_seed(5)
    net = kaffe.Net(str(net_path), kaffe.TEST)
    net.save(str(tmp_path / "w.caffemodel"))
    del net
    return tmp_path


def messages(stderr):
    """The log's messages without glog's time/pid prefix."""
    return [re.sub(r"^\S+ \S+ +\d+ \S+\] ", "", line)
            for line in stderr.splitlines()]


def test_test_scores_equal_one_worker(scored, mpiexec):
    args = ["test", "--model", "net.prototxt", "--weights", "w.caffemodel",
            "--iterations", "7"]                 # 28 items: wraps, 7 odd
    one = run_kaffe(args, scored)
    two = run_kaffe(args, scored, n=2, mpiexec=mpiexec)
    assert one.returncode == 0 and two.returncode == 0, two.stderr
    assert "Worker 0 of 2" in two.stderr

    def scores(stderr):
        return [m for m in messages(stderr)
                if m.startswith(("Batch ", "Loss:", "accuracy =", "loss ="))]

    assert len(scores(one.stderr)) == 7 * 2 + 3
    assert scores(two.stderr) == scores(one.stderr)


def test_extract_features_equal_one_worker(scored, mpiexec):
    from kaffe.data.db import open_db

    def records(path):
        db = open_db(str(path), "lmdb")
        cursor = db.cursor()
        out = []
        while cursor.valid:
            out.append((cursor.key(), cursor.value()))
            cursor.next()
        cursor.close()
        db.close()
        return out

    for n, name in ((1, "one"), (2, "two")):
        result = run_kaffe(["extract_features", "w.caffemodel",
                            "net.prototxt", "ip,label",
                            f"{name}_ip,{name}_label", "5", "lmdb"],
                           scored, n=n, mpiexec=mpiexec)
        assert result.returncode == 0, result.stderr
        assert ("Worker 0 of 2" in result.stderr) == (n == 2)
    for blob in ("ip", "label"):
        one, two = records(scored / f"one_{blob}"), records(
            scored / f"two_{blob}")
        assert len(one) == 20
        assert two == one


@pytest.mark.parametrize("center_only", [False, True])
def test_classify_equal_one_worker(tmp_path, mpiexec, center_only):
    Image = pytest.importorskip("PIL.Image", reason="Pillow not installed")
    import kaffe
    rng = np.random.RandomState(2)
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(7):
        Image.fromarray(rng.randint(0, 256, (12, 12, 3)).astype(np.uint8)
                        ).save(folder / f"{i}.png")
    deploy = tmp_path / "deploy.prototxt"
    deploy.write_text(
        'name: "c"\nlayer { name: "data" type: "Input" top: "data"\n'
        '  input_param { shape { dim: 4 dim: 3 dim: 8 dim: 8 } } }\n'
        + BODY.split('layer { name: "loss"')[0] +
        'layer { name: "prob" type: "Softmax" bottom: "ip" top: "prob" }\n')
    kaffe.set_random_seed(6)
    net = kaffe.Net(str(deploy), kaffe.TEST)
    net.save(str(tmp_path / "w.caffemodel"))
    del net
    outputs = []
    for n in (1, 2):
        out = tmp_path / f"out{n}.npy"
        args = ["classify", "images", out.name, "--model_def", deploy.name,
                "--pretrained_model", "w.caffemodel", "--images_dim",
                "10,10", "--mean_file", "", "--ext", "png"]
        result = run_kaffe(args + (["--center_only"] if center_only else []),
                           tmp_path, n=n, mpiexec=mpiexec)
        assert result.returncode == 0, result.stderr
        assert ("Worker 0 of 2" in result.stderr) == (n == 2)
        outputs.append(np.load(out))
    assert outputs[0].shape == (7, 3)
    np.testing.assert_array_equal(outputs[1], outputs[0])
