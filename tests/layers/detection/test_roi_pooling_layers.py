"""ROIPooling (Fast R-CNN) and PSROIPooling (R-FCN): loop references
written from the forks' kernels, float64 gradients, errors."""
import math
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import (check_gradients, check_layer_error,
                                    setup_layer)


def c_round(v):
    return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)


ROIS = np.array([[0, 3.2, 4.6, 30.1, 20.5],     # inside
                 [1, 0, 0, 63, 47],             # the whole map
                 [0, 40.5, 10.5, 44.5, 12.5],   # small, halves rounded away
                 [1, -5, -8, 20, 70],           # partly outside
                 [0, 50, 40, 45, 30]])          # x2 < x1: one cell


def roi_reference(x, rois, ph_n, pw_n, scale):
    n, c, h, w = x.shape
    out = np.zeros((len(rois), c, ph_n, pw_n))
    for r, roi in enumerate(rois):
        b = int(roi[0])
        x1, y1, x2, y2 = (c_round(v * scale) for v in roi[1:])
        rh, rw = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        for k in range(c):
            for i in range(ph_n):
                for j in range(pw_n):
                    hs = min(max(math.floor(i * rh / ph_n) + y1, 0), h)
                    he = min(max(math.ceil((i + 1) * rh / ph_n) + y1, 0), h)
                    ws = min(max(math.floor(j * rw / pw_n) + x1, 0), w)
                    we = min(max(math.ceil((j + 1) * rw / pw_n) + x1, 0), w)
                    if he <= hs or we <= ws:
                        continue
                    out[r, k, i, j] = x[b, k, hs:he, ws:we].max()
    return out


def roi_text(ph=3, pw=4, scale=0.25):
    return (f'name: "roi" type: "ROIPooling" roi_pooling_param {{ pooled_h: '
            f'{ph} pooled_w: {pw} spatial_scale: {scale} }}')


@pytest.mark.parametrize("ph, pw, scale", [(3, 4, 0.25), (2, 2, 0.0625),
                                           (5, 3, 1.0)])
def test_roi_forward_matches_loops(ph, pw, scale):
    x = np.random.default_rng(0).standard_normal((2, 3, 12, 16))
    _, _, top = setup_layer(roi_text(ph, pw, scale), [x, ROIS])
    np.testing.assert_array_equal(top[0].data,
                                  roi_reference(x, ROIS, ph, pw, scale))


def test_roi_rows_may_be_4d():
    x = np.random.default_rng(0).standard_normal((2, 3, 12, 16))
    _, _, top = setup_layer(roi_text(), [x, ROIS.reshape(5, 5, 1, 1)])
    assert top[0].shape == (5, 3, 3, 4)


def test_roi_gradients():
    # Distinct values, so that every bin has one clear maximum.
    x = np.random.default_rng(1).permutation(2 * 3 * 12 * 16).reshape(
        2, 3, 12, 16) / 10.0
    layer, bottom, top = setup_layer(roi_text(), [x, ROIS])
    check_gradients(layer, bottom, top, check_bottom=[0], eps=1e-3)


def first_max_positions(x, rois, ph_n, pw_n, scale):
    """Where the fork's scan (row-major, strict >) finds each maximum."""
    n, c, h, w = x.shape
    counts = np.zeros_like(x)
    for roi in rois:
        b = int(roi[0])
        x1, y1, x2, y2 = (c_round(v * scale) for v in roi[1:])
        rh, rw = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        for k in range(c):
            for i in range(ph_n):
                for j in range(pw_n):
                    hs = min(max(math.floor(i * rh / ph_n) + y1, 0), h)
                    he = min(max(math.ceil((i + 1) * rh / ph_n) + y1, 0), h)
                    ws = min(max(math.floor(j * rw / pw_n) + x1, 0), w)
                    we = min(max(math.ceil((j + 1) * rw / pw_n) + x1, 0), w)
                    best, where = -np.inf, None
                    for yy in range(hs, he):
                        for xx in range(ws, we):
                            if x[b, k, yy, xx] > best:
                                best, where = x[b, k, yy, xx], (yy, xx)
                    if where is not None:
                        counts[b, k][where] += 1
    return counts


def test_roi_ties_go_to_the_first_maximum_in_row_major_order():
    x = np.random.default_rng(5).integers(0, 3, (2, 3, 12, 16)).astype(float)
    layer, bottom, top = setup_layer(roi_text(), [x, ROIS])
    top[0].diff[...] = 1
    layer.Backward(top, [True, False], bottom)
    np.testing.assert_array_equal(
        bottom[0].diff, first_max_positions(x, ROIS, 3, 4, 0.25))


def test_roi_gives_the_regions_zero_gradient():
    x = np.random.default_rng(1).standard_normal((2, 3, 12, 16))
    layer, bottom, top = setup_layer(roi_text(), [x, ROIS])
    top[0].diff[...] = 1
    bottom[1].diff[...] = 3
    layer.Backward(top, [True, True], bottom)
    assert (bottom[1].diff == 0).all()
    # every non-empty bin's diff landed on one input (empty bins output 0)
    assert bottom[0].diff.sum() == pytest.approx((top[0].data != 0).sum())
    assert (top[0].data == 0).sum() > 0


def test_roi_errors():
    x = np.zeros((2, 3, 12, 16))
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(roi_text(ph=0), [x, ROIS])
    check_layer_error(info, "roi_pooling_param.pooled_h", 0, layer="roi")
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(roi_text(), [x, ROIS[:, :4]])
    assert info.value.field == "bottom[1]"
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(roi_text(), [x, ROIS + [[2, 0, 0, 0, 0]]])
    assert "outside the batch" in str(info.value)


def psroi_reference(x, rois, scale, out_dim, g):
    n, c, h, w = x.shape
    out = np.zeros((len(rois), out_dim, g, g))
    for r, roi in enumerate(rois):
        b = int(roi[0])
        sw, sh = c_round(roi[1]) * scale, c_round(roi[2]) * scale
        ew, eh = (c_round(roi[3]) + 1) * scale, (c_round(roi[4]) + 1) * scale
        rw, rh = max(ew - sw, 0.1), max(eh - sh, 0.1)
        for k in range(out_dim):
            for i in range(g):
                for j in range(g):
                    hs = min(max(math.floor(i * rh / g + sh), 0), h)
                    he = min(max(math.ceil((i + 1) * rh / g + sh), 0), h)
                    ws = min(max(math.floor(j * rw / g + sw), 0), w)
                    we = min(max(math.ceil((j + 1) * rw / g + sw), 0), w)
                    if he <= hs or we <= ws:
                        continue
                    channel = (k * g + i) * g + j
                    out[r, k, i, j] = x[b, channel, hs:he, ws:we].mean()
    return out


def psroi_text(scale=0.25, out_dim=2, g=3):
    return (f'name: "ps" type: "PSROIPooling" psroi_pooling_param {{ '
            f'spatial_scale: {scale} output_dim: {out_dim} group_size: {g} }}')


@pytest.mark.parametrize("scale, out_dim, g", [(0.25, 2, 3), (0.0625, 3, 2),
                                               (0.5, 1, 4)])
def test_psroi_forward_matches_loops(scale, out_dim, g):
    x = np.random.default_rng(2).standard_normal((2, out_dim * g * g, 12, 16))
    _, _, top = setup_layer(psroi_text(scale, out_dim, g), [x, ROIS])
    np.testing.assert_allclose(top[0].data,
                               psroi_reference(x, ROIS, scale, out_dim, g),
                               rtol=1e-12, atol=1e-15)


def test_psroi_gradients():
    x = np.random.default_rng(3).standard_normal((2, 18, 12, 16))
    layer, bottom, top = setup_layer(psroi_text(), [x, ROIS])
    check_gradients(layer, bottom, top, check_bottom=[0], max_elements=300)


@pytest.mark.parametrize("body, field", [
    ("output_dim: 2 group_size: 3", "psroi_pooling_param.spatial_scale"),
    ("spatial_scale: 1 output_dim: 0 group_size: 3",
     "psroi_pooling_param.output_dim")])
def test_psroi_config_errors(body, field):
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(f'name: "ps" type: "PSROIPooling" psroi_pooling_param '
                    f'{{ {body} }}', [np.zeros((2, 18, 4, 4)), ROIS])
    assert info.value.field == field


def test_psroi_channel_count():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(psroi_text(), [np.zeros((2, 17, 4, 4)), ROIS])
    check_layer_error(info, "bottom[0]", "'shape (2, 17, 4, 4)'", layer="ps")
