"""Clip: loop reference (std::min/std::max, NaN), inclusive gradient mask,
required fields, in place."""
import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError
from kaffe.testing.gradient import (blobs_from, check_backward_overwrites,
                                    check_gradients, check_layer_error,
                                    empty_blobs, make_layer, setup_in_place,
                                    setup_layer)


def clip_text(low=-1.0, high=2.0):
    fields = "".join(f"{name}: {value} " for name, value in
                     (("min", low), ("max", high)) if value is not None)
    return f'name: "clip" type: "Clip" clip_param {{ {fields}}}'


def f32(value):
    return float(np.float32(value))  # min and max are float fields


def reference(x, low, high):
    """std::max(low, std::min(x, high)): std::min(a, b) is (b < a) ? b : a
    and std::max(a, b) is (a < b) ? b : a, so NaN becomes low."""
    out = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        upper = high if high < x[index] else x[index]
        out[index] = upper if low < upper else low
    return out


def away_from(x, points, margin=1e-2):
    """Move values within ``margin`` of a kink out of the way (as Caffe's
    TestClipGradient does)."""
    for p in points:
        x = np.where(abs(x - p) <= margin, x + np.sign(x - p + 1e-12) * 3 * margin,
                     x)
    return x


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4, 5), (7,)])
def test_top_has_bottom_shape(shape):
    _, _, top = setup_layer(clip_text(), [np.zeros(shape)])
    assert top[0].shape == shape


@pytest.mark.parametrize("low, high", [(-1.0, 2.0), (0.3, 0.3), (0.0, 6.0),
                                       (1.0, -1.0)])
def test_forward_matches_loops(low, high):
    x = np.random.default_rng(0).standard_normal((4, 5)) * 2
    x[0, :3] = [f32(low), f32(high), np.nan]
    _, _, top = setup_layer(clip_text(low, high), [x])
    np.testing.assert_array_equal(top[0].data,
                                  reference(x, f32(low), f32(high)))
    assert top[0].data[0, 2] == f32(low)  # NaN → min


def test_min_above_max_gives_min_and_no_gradient():
    x = np.random.default_rng(1).standard_normal(8)
    layer, bottom, top = setup_layer(clip_text(1, -1), [x])
    np.testing.assert_array_equal(top[0].data, [1.0] * 8)
    top[0].diff[...] = 1.0
    layer.Backward(top, [True], bottom)
    assert not bottom[0].diff.any()


def test_gradient_passes_on_both_boundaries():
    x = np.array([-1.5, -1.0, 0.5, 2.0, 2.5, np.nan])
    layer, bottom, top = setup_layer(clip_text(-1, 2), [x])
    top[0].diff[...] = 3.0
    check_backward_overwrites(layer, bottom, top)
    layer.Backward(top, [True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, [0, 3, 3, 3, 0, 0])


@pytest.mark.parametrize("low, high", [(-1.0, 2.0), (-0.5, 0.5)])
def test_gradients(low, high):
    x = np.random.default_rng(2).standard_normal((2, 3, 4)) * 2
    x = away_from(x, (f32(low), f32(high)))
    layer, bottom, top = setup_layer(clip_text(low, high), [x])
    check_gradients(layer, bottom, top)


def test_missing_clip_param_clips_to_zero():
    # Only a present clip_param must carry both required fields; without one
    # Caffe reads the defaults min = max = 0.
    _, _, top = setup_layer('name: "clip" type: "Clip"',
                            [np.array([-2.0, 0.5, 3.0])])
    np.testing.assert_array_equal(top[0].data, [0.0, 0.0, 0.0])


@pytest.mark.parametrize("low, high, field", [(None, 1.0, "clip_param.min"),
                                              (-1.0, None, "clip_param.max"),
                                              (None, None, "clip_param.min")])
def test_min_and_max_are_required(low, high, field):
    layer = make_layer(clip_text(low, high))
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from([np.ones(3)]), empty_blobs(1))
    check_layer_error(info, field, "'no value'", layer="clip")


def test_in_place_gradients():
    x = np.random.default_rng(5).standard_normal((2, 3, 4)) * 2
    x = away_from(x, (-1.0, 2.0))
    layer, bottom, top = setup_in_place(clip_text(-1, 2), [x])
    check_gradients(layer, bottom, top)


def test_in_place_masks_by_the_input_not_the_clipped_output():
    # The layer keeps a copy of its input: unlike Caffe's CPU code, which
    # reads y ∈ [min, max] and passes every gradient, values clipped in the
    # forward get no gradient in place either.
    x = np.array([-3.0, -1.0, 0.0, 1.0, 2.0, 5.0, np.nan])
    dy = np.array([4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    layer, bottom, top = setup_layer(clip_text(-1, 2), [x])
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    in_place, blobs, _ = setup_in_place(clip_text(-1, 2), [x])
    in_place.Forward(blobs, blobs)
    np.testing.assert_array_equal(blobs[0].data, top[0].data)
    blobs[0].diff[...] = dy
    in_place.Backward(blobs, [True], blobs)
    np.testing.assert_array_equal(blobs[0].diff, bottom[0].diff)
    np.testing.assert_array_equal(blobs[0].diff, [0, 5, 6, 7, 8, 0, 0])


def test_matches_torch_clamp():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(3).standard_normal((3, 5)) * 2
    x[0, :2] = [-1.0, 2.0]  # torch's clamp also passes the boundaries
    layer, bottom, top = setup_layer(clip_text(-1, 2), [x])
    dy = np.random.default_rng(4).standard_normal((3, 5))
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.clamp(xt, -1.0, 2.0)
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_array_equal(top[0].data, yt.detach().numpy())
    np.testing.assert_array_equal(bottom[0].diff, xt.grad.numpy())
