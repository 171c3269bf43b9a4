"""examples/ssd_face: OpenCV's res10 SSD face detector on the real photo,
run by the pycaffe-style example and by ``kaffe detect``; the detections
equal OpenCV's on the same input blob."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from kaffe.tools.cli import main as kaffe_main

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "ssd_face" / "detect_faces.py"
MODEL = REPO / ".." / "shared" / "models" / "res10_ssd"
DEPLOY = MODEL / "deploy.prototxt"
WEIGHTS = MODEL / "res10_300x300_ssd_iter_140000.caffemodel"
PHOTO = REPO / ".." / "shared" / "data" / "images" / "faces.jpg"

pytest.importorskip("PIL", reason="the example needs Pillow (kaffe[data])")
pytestmark = pytest.mark.skipif(
    not (DEPLOY.exists() and WEIGHTS.exists() and PHOTO.exists()),
    reason="../shared (res10_ssd model, faces.jpg) is not here (a fresh "
           "clone)")


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("detect_faces", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run(example, tmp_path_factory):
    output = tmp_path_factory.mktemp("ssd") / "boxes.jpg"
    faces = example.main([str(PHOTO), "-o", str(output)])
    return faces, output


def test_example_finds_the_faces_and_draws_them(run):
    from PIL import Image
    faces, output = run
    assert len(faces) == 5                    # five people in faces.jpg
    assert all(score > 0.8 for score, *_ in faces)
    with Image.open(output) as picture:
        assert picture.size == (1920, 1080)


def test_detections_equal_opencvs_on_the_same_input(example):
    cv2 = pytest.importorskip("cv2", reason="opencv-python-headless not "
                                            "installed")
    net = example.load_net()
    image = example.caffe.io.load_image(str(PHOTO))
    blob = example.preprocess(net, image)[None]
    net.blobs["data"].data[...] = blob
    ours = net.forward()["detection_out"].reshape(-1, 7)
    reference = cv2.dnn.readNetFromCaffe(str(DEPLOY), str(WEIGHTS))
    reference.setInput(blob.astype(np.float32))
    theirs = reference.forward().reshape(-1, 7)
    ours, theirs = ours[ours[:, 2] > 0.5], theirs[theirs[:, 2] > 0.5]
    assert len(ours) == len(theirs) == 5
    np.testing.assert_allclose(ours[:, 3:], theirs[:, 3:], atol=1e-4)


def test_kaffe_detect_prints_and_draws(tmp_path, capsys, run):
    output = tmp_path / "cli.png"
    status = kaffe_main(["detect", str(DEPLOY), str(WEIGHTS), str(PHOTO),
                         "--mean", "104,177,123", "--labels",
                         "background,face", "-o", str(output)])
    assert status == 0
    lines = capsys.readouterr().out.strip().splitlines()
    faces, _ = run
    assert len(lines) == len(faces)
    for line, (score, x1, y1, x2, y2) in zip(lines, faces):
        name, printed_score, *box = line.split()
        assert name == "face"
        assert float(printed_score) == pytest.approx(score, abs=1e-4)
        np.testing.assert_allclose([float(v) for v in box], [x1, y1, x2, y2],
                                   atol=0.06)
    assert output.stat().st_size > 0


def test_kaffe_detect_errors(tmp_path, capsys):
    status = kaffe_main(["detect", str(DEPLOY), str(WEIGHTS), str(PHOTO),
                         "--mean", "1,2"])
    assert status == 2
    assert "--mean" in capsys.readouterr().err


def test_explain_draw_and_viz_read_the_fork_net(tmp_path, capsys):
    assert kaffe_main(["explain", str(DEPLOY)]) == 0
    text = capsys.readouterr().out
    assert ("conv4_3_norm_mbox_priorbox: 1 min_size × 3 ratios (1, 2, 0.5) "
            "+ 1 max_size = 4 priors per cell; 38×38 cells × 4 = 5776 "
            "boxes") in text
    assert "score > 0.01, best 400, NMS IoU > 0.45 suppressed" in text
    # every fork layer publishes its receptive-field rule
    assert "receptive fields stop" not in text
    dot = tmp_path / "res10.dot"
    assert kaffe_main(["draw", str(DEPLOY), str(dot)]) == 0
    assert "DetectionOutput" in dot.read_text()
    report = tmp_path / "res10.html"
    assert kaffe_main(["viz", str(DEPLOY), "-o", str(report)]) == 0
    assert "detection_out" in report.read_text()


def test_kaffe_detect_checks_the_output_name_first(tmp_path, capsys):
    status = kaffe_main(["detect", str(DEPLOY), str(WEIGHTS), str(PHOTO),
                         "-o", str(tmp_path / "boxes.unknown")])
    assert status == 2
    err = capsys.readouterr().err
    assert "--output" in err and "boxes.unknown" in err
