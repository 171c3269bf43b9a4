"""The geometry vision layers publish (layer.geometry), one definition."""
import numpy as np

from kaffe.ops.geometry import ConvGeometry, PoolGeometry
from kaffe.testing.gradient import setup_layer


def test_convolution_publishes_its_geometry():
    layer, _, top = setup_layer(
        'name: "c" type: "Convolution" convolution_param { num_output: 6 '
        'kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 0 pad_w: 1 '
        'group: 2 '
        'bias_term: false }', [np.zeros((2, 4, 9, 7))])
    assert layer.geometry == ConvGeometry(
        kernel=(3, 2), stride=(2, 1), pad=(0, 1), dilation=(1, 1), group=2,
        num_output=6, axis=1, bias_term=False, deconv=False)
    assert layer.geometry.output_spatial((9, 7)) == top[0].shape[2:]


def test_deconvolution_publishes_the_transpose():
    layer, _, top = setup_layer(
        'name: "d" type: "Deconvolution" convolution_param { num_output: 3 '
        'kernel_size: 4 stride: 2 pad: 1 dilation: 2 axis: -3 }',
        [np.zeros((2, 5, 6, 7))])
    g = layer.geometry
    assert g.deconv and g.axis == 1 and g.num_output == 3
    assert (g.kernel, g.stride, g.pad, g.dilation) == ((4, 4), (2, 2),
                                                       (1, 1), (2, 2))
    assert g.output_spatial((6, 7)) == top[0].shape[2:] == (15, 17)


def test_im2col_publishes_the_convolution_it_unfolds_for():
    layer, _, top = setup_layer(
        'name: "i" type: "Im2col" convolution_param { kernel_size: 3 '
        'stride: 2 dilation: 2 }', [np.zeros((2, 3, 10, 11))])
    g = layer.geometry
    assert (g.kernel, g.stride, g.dilation) == ((3, 3), (2, 2), (2, 2))
    assert (g.num_output, g.group, g.bias_term) == (27, 1, False)
    assert (g.num_output,) + g.output_spatial((10, 11)) == top[0].shape[1:]


def test_pooling_publishes_its_geometry_with_the_clip_rule():
    layer, _, top = setup_layer(
        'name: "p" type: "Pooling" pooling_param { pool: AVE kernel_h: 3 '
        'kernel_w: 1 stride_h: 1 stride_w: 2 pad_h: 1 pad_w: 0 }',
        [np.zeros((1, 1, 4, 4))])
    assert layer.geometry == PoolGeometry("AVE", (3, 1), (1, 2), (1, 0),
                                          False, "CEIL")
    # Padded on height only, yet width loses its window in the padding too.
    assert top[0].shape[2:] == layer.geometry.output_spatial((4, 4)) == (4, 2)


def test_spp_publishes_each_levels_pooling():
    layer, _, _ = setup_layer(
        'name: "s" type: "SPP" spp_param { pyramid_height: 3 }',
        [np.zeros((1, 2, 9, 8))])
    assert layer.geometry is None
    levels = layer.level_geometries
    assert [g.output_spatial((9, 8)) for g in levels] == [(1, 1), (2, 2),
                                                          (4, 4)]
    assert levels[2].kernel == (3, 2) and levels[2].pad == (2, 0)
