"""kaffe viz's report model and page, without a browser.

Expected numbers (tile counts, receptive-field rectangles, statistics) are
worked out by hand from Caffe's rules in each test, never copied from the
report's own output.
"""
import io
import math
import os
import re
import zlib

import numpy as np
import pytest

import kaffe
from kaffe.core.errors import KaffeError
from kaffe.tools.cli import main
from kaffe.viz import report as R
from kaffe.viz.render import render

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
LENET = os.path.join(REPO, "examples", "mnist", "lenet.prototxt")
NSFW = os.path.join(REPO, "..", "shared", "models", "open_nsfw")
NSFW_NET = os.path.join(NSFW, "deploy.prototxt")
NSFW_WEIGHTS = os.path.join(NSFW, "resnet_50_1by2_nsfw.caffemodel")


def write(tmp_path, text, name="net.prototxt"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def input_layer(shape, name="data"):
    dims = " ".join(f"dim: {d}" for d in shape)
    return (f'layer {{ name: "{name}" type: "Input" top: "{name}" '
            f'input_param {{ shape {{ {dims} }} }} }}\n')


def layer(report, name):
    return next(v for v in report.layers if v.name == name)


def decode_png(data):
    """(indices or pixels as an array, palette or None) of our PNGs: 8-bit,
    filter 0 or 1 (Sub) rows, as encode_png writes them."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        chunks.setdefault(kind, b"")
        chunks[kind] += data[pos + 8:pos + 8 + n]
        assert zlib.crc32(data[pos + 4:pos + 8 + n]) == int.from_bytes(
            data[pos + 8 + n:pos + 12 + n], "big")
        pos += 12 + n
    w, h = (int.from_bytes(chunks[b"IHDR"][i:i + 4], "big") for i in (0, 4))
    depth, colour = chunks[b"IHDR"][8], chunks[b"IHDR"][9]
    assert depth == 8
    channels = {0: 1, 2: 3, 3: 1}[colour]
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8)
    rows = raw.reshape(h, 1 + w * channels)
    out = rows[:, 1:].copy()
    for y in range(h):
        if rows[y, 0] == 1:
            for x in range(channels, w * channels):
                out[y, x] = (int(out[y, x]) + int(out[y, x - channels])) % 256
        else:
            assert rows[y, 0] == 0
    pixels = out.reshape(h, w, channels) if channels == 3 else out
    palette = chunks.get(b"PLTE")
    return pixels, (np.frombuffer(palette, np.uint8).reshape(-1, 3)
                    if palette else None)


@pytest.fixture(scope="module")
def lenet():
    return R.build_report(LENET)


# -- per-layer content --------------------------------------------------------
def test_lenet_layers_and_explain_rows(lenet):
    names = [v.name for v in lenet.layers if not v.hidden]
    assert names == ["data", "conv1", "pool1", "conv2", "pool2", "ip1",
                     "relu1", "ip2", "prob"]
    conv2 = layer(lenet, "conv2")
    assert conv2.type == "Convolution" and conv2.family == "conv"
    assert conv2.summary == "5×5 · 50"
    assert conv2.row.top_shapes == [(64, 50, 8, 8)]      # the net's own N
    assert conv2.row.formula.startswith("conv2: 50 filters, each 20×5×5")
    assert [p.name for p in conv2.params] == ["weights", "bias"]
    assert conv2.params[0].shape == (50, 20, 5, 5)
    # conv2 reads pool1's output, which layer 2 wrote.
    assert conv2.bottom_sources == [(2, 0)]
    assert conv2.window.kind == "window" and conv2.window.channels == "all"
    assert conv2.window.kernel == (5, 5) and conv2.window.stride == (1, 1)
    # relu1 is in place: its maps are ip1's values after the ReLU.
    ip1, relu1 = layer(lenet, "ip1"), layer(lenet, "relu1")
    assert relu1.bottom_sources == [(5, 0)]
    assert relu1.tops[0].maps[0].stats.min == 0.0
    assert ip1.tops[0].maps[0].stats.min < 0


def test_conv2_filter_grid_is_50_rows_of_20_tiles(lenet):
    grid = layer(lenet, "conv2").filters
    assert grid.kind == "grid"
    assert (grid.rows, grid.cols, grid.tile) == (50, 20, (5, 5))
    assert (grid.shown_rows, grid.shown_cols) == (50, 20)
    assert grid.row_word == "filter" and grid.col_word == "input channel"
    # 50 rows of 5-pixel tiles with 1-pixel gaps, 20 columns likewise.
    assert (grid.picture.height, grid.picture.width) == (50 * 6 - 1,
                                                         20 * 6 - 1)
    pixels, palette = decode_png(grid.picture.png)
    assert pixels.shape == (299, 119) and len(palette) == 256
    assert (pixels[5, :] == R.GAP_INDEX).all()        # the gap rows
    assert (pixels[:, 11] == R.GAP_INDEX).all()
    assert layer(lenet, "conv2").params[0].stats.count == 50 * 20 * 25


def test_filter_tile_is_that_filters_slice():
    net = kaffe.Net(LENET, kaffe.TEST)
    report = R.report_from_net(net)
    grid = layer(report, "conv2").filters
    weights = net.params["conv2"][0].data
    pixels, _ = decode_png(grid.picture.png)
    # Tile (row 7, column 13) holds filter 7's slice for input channel 13.
    tile = pixels[7 * 6:7 * 6 + 5, 13 * 6:13 * 6 + 5]
    assert (tile == R.quantize(weights[7, 13], grid.scale)).all()


def test_filter_tiles_hold_the_weights():
    weights = np.zeros((2, 3, 2, 2))
    weights[1, 2] = [[0.5, -0.5], [0.125, 0]]
    weights[0, 0, 0, 0] = 0.5
    grid = R.filter_grid(weights)
    pixels, _ = decode_png(grid.picture.png)
    tile = pixels[3:5, 6:8]                  # row 1, column 2
    # scale = 99.9th percentile of |w| = 0.5; colour ∝ √(|w|/0.5).
    assert tile[0, 0] == R.ZERO_INDEX + R.LEVELS
    assert tile[0, 1] == R.ZERO_INDEX - R.LEVELS
    assert tile[1, 0] == R.ZERO_INDEX + round(0.5 * R.LEVELS)   # √(1/4)
    assert tile[1, 1] == R.ZERO_INDEX
    assert R.value_of_index(int(tile[1, 0]), 0.5) == pytest.approx(0.125,
                                                                  rel=0.01)


def test_single_channel_filters_wrap_into_a_grid(lenet):
    grid = layer(lenet, "conv1").filters
    assert (grid.rows, grid.cols) == (20, 1)
    assert grid.wrap == math.ceil(math.sqrt(40))        # 7 filters a line
    assert grid.picture.width == 7 * 6 - 1
    assert grid.picture.height == math.ceil(20 / 7) * 6 - 1


def test_inner_product_weights_heat_map(lenet):
    ip1 = layer(lenet, "ip1").filters
    assert ip1.kind == "heatmap" and ip1.param_shape == (500, 800)
    # 500 rows > 256: 2 rows a pixel; 800 columns > 512: 2 columns a pixel.
    assert (ip1.factor, ip1.col_factor) == (2, 2)
    assert (ip1.picture.height, ip1.picture.width) == (250, 400)
    assert "2×2 block" in ip1.notes[0]
    ip2 = layer(lenet, "ip2").filters
    assert (ip2.picture.height, ip2.picture.width) == (10, 500)
    assert ip2.notes == []


GROUPED = input_layer((1, 6, 9, 9)) + """
layer { name: "g" type: "Convolution" bottom: "data" top: "g"
  convolution_param { num_output: 8 kernel_size: 3 group: 2
    weight_filler { type: "gaussian" std: 1 } } }
layer { name: "dw" type: "Convolution" bottom: "g" top: "dw"
  convolution_param { num_output: 8 kernel_size: 3 group: 8
    weight_filler { type: "gaussian" std: 1 } } }
layer { name: "up" type: "Deconvolution" bottom: "dw" top: "up"
  convolution_param { num_output: 4 kernel_size: 2 stride: 2 group: 2
    weight_filler { type: "gaussian" std: 1 } } }
"""


def test_grouped_conv_tiles_are_labelled_by_group(tmp_path):
    report = R.build_report(write(tmp_path, GROUPED))
    g = layer(report, "g").filters
    # 8 filters of 6/2 = 3 channels; filters 0-3 read channels 0-2,
    # filters 4-7 channels 3-5.
    assert (g.rows, g.cols) == (8, 3)
    assert [(s.index, s.rows, s.channels) for s in g.groups] == [
        (0, (0, 4), (0, 3)), (1, (4, 8), (3, 6))]
    # One separator row of group_gap + gap pixels between the groups.
    assert g.picture.height == 8 * 4 - 1 + g.group_gap
    pixels, _ = decode_png(g.picture.png)
    assert (pixels[15:15 + g.gap + g.group_gap] == R.GROUP_INDEX).all()
    window = layer(report, "g").window
    assert window.channels == "group" and window.group_channels == 3
    assert window.out_per_group == 4
    page = render(report)
    assert "<b>group 1</b>: filters 4–7 read input channels 3–5" in page
    assert "group 1 · ch 3–5" in page          # the label beside the rows
    # Depthwise: one tile a filter, filter i reads channel i.
    dw = layer(report, "dw").filters
    assert dw.cols == 1 and len(dw.groups) == 8
    assert dw.groups[5].channels == (5, 6)
    # Deconvolution: rows are its 8 input channels, each stamping
    # 4/2 = 2 outputs of its group.
    up = layer(report, "up").filters
    assert (up.rows, up.cols) == (8, 2) and up.row_word == "input channel"
    assert up.groups[1].rows == (4, 8) and up.groups[1].channels == (2, 4)


def test_first_layer_colour_filters_swap_bgr_back(tmp_path):
    net = input_layer((1, 3, 8, 8)) + """
layer { name: "c" type: "Convolution" bottom: "data" top: "c"
  convolution_param { num_output: 2 kernel_size: 1
    weight_filler { type: "constant" value: 0 } } }
"""
    path = write(tmp_path, net)
    built = kaffe.Net(path, kaffe.TEST)
    weights = built.params["c"][0].data
    weights[0, :, 0, 0] = [1, 0, -1]        # net channels B, G, R
    grid = R.colour_filters(np.array(weights), channel_swap=(2, 1, 0))
    assert grid.kind == "colour"
    assert grid.channel_order == "R, G, B = net channels 2, 1, 0"
    pixels, _ = decode_png(grid.picture.png)
    # R = net channel 2 = −1 → 0; G = 0 → grey 128; B = net channel 0 = 1.
    assert tuple(pixels[0, 0]) == (0, 128, 255)
    # Without a swap the net's channels are R, G, B.
    pixels, _ = decode_png(R.colour_filters(np.array(weights)).picture.png)
    assert tuple(pixels[0, 0]) == (255, 128, 0)
    report = R.build_report(path, preprocess=R.Preprocess(
        channel_swap=(2, 1, 0)))
    assert layer(report, "c").filters.kind == "colour"
    assert any("--channel-swap 2,1,0" in n for n in report.notes)


# -- statistics on a known input ----------------------------------------------
def test_stats_and_histogram_on_a_known_input(tmp_path):
    net = kaffe.Net(write(tmp_path, input_layer((1, 1, 2, 4)) + """
layer { name: "relu" type: "ReLU" bottom: "data" top: "r" }
"""), kaffe.TEST)
    values = np.array([[[-2, -1, 0, 1], [2, 3, np.nan, np.inf]]],
                      np.float32)
    report = R.report_from_net(net, arrays=[{"data": values}])
    data = layer(report, "data").tops[0].maps[0]
    s = data.stats
    finite = [-2, -1, 0, 1, 2, 3]
    assert s.count == 8 and s.nan_count == 1 and s.inf_count == 1
    assert (s.min, s.max) == (-2, 3)
    assert s.mean == pytest.approx(np.mean(finite))
    assert s.std == pytest.approx(np.std(finite))
    assert s.zero_fraction == pytest.approx(1 / 8)
    assert sum(data.histogram.counts) == 6
    relu = layer(report, "relu").tops[0].maps[0]
    # max(0, x): 0 0 0 1 2 3 NaN Inf → zeros 3/8 > 20 %: not binned.
    assert relu.stats.zero_fraction == pytest.approx(3 / 8)
    assert relu.histogram.zeros_left_out == 3
    assert sum(relu.histogram.counts) == 3
    assert relu.histogram.edges[0] == 1 and relu.histogram.edges[-1] == 3
    # NaN and Inf are drawn in the NaN colour.
    pixels, _ = decode_png(data.pages[0].png)
    assert pixels[1, 2] == R.NAN_INDEX and pixels[1, 3] == R.NAN_INDEX
    assert pixels[0, 2] == R.ZERO_INDEX
    page = render(report)
    assert "⚠ 1 NaN and 1 Inf values" in page
    assert report.runs[0].notes == [
        "NaN or Inf first appear in the output of layer 'data' (Input): 1 "
        "NaN, 1 Inf in 'data'. Everything after it inherits them."]


def test_vector_outputs_and_largest_values(lenet):
    prob = layer(lenet, "prob").tops[0].maps[0]
    assert prob.kind == "vector" and prob.channels == 10
    assert [i for i, _ in prob.values] == list(range(10))   # all, in order
    assert sum(v for _, v in prob.values) == pytest.approx(1, abs=1e-5)
    ip1 = layer(lenet, "ip1").tops[0].maps[0]
    assert ip1.values_are_top and len(ip1.values) == 5
    values = [v for _, v in ip1.values]
    assert values == sorted(values, reverse=True)
    assert lenet.runs[0].outputs[0][0] == "prob"


# -- receptive fields ---------------------------------------------------------
def test_receptive_field_rectangles_by_hand(lenet):
    # conv1 (5×5): value (y, x) sees input rows y … y+4.
    conv1 = layer(lenet, "conv1").tops[0].field
    assert R.field_rect(conv1, (3, 3), (4, 4)) == ((3, 4), (7, 8))
    # pool1 (2×2 /2) of conv1: rows 2y … 2y+1 of conv1 → input 2y … 2y+5.
    # conv2 (5×5) of pool1: pool1 rows y … y+4 → input 2y … 2(y+4)+5 =
    # 2y … 2y+13; for (3, 4): rows 6 … 19, columns 8 … 21.
    conv2 = layer(lenet, "conv2").tops[0].field
    assert conv2.size == (14, 14) and conv2.jump == (2, 2)
    assert conv2.start == (0, 0)
    assert R.field_rect(conv2, (3, 3), (4, 4)) == ((6, 8), (19, 21))
    # pool2 (2×2 /2) of conv2: (1, 2) covers conv2 rows 2-3, columns 4-5
    # → input rows 4 … 19, columns 8 … 23.
    pool2 = layer(lenet, "pool2").tops[0].field
    assert R.field_rect(pool2, (1, 1), (2, 2)) == ((4, 8), (19, 23))
    # A downsampled pixel standing for conv2 rows 2-3: the union.
    assert R.field_rect(conv2, (2, 3), (4, 5)) == ((4, 8), (19, 23))
    # After ip1 the layout is gone: the whole input.
    ip1 = layer(lenet, "ip1").tops[0].field
    assert ip1.jump is None and ip1.whole


def test_receptive_field_with_padding(tmp_path):
    report = R.build_report(write(tmp_path, input_layer((1, 1, 10, 10)) + """
layer { name: "c" type: "Convolution" bottom: "data" top: "c"
  convolution_param { num_output: 1 kernel_size: 3 pad: 1 } }
layer { name: "p" type: "Pooling" bottom: "c" top: "p"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "e" type: "ReLU" bottom: "p" top: "e" }
"""))
    # c (3×3, pad 1): value (0, 0) sees input rows −1 … 1.
    assert R.field_rect(layer(report, "c").tops[0].field, (0, 0),
                        (0, 0)) == ((-1, -1), (1, 1))
    # p (3×3 /2, pad 1): value y covers c rows 2y−1 … 2y+1, so input rows
    # 2y−2 … 2y+2; for y = 2: 2 … 6.
    p = layer(report, "p").tops[0].field
    assert p.size == (5, 5) and p.jump == (2, 2)
    assert R.field_rect(p, (2, 2), (0, 0)) == ((2, -2), (6, 2))
    # An element-wise layer keeps the field.
    assert layer(report, "e").tops[0].field.start == p.start
    w = layer(report, "p").window
    assert (w.kind, w.channels, w.pad) == ("window", "same", (1, 1))


# -- size budget and its notes ------------------------------------------------
BIG = input_layer((1, 3, 128, 128)) + """
layer { name: "wide" type: "Convolution" bottom: "data" top: "wide"
  convolution_param { num_output: 100 kernel_size: 3 pad: 1
    weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "thick" type: "Convolution" bottom: "wide" top: "thick"
  convolution_param { num_output: 100 kernel_size: 3 stride: 16
    weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "fc" type: "InnerProduct" bottom: "thick" top: "fc"
  inner_product_param { num_output: 700
    weight_filler { type: "gaussian" std: 0.1 } } }
"""


def test_size_budget_downsamples_and_says_so(tmp_path):
    budget = R.Budget(map_pixels=60_000)
    report = R.build_report(write(tmp_path, BIG), budget=budget)
    wide = layer(report, "wide").tops[0].maps[0]
    # 128×128 maps: ×2 to 64 (max_map_side); not every channel fits, so
    # more, while tiles stay at least min_map_side 28: ×3 → 43, ×4 → 32
    # (×5 → 26 would be too small).
    assert wide.map_size == (128, 128) and wide.factor == 4
    assert wide.tile == (32, 32)
    assert 8 <= wide.shown < 100
    assert wide.notes[0].startswith("Downsampled ×4: each pixel is the mean "
                                    "of a 4×4 block (128×128 → 32×32)")
    assert wide.notes[1] == f"Showing channels 0–{wide.shown - 1} of 100 " \
                            "(size budget)."
    assert len(wide.pages) == math.ceil(wide.shown / 64)
    # The other tops fit whole: fair shares give wide what they leave.
    thick = layer(report, "thick").tops[0].maps[0]
    assert (thick.shown, thick.factor, thick.notes) == (100, 1, [])
    total = sum(m.shown * (m.tile[0] + 1) * (m.tile[1] + 1)
                for v in report.layers for t in v.tops for m in t.maps
                if m.kind == "maps")
    assert total <= budget.map_pixels
    # Filter grids are cut to budget.filter_pixels: 64 columns of 3×3
    # tiles (4×4 with the gap) → 65536 / (64·16) = 64 rows.
    grid = layer(report, "thick").filters
    assert (grid.shown_rows, grid.shown_cols) == (64, 64)
    assert grid.notes == ["Showing filters 0–63 of 100 and input channels "
                          "0–63 of 100 (size budget)."]
    fc = layer(report, "fc").filters
    # 700 outputs × (100·8·8 = 6400) inputs, at most 256 × 512 pixels:
    # ⌈700/256⌉ = 3 rows and ⌈6400/512⌉ = 13 columns a pixel.
    assert fc.param_shape == (700, 6400)
    assert (fc.factor, fc.col_factor) == (3, 13)
    assert fc.notes[0].startswith("Downsampled: each pixel is the mean of "
                                  "a 3×13 block")
    page = render(report)
    for note in wide.notes + grid.notes + fc.notes:
        assert _html_text(note) in page


def _html_text(text):
    import html
    return html.escape(text, quote=True)


@pytest.mark.skipif(not os.path.exists(NSFW_WEIGHTS),
                    reason="open_nsfw model not in ../shared/models")
def test_open_nsfw_page_stays_light():
    from kaffe.tools.viz import budget_for
    report = R.build_report(NSFW_NET, weights=NSFW_WEIGHTS,
                            preprocess=R.Preprocess(
                                mean=np.array([104, 117, 123], np.float32),
                                raw_scale=255, channel_swap=(2, 1, 0)),
                            budget=budget_for(12))
    page = render(report)
    assert len(page.encode()) < 20e6
    shown = [v for v in report.layers if not v.hidden]
    assert len(shown) > 200 and len(report.graph.nodes) > 50
    assert layer(report, "conv_1").filters.kind == "colour"
    conv = layer(report, "conv_1").tops[0].maps[0]
    assert conv.factor > 1 and "Downsampled" in conv.notes[0]
    assert report.runs[0].outputs[0][0] == "prob"


# -- the page -----------------------------------------------------------------
def test_page_has_no_external_urls(lenet):
    page = render(lenet)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""",
                         page, re.I)
    assert not re.search(r"https?://", page)
    assert not re.search(r"@import|url\(\s*['\"]?(?:https?:)?//", page)
    # Every picture is embedded.
    for src in re.findall(r'(?:src|data-src)="([^"]*)"', page):
        assert src.startswith("data:image/png;base64,")
    assert page.count("<script") == 2        # the JSON and the script


def test_synthetic_input_is_said(lenet):
    run = lenet.runs[0]
    assert run.synthetic and run.label == "synthetic"
    assert run.notes[0].startswith("Synthetic input: no --image was given")
    page = render(lenet)
    assert "Synthetic input" in page
    assert "No --weights" in page
    # Deterministic: the same pattern twice.
    again = R.build_report(LENET)
    assert layer(again, "data").tops[0].maps[0].pages[0].png == \
        layer(lenet, "data").tops[0].maps[0].pages[0].png


def test_several_images_give_a_selector(tmp_path):
    Image = pytest.importorskip(
        "PIL.Image", reason="reading --image files needs Pillow "
        "(pip install kaffe[data])")
    paths = []
    for i, colour in enumerate((0, 255)):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(np.full((40, 30), colour, np.uint8)).save(path)
        paths.append(str(path))
    report = R.build_report(LENET, images=paths)
    assert [r.label for r in report.runs] == ["img0.png", "img1.png"]
    assert not report.runs[0].synthetic
    assert "is 30×40; resized to 28×28" in report.runs[0].notes[0]
    assert len(layer(report, "conv1").tops[0].maps) == 2
    data = [layer(report, "data").tops[0].maps[r].stats for r in (0, 1)]
    assert (data[0].max, data[1].min) == (0, 1)
    page = render(report)
    assert page.count('class="run-btn') == 2


def test_encode_png_round_trip():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert (decode_png(R.encode_png(rgb))[0] == rgb).all()
    grey = rng.integers(0, 256, (4, 9), dtype=np.uint8)
    assert (decode_png(R.encode_png(grey))[0] == grey).all()
    codes = rng.integers(0, 256, (3, 3), dtype=np.uint8)
    pixels, palette = decode_png(R.encode_png(codes, R.palette()))
    assert (pixels == codes).all() and tuple(palette[R.ZERO_INDEX]) == (
        255, 255, 255)
    pil = pytest.importorskip("PIL.Image")
    image = pil.open(io.BytesIO(R.encode_png(rgb)))
    assert (np.asarray(image) == rgb).all()


def test_graph_groups_in_place_layers(lenet):
    nodes = [n for n in lenet.graph.nodes if not n.dummy]
    names = [[lenet.layers[i].name for i in n.layers] for n in nodes]
    assert ["ip1", "relu1"] in names and len(nodes) == 8
    assert len(lenet.graph.edges) == 7
    # A chain: every node under the previous one.
    ys = [n.y for n in nodes]
    assert ys == sorted(ys)
    assert len({n.x for n in nodes}) == 1


def test_graph_skip_connection_runs_beside_the_chain(tmp_path):
    report = R.build_report(write(tmp_path, input_layer((1, 2, 6, 6)) + """
layer { name: "a" type: "Convolution" bottom: "data" top: "a"
  convolution_param { num_output: 2 kernel_size: 1 } }
layer { name: "b" type: "Convolution" bottom: "a" top: "b"
  convolution_param { num_output: 2 kernel_size: 1 } }
layer { name: "c" type: "Convolution" bottom: "b" top: "c"
  convolution_param { num_output: 2 kernel_size: 1 } }
layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "c" top: "sum" }
"""))
    nodes = {report.layers[n.layers[0]].name: n for n in report.graph.nodes
             if not n.dummy}
    # a → b → c → sum straight down; a → sum bends through dummies.
    assert nodes["b"].x == nodes["c"].x == nodes["sum"].x == nodes["a"].x
    skip = next(e for e in report.graph.edges if e.blob == "a" and
                e.target == nodes["sum"].id)
    assert len(skip.points) == 2 + 2 * 2       # two dummy rows
    assert all(x > nodes["a"].x + R.NODE_WIDTH / 2 for x, _ in
               skip.points[1:-1])


# -- the command --------------------------------------------------------------
def test_cli_writes_the_page(tmp_path, capsys):
    out = tmp_path / "lenet.html"
    assert main(["viz", LENET, "-o", str(out)]) == 0
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "conv2" in page
    assert "Wrote" in capsys.readouterr().out
    assert os.stat(out).st_mode & 0o044          # readable for sharing


@pytest.mark.parametrize("args, message", [
    (["--image", "/nonexistent.png"], "--image file '/nonexistent.png' not "
                                      "found"),
    (["--channel-swap", "2,1,0"], "--channel-swap must be a permutation"),
    (["--mean", "nothing-here"], "--mean is neither numbers nor an existing "
                                 "file"),
    (["--max-mb", "0"], "--max-mb must be positive"),
    (["--shape", "nope=1,1,28,28"], "names blob 'nope'"),
])
def test_cli_errors_exit_2_without_traceback(tmp_path, capsys, args,
                                             message):
    assert main(["viz", LENET, "-o", str(tmp_path / "x.html")] + args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x.html").exists()


def test_cli_refuses_a_missing_output_folder(tmp_path, capsys):
    assert main(["viz", LENET, "-o", str(tmp_path / "no" / "x.html")]) == 2
    assert "--output names a folder that does not exist" in \
        capsys.readouterr().err


def test_images_need_an_image_input(tmp_path):
    path = write(tmp_path, input_layer((1, 5)) + """
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
  inner_product_param { num_output: 2 } }
""")
    with pytest.raises(KaffeError, match="needs a net input of shape"):
        R.build_report(path, images=[LENET])
    report = R.build_report(path)             # no image: noise, and a note
    assert report.runs[0].synthetic and report.image_input is None
