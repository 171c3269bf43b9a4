"""``kaffe explain`` and ``kaffe draw`` on small nets written in the style of
the real fork nets (tests/viz/fork_nets/): a ShuffleNet unit, a DeepLab
Interp head, a SegNet pool/upsample pair, an SENet Axpy block and a CRNN
OCR head. Every expected number is worked out by hand from the forks'
rules in the comments."""
import json
from pathlib import Path

import pytest

from kaffe.tools import cli

NETS = Path(__file__).parent / "fork_nets"
SEGNET_SHAPES = ["--phase", "TRAIN", "--shape", "data=4,3,9,12",
                 "--shape", "label=4,1,9,12"]
CASES = {
    "shufflenet_unit": [],
    "deeplab_interp_head": [],
    "segnet_pool_upsample": SEGNET_SHAPES,
    "senet_axpy_block": [],
    "crnn_head": [],
}


def run(argv, capsys):
    status = cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def explained(name, capsys):
    status, out, err = run(["explain", str(NETS / f"{name}.prototxt"),
                            "--json"] + CASES[name], capsys)
    assert status == 0, err
    report = json.loads(out)
    return {row["name"]: row for row in report["layers"]}


def test_shufflenet_unit(capsys):
    rows = explained("shufflenet_unit", capsys)
    # 54 channels in 3 groups of 18: output 0, 1, 2 = input 0, 18, 36
    assert rows["shuffle1"]["top_shapes"] == [[1, 54, 28, 28]]
    assert "3 groups of 18 channels" in rows["shuffle1"]["formula"]
    assert "input 0, 18, 36" in rows["shuffle1"]["formula"]
    # depthwise 3×3 stride 2 pad 1: ⌊(28 + 2 − 3)/2⌋ + 1 = 14; 54 filters of
    # 1×3×3 = 486 weights; MACs 486 · 14 · 14 = 95,256
    dw = rows["resx1_conv2"]
    assert dw["top_shapes"] == [[1, 54, 14, 14]] and dw["params"] == 486
    assert dw["macs"] == 95256 and "depthwise" in dw["formula"]
    assert rows["resx1_concat"]["top_shapes"] == [[1, 240, 14, 14]]
    assert "min(max(x, 0), 6)" in rows["resx1_concat_relu"]["formula"]


def test_deeplab_interp_head(capsys):
    rows = explained("deeplab_interp_head", capsys)
    # zoom 8 on 9×9: 9 + (9 − 1)·7 = 65
    assert rows["fc8_interp"]["top_shapes"] == [[1, 21, 65, 65]]
    assert "9 + (9 − 1)·(8 − 1)" in rows["fc8_interp"]["formula"]
    # shrink 3 then zoom 2: (9 − 1)/3 + 1 = 3, then 3 + 2·1 = 5
    assert rows["conv1_pool"]["top_shapes"] == [[1, 16, 5, 5]]
    assert rows["conv1_up"]["top_shapes"] == [[1, 16, 65, 65]]
    assert "corners aligned" in rows["conv1_up"]["formula"]


def test_segnet_pool_upsample(capsys):
    rows = explained("segnet_pool_upsample", capsys)
    assert rows["data"]["type"] == "DenseImageData"
    # BN: scale and shift, one per channel each, in (1, C, 1, 1)
    assert rows["conv1_1_bn"]["param_shapes"] == [[1, 8, 1, 1]] * 2
    # ⌈(9 − 2)/2⌉ + 1 = 5, ⌈(12 − 2)/2⌉ + 1 = 6; back up: 5·2 − 1 = 9
    # (pad_out_h), 6·2 = 12
    assert rows["pool1"]["top_shapes"] == [[4, 8, 5, 6]] * 2
    up = rows["upsample1"]
    assert up["top_shapes"] == [[4, 8, 9, 12]]
    assert "5·2 − 1 = 9" in up["formula"] and "pool1_mask" in up["formula"]


def test_senet_axpy_block(capsys):
    rows = explained("senet_axpy_block", capsys)
    axpy = rows["conv2_1"]
    assert axpy["top_shapes"] == [[2, 32, 14, 14]]
    assert "2×32 scales" in axpy["formula"]
    # ceil_mode: false is FLOOR: ⌊(14 − 3)/2⌋ + 1 = 6 (CEIL would give 7)
    assert rows["pool_floor"]["top_shapes"] == [[2, 32, 6, 6]]
    assert "⌊(14 + 2·0 − 3)/2⌋ + 1 = 6" in rows["pool_floor"]["formula"]


def test_crnn_head(capsys):
    rows = explained("crnn_head", capsys)
    # (N, C, H, W) = (1, 16, 1, 35) → dims 3 2 0 1 → (35, 1, 1, 16)
    assert rows["pool5_ave_transpose"]["top_shapes"] == [[35, 1, 1, 16]]
    lstm = rows["lstm1"]
    assert lstm["top_shapes"] == [[35, 1, 12]]
    # W_i 48×16, W_h 48×12, b 48: 768 + 576 + 48 = 1,392
    assert lstm["params"] == 1392 and "W_h (48×12)" in lstm["formula"]
    # 35 steps of 48×16 input products, 34 of 48×12 recurrent ones
    assert lstm["macs"] == 35 * 48 * 16 + 34 * 48 * 12
    assert "34 − i" in rows["lstm1-reverse1"]["formula"]
    assert rows["result"]["top_shapes"] == [[1, 35, 1, 1]]
    assert "best of 37 classes at each of 35 steps" in \
        rows["result"]["formula"]


@pytest.mark.parametrize("name, edge", [
    ("shufflenet_unit",
     '"shuffle1_ShuffleChannel" -> "shuffle1_blob" [label="1x54x28x28"];'),
    ("deeplab_interp_head",
     '"fc8_interp_Interp" -> "fc8_interp_blob" [label="1x21x65x65"];'),
    ("segnet_pool_upsample",
     '"upsample1_Upsample" -> "pool1_D_blob" [label="4x8x9x12"];'),
    ("senet_axpy_block",
     '"conv2_1_Axpy" -> "conv2_1_blob" [label="2x32x14x14"];'),
    ("crnn_head", '"lstm1_Lstm" -> "lstm1_blob" [label="35x1x12"];')])
def test_draw(name, edge, tmp_path, capsys):
    out_path = tmp_path / f"{name}.dot"
    status, _, err = run(["draw", str(NETS / f"{name}.prototxt"),
                          str(out_path)] + CASES[name], capsys)
    assert status == 0, err
    assert edge in out_path.read_text()


@pytest.mark.parametrize("name", sorted(CASES))
def test_viz(name, tmp_path, capsys):
    flags = [f for f in CASES[name] if f not in ("--phase", "TRAIN")]
    out_path = tmp_path / f"{name}.html"
    status, out, err = run(["viz", str(NETS / f"{name}.prototxt"), "-o",
                            str(out_path)] + flags, capsys)
    assert status == 0, err
    page = out_path.read_text()
    kinds = {"shufflenet_unit": "ShuffleChannel", "deeplab_interp_head":
             "Interp", "segnet_pool_upsample": "Upsample",
             "senet_axpy_block": "Axpy", "crnn_head": "CTCGreedyDecoder"}
    assert kinds[name] in page
