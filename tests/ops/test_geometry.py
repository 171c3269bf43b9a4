"""kaffe.ops.geometry: the one definition of window geometry."""
import dataclasses
import math

import pytest

from kaffe.ops.geometry import (ConvGeometry, PoolGeometry, conv_output_size,
                                deconv_output_size, pooled_size)


def caffe_pooled(size, kernel, stride, pad, ceil, any_pad):
    """PoolingLayer::Reshape as Caffe writes it, in floating point."""
    rounding = math.ceil if ceil else math.floor
    out = int(rounding((size + 2 * pad - kernel) / stride)) + 1
    if any_pad and (out - 1) * stride >= size + pad:
        out -= 1
    return out


@pytest.mark.parametrize("size", [1, 4, 5, 7, 13])
@pytest.mark.parametrize("kernel", [1, 2, 3])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("pad", [0, 1, 2])
@pytest.mark.parametrize("ceil", [True, False])
def test_pooled_size_is_caffes_formula(size, kernel, stride, pad, ceil):
    if size + 2 * pad < kernel:
        return
    assert pooled_size(size, kernel, stride, pad, ceil) == \
        caffe_pooled(size, kernel, stride, pad, ceil, pad > 0)
    for clip in (True, False):
        assert pooled_size(size, kernel, stride, pad, ceil, clip) == \
            caffe_pooled(size, kernel, stride, pad, ceil, clip)


def test_clip_rule_drops_a_window_that_starts_in_the_padding():
    # ceil((5 + 2 - 2) / 2) + 1 = 4, but the 4th window starts at 6 = 5 + 1.
    assert pooled_size(5, 2, 2, 1) == 3
    assert pooled_size(5, 2, 2, 1, clip=False) == 4
    assert pooled_size(5, 2, 2, 1, ceil=False) == 3


def test_pool_geometry_clips_both_axes_when_either_is_padded():
    # Width is unpadded, but kernel 1 stride 2 on 4 cells: 3 windows, the
    # last starting at 4 = W + 0; Caffe drops it because pad_h > 0.
    g = PoolGeometry("MAX", kernel=(3, 1), stride=(1, 2), pad=(1, 0))
    assert g.output_spatial((4, 4)) == (4, 2)
    unpadded = dataclasses.replace(g, pad=(0, 0))
    assert unpadded.output_spatial((4, 4)) == (2, 3)


def test_pool_geometry_round_mode_and_global():
    ceil = PoolGeometry("AVE", (3, 3), (2, 2))
    floor = dataclasses.replace(ceil, round_mode="FLOOR")
    assert ceil.output_spatial((6, 6)) == (3, 3)
    assert floor.output_spatial((6, 6)) == (2, 2)
    g = PoolGeometry("MAX", (5, 7), global_pooling=True)
    assert g.kernel_for((9, 11)) == (9, 11)
    assert g.output_spatial((9, 11)) == (1, 1)


def test_pool_geometry_rejects_bad_values():
    with pytest.raises(ValueError, match="method"):
        PoolGeometry("MIN", (2, 2))
    with pytest.raises(ValueError, match="round_mode"):
        PoolGeometry("MAX", (2, 2), round_mode="NEAREST")
    with pytest.raises(ValueError, match="pair"):
        PoolGeometry("MAX", (2, 2, 2))


def test_conv_geometry_output_spatial():
    g = ConvGeometry(kernel=(3, 5), stride=(2, 1), pad=(1, 2),
                     dilation=(1, 2), num_output=8)
    # (in + 2p - (d(k-1)+1)) // s + 1
    assert g.output_spatial((9, 10)) == ((9 + 2 - 3) // 2 + 1,
                                         (10 + 4 - 9) // 1 + 1)
    assert g.extent == (3, 9)
    assert g.kernel_count == 15
    assert g.num_spatial_axes == 2
    d = dataclasses.replace(g, deconv=True)
    # stride·(in − 1) + d·(k − 1) + 1 − 2·pad: the convolution's input size.
    assert d.output_spatial(g.output_spatial((9, 10))) == (9, 10)
    assert d.output_spatial((5, 6)) == (2 * 4 + 3 - 2, 1 * 5 + 9 - 4)


def test_conv_geometry_checks_one_value_per_axis():
    with pytest.raises(ValueError, match="stride"):
        ConvGeometry(kernel=(3, 3), stride=(1,), pad=(0, 0), dilation=(1, 1))
    zero_d = ConvGeometry((), (), (), ())
    assert zero_d.output_spatial(()) == ()


def test_deconv_inverts_conv_sizes_when_the_stride_divides():
    for size in range(3, 12):
        for k in (1, 2, 3):
            for s in (1, 2, 3):
                for p in (0, 1):
                    if (size + 2 * p - k) % s:
                        continue
                    out = conv_output_size(size, k, s, p)
                    assert deconv_output_size(out, k, s, p) == size


def test_conv_geometry_answers_to_the_layers_names_too():
    g = ConvGeometry((3, 3), (1, 1), (0, 0), (1, 1), axis=2)
    assert g.kernel_shape == g.kernel and g.channel_axis == 2
