"""coord_map (pycaffe's caffe.coord_map): maps between NetSpec tops, and
crop() for FCN-style nets — ported from pycaffe's test_coord_map.py, plus
a check that the Crop it writes aligns the tops in a real net."""
import numpy as np
import pytest

import kaffe as caffe
from kaffe import layers as L
from kaffe import params as P
from kaffe.coord_map import (AxisMismatchException, CropError,
                             UnconnectedTopsError, compose, coord_map_from_to,
                             crop, inverse)
from kaffe.core.errors import KaffeConfigError


def coord_net_spec(ks=3, stride=1, pad=0, pool=2, dstride=2, dpad=0,
                   explicit_deconv=False):
    """conv-pool-deconv, the pattern of all of pycaffe's coord map tests."""
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[2, 1, 100, 100]))
    n.aux = L.Input(shape=dict(dim=[2, 1, 20, 20]))
    n.conv = L.Convolution(n.data, num_output=10, kernel_size=ks,
                           stride=stride, pad=pad)
    n.pool = L.Pooling(n.conv, pool=P.Pooling.MAX, kernel_size=pool,
                       stride=pool, pad=0)
    # for upsampling the kernel size is twice the stride
    deconv_ks = [s * 2 for s in dstride] if isinstance(dstride, list) \
        else dstride * 2
    deconv = dict(num_output=10, kernel_size=deconv_ks, stride=dstride,
                  pad=dpad)
    if explicit_deconv:  # what a net that is built needs (see test_net_spec)
        n.deconv = L.Deconvolution(n.pool, convolution_param=deconv)
    else:
        n.deconv = L.Deconvolution(n.pool, **deconv)
    return n


def values(x):
    return np.asarray(x, dtype=float).ravel().tolist()


def test_conv_pool_deconv():
    n = coord_net_spec()
    ax, a, b = coord_map_from_to(n.deconv, n.data)
    assert (ax, values(a), values(b)) == (1, [1], [0])   # 2x pool, 2x deconv
    n = coord_net_spec(pool=4, dstride=4)
    ax, a, b = coord_map_from_to(n.deconv, n.data)
    assert (ax, values(a), values(b)) == (1, [1], [-1])  # 4x: shift by one


def test_pass_through_layers_map_identically():
    n = coord_net_spec()
    ax, a, b = coord_map_from_to(n.deconv, n.data)
    n.relu = L.ReLU(n.deconv)
    n.conv1x1 = L.Convolution(n.relu, num_output=10, kernel_size=1, stride=1,
                              pad=0)
    for top in (n.relu, n.conv1x1):
        ax_pass, a_pass, b_pass = coord_map_from_to(top, n.data)
        assert ax_pass == ax
        assert values(a_pass) == values(a) and values(b_pass) == values(b)


@pytest.mark.parametrize("pad", [1, 4, 7])
def test_padding(pad):
    n = coord_net_spec()
    _, a, b = coord_map_from_to(n.deconv, n.data)
    n = coord_net_spec(pad=pad)                       # conv pad adds offset
    _, a_pad, b_pad = coord_map_from_to(n.deconv, n.data)
    assert values(a_pad) == values(a)
    assert values(b_pad) == [v - pad for v in values(b)]
    n = coord_net_spec(dpad=pad)                      # deconv pad subtracts
    _, a_pad, b_pad = coord_map_from_to(n.deconv, n.data)
    assert values(b_pad) == [v + pad for v in values(b)]
    n = coord_net_spec(pad=pad, dpad=pad)             # both cancel out
    _, a_pad, b_pad = coord_map_from_to(n.deconv, n.data)
    assert values(a_pad) == values(a) and values(b_pad) == values(b)


def test_multi_bottom_conv_maps_each_identically():
    n = coord_net_spec()
    n.conv_data, n.conv_aux = L.Convolution(
        n.data, n.aux, ntop=2, num_output=10, kernel_size=5, stride=2, pad=0)
    ax1, a1, b1 = coord_map_from_to(n.conv_data, n.data)
    ax2, a2, b2 = coord_map_from_to(n.conv_aux, n.aux)
    assert ax1 == ax2
    assert values(a1) == values(a2) and values(b1) == values(b2)


def test_rect_is_its_isotropic_parts():
    n3x3 = coord_net_spec(ks=3, stride=1, pad=0)
    n5x5 = coord_net_spec(ks=5, stride=2, pad=10)
    n3x5 = coord_net_spec(ks=[3, 5], stride=[1, 2], pad=[0, 10])
    ax_3, a_3, b_3 = coord_map_from_to(n3x3.deconv, n3x3.data)
    ax_5, a_5, b_5 = coord_map_from_to(n5x5.deconv, n5x5.data)
    ax_35, a_35, b_35 = coord_map_from_to(n3x5.deconv, n3x5.data)
    assert ax_3 == ax_5 == ax_35
    assert values(a_35) == values(a_3) + values(a_5)
    assert values(b_35) == values(b_3) + values(b_5)


def test_nd_conv():
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[2, 3, 100, 100, 100]))
    n.conv = L.Convolution(n.data, num_output=10, kernel_size=[3, 3, 3],
                           stride=[1, 1, 1], pad=[0, 1, 2])
    n.pool = L.Pooling(n.conv, pool=P.Pooling.MAX, kernel_size=2, stride=2,
                       pad=0)
    n.deconv = L.Deconvolution(n.pool, num_output=10, kernel_size=4,
                               stride=2, pad=0)
    ax, a, b = coord_map_from_to(n.deconv, n.data)
    assert ax == 1
    assert len(a) == len(b) == 3
    assert np.all(a == 1)
    assert b[0] - 1 == b[1] and b[1] - 1 == b[2]


@pytest.mark.parametrize("offset", [0, 3, 10])
def test_crop_of_crop(offset):
    n = coord_net_spec()
    ax, a, b = coord_map_from_to(n.deconv, n.data)
    n.crop = L.Crop(n.deconv, n.data, axis=2, offset=offset)
    ax_crop, a_crop, b_crop = coord_map_from_to(n.crop, n.data)
    assert ax_crop == ax
    assert values(a_crop) == values(a)
    assert values(b_crop) == [v + offset for v in values(b)]


def test_crop_helper_writes_the_crop_layer():
    n = coord_net_spec(pad=5)
    top = crop(n.deconv, n.data)
    assert top.fn.type_name == "Crop"
    assert top.fn.inputs == (n.deconv, n.data)
    assert top.fn.params["crop_param"] == dict(axis=2, offset=[5])


@pytest.mark.parametrize("pad", [0, 3])
def test_crop_aligns_the_tops_in_a_built_net(tmp_path, pad):
    n = coord_net_spec(pad=pad, explicit_deconv=True)
    n.score = crop(n.deconv, n.data)
    proto = n.to_proto()
    layer = proto.layer[-1]
    assert layer.type == "Crop"
    assert layer.crop_param.axis == 2
    assert list(layer.crop_param.offset) == [pad]
    path = tmp_path / "fcn.prototxt"
    path.write_text(str(proto))
    net = caffe.Net(str(path), caffe.TEST)
    assert net.blobs["deconv"].shape == (2, 10, 100 + 2 * pad, 100 + 2 * pad)
    assert net.blobs["score"].shape == (2, 10, 100, 100)


def test_catch_unconnected():
    n = coord_net_spec()
    n.ip = L.InnerProduct(n.deconv, num_output=10)
    with pytest.raises(RuntimeError):        # pycaffe's class
        coord_map_from_to(n.ip, n.data)
    with pytest.raises(UnconnectedTopsError, match="no common input"):
        coord_map_from_to(n.ip, n.data)


def test_catch_scale_mismatch():
    n = coord_net_spec(pool=3, dstride=2)    # pool 3x but deconv 2x
    with pytest.raises(AssertionError):      # pycaffe's class
        crop(n.deconv, n.data)
    with pytest.raises(CropError, match="scale"):
        crop(n.deconv, n.data)


def test_catch_negative_crop():
    n = coord_net_spec(dpad=10)              # output smaller than input
    with pytest.raises(AssertionError):
        crop(n.deconv, n.data)
    with pytest.raises(KaffeConfigError, match="negative offset"):
        crop(n.deconv, n.data)


def test_legacy_h_w_fields_are_refused():
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 1, 10, 10]))
    n.conv = L.Convolution(n.data, num_output=1, kernel_h=3, kernel_w=3)
    with pytest.raises(CropError, match="legacy"):
        coord_map_from_to(n.conv, n.data)


def test_compose_and_inverse():
    m = (1, np.array([0.5]), np.array([-1.0]))
    assert values(compose(m, inverse(m))[1]) == [1]
    assert values(compose(m, inverse(m))[2]) == [0]
    assert compose((None, 1, 0), m)[0] == 1
    with pytest.raises(AxisMismatchException):
        compose((1, 1, 0), (2, 1, 0))
