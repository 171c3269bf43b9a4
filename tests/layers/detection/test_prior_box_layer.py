"""PriorBox (SSD fork): box counts, a loop reference written from the fork's
prior_box_layer.cpp, explicit image size and steps, integer truncation of
the sizes, clipping, variances, zero gradients, errors."""
import math
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError
from kaffe.testing.gradient import check_layer_error, setup_layer

check_error = partial(check_layer_error, layer="prior")


def prior_text(body):
    return f'name: "prior" type: "PriorBox" prior_box_param {{ {body} }}'


def reference(layer_h, layer_w, img_h, img_w, step_h, step_w, offset,
              min_sizes, max_sizes, ratios, flip, clip, variances):
    """The fork's loops, one coordinate at a time."""
    ars = [1.0]
    for ar in ratios:
        if all(abs(ar - a) >= 1e-6 for a in ars):
            ars.append(ar)
            if flip:
                ars.append(1.0 / ar)
    boxes = []
    for h in range(layer_h):
        for w in range(layer_w):
            cx, cy = (w + offset) * step_w, (h + offset) * step_h
            for s, min_size in enumerate(min_sizes):
                size = int(min_size)
                shapes = [(size, size)]
                if max_sizes:
                    side = math.sqrt(size * int(max_sizes[s]))
                    shapes.append((side, side))
                for ar in ars:
                    if abs(ar - 1.0) < 1e-6:
                        continue
                    shapes.append((size * math.sqrt(ar), size / math.sqrt(ar)))
                for bw, bh in shapes:
                    boxes += [(cx - bw / 2) / img_w, (cy - bh / 2) / img_h,
                              (cx + bw / 2) / img_w, (cy + bh / 2) / img_h]
    boxes = np.array(boxes)
    if clip:
        boxes = np.clip(boxes, 0, 1)
    var = np.resize(np.array(variances or [0.1]), boxes.size)
    return np.stack([boxes, var])[None]


CASES = {
    # SSD300's conv4_3 head: 4 priors per cell.
    "ssd": ("min_size: 30 max_size: 60 aspect_ratio: 2 flip: true "
            "variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 "
            "step: 8 offset: 0.5",
            (5, 6), (40, 48),
            dict(img_h=40, img_w=48, step_h=8, step_w=8, offset=0.5,
                 min_sizes=[30], max_sizes=[60], ratios=[2], flip=True,
                 clip=False, variances=[0.1, 0.1, 0.2, 0.2])),
    # Steps from the image, two min sizes without max, a repeated ratio,
    # no flip, clipped, one variance.
    "default_steps": ("min_size: 8 min_size: 16 aspect_ratio: 2 "
                      "aspect_ratio: 2.0000001 aspect_ratio: 3 flip: false "
                      "clip: true variance: 0.2",
                      (4, 7), (30, 50),
                      dict(img_h=30, img_w=50, step_h=7.5, step_w=50 / 7,
                           offset=0.5, min_sizes=[8, 16], max_sizes=[],
                           ratios=[2, 3], flip=False, clip=True,
                           variances=[0.2])),
    # Explicit image size and per-axis steps; fractional sizes truncated;
    # the default variance.
    "explicit": ("min_size: 12.7 max_size: 30.2 img_h: 60 img_w: 80 "
                 "step_h: 10 step_w: 12 offset: 0.25",
                 (3, 5), (7, 9),
                 dict(img_h=60, img_w=80, step_h=10, step_w=12, offset=0.25,
                      min_sizes=[12.7], max_sizes=[30.2], ratios=[],
                      flip=True, clip=False, variances=[])),
}


@pytest.mark.parametrize("key", sorted(CASES))
def test_forward_matches_the_forks_loops(key):
    body, (fh, fw), (ih, iw), args = CASES[key]
    layer, _, top = setup_layer(prior_text(body),
                                [np.zeros((1, 2, fh, fw)),
                                 np.zeros((1, 3, ih, iw))],
                                dtype=np.float32)
    expected = reference(fh, fw, **args)
    assert top[0].shape == expected.shape
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("body, per_cell", [
    ("min_size: 30", 1), ("min_size: 30 max_size: 60", 2),
    ("min_size: 30 max_size: 60 aspect_ratio: 2", 4),
    ("min_size: 30 max_size: 60 aspect_ratio: 2 aspect_ratio: 3", 6),
    ("min_size: 30 aspect_ratio: 2 flip: false", 2),
    ("min_size: 10 min_size: 20 max_size: 15 max_size: 30 aspect_ratio: 2",
     8)])
def test_priors_per_cell(body, per_cell):
    layer, _, top = setup_layer(prior_text(body), [np.zeros((1, 1, 3, 4)),
                                                   np.zeros((1, 3, 30, 40))])
    assert layer.num_priors == per_cell
    assert top[0].shape == (1, 2, 3 * 4 * per_cell * 4)


def test_gradient_is_zero():
    layer, bottom, top = setup_layer(prior_text("min_size: 4"),
                                     [np.ones((1, 2, 3, 3)),
                                      np.ones((1, 3, 9, 9))])
    for blob in bottom:
        blob.diff[...] = 7
    top[0].diff[...] = 1
    layer.Backward(top, [True, True], bottom)
    assert all((blob.diff == 0).all() for blob in bottom)


def test_explain_writes_the_box_count():
    layer, bottom, top = setup_layer(
        prior_text("min_size: 30 max_size: 60 aspect_ratio: 2 step: 8"),
        [np.zeros((1, 2, 38, 38)), np.zeros((1, 3, 300, 300))])
    text = layer.explain(bottom, top)
    assert "1 min_size × 3 ratios (1, 2, 0.5) + 1 max_size = 4 priors" in text
    assert "38×38 cells × 4 = 5776 boxes" in text
    assert "= 23104" in text


@pytest.mark.parametrize("body, field, received", [
    ("", "prior_box_param.min_size", "'none'"),
    ("min_size: 0", "prior_box_param.min_size", "0.0"),
    ("min_size: 10 max_size: 5", "prior_box_param.max_size", "5.0"),
    ("min_size: 10 min_size: 20 max_size: 30",
     "prior_box_param.max_size", "'1 max_size for 2 min_size'"),
    ("min_size: 10 variance: 0.1 variance: 0.2",
     "prior_box_param.variance", "'2 values'"),
    ("min_size: 10 variance: -1", "prior_box_param.variance", "-1.0"),
    ("min_size: 10 step: 4 step_h: 4 step_w: 4", "prior_box_param.step",
     None),
    ("min_size: 10 img_h: 30", "prior_box_param.img_w", "0"),
    ("min_size: 10 width: 4", "prior_box_param.width", "(4.0)"),
])
def test_errors(body, field, received):
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(prior_text(body), [np.zeros((1, 1, 2, 2)),
                                       np.zeros((1, 3, 8, 8))])
    if received is None:
        assert info.value.field == field
    else:
        check_error(info, field, received)
