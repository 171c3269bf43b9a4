"""Forward parity of Deconvolution with OpenCV's independent Caffe importer
(``cv2.dnn.readNetFromCaffe``), and which of the loss layers OpenCV lacks.

Each net is written here, given random weights by kaffe's fillers, saved as
prototxt + caffemodel and read back by OpenCV; every layer's output must
match kaffe's blob. OpenCV ignores a Deconvolution's dilation (its output
shape is that of dilation 1), so dilated deconvolution is compared with
torch's conv_transpose in tests/layers/vision/test_deconvolution_layer.py.
"""
import numpy as np
import pytest

from kaffe.testing.parity import assert_close, opencv_net, saved_random_net

cv2 = pytest.importorskip("cv2", reason="opencv-python-headless (test extra) not installed")

HEAD = """
name: "parity"
layer {{ name: "data" type: "Input" top: "data"
        input_param {{ shape {{ dim: {n} dim: {c} dim: {h} dim: {w} }} }} }}
"""

GAUSS = 'weight_filler { type: "gaussian" std: 0.3 } bias_filler { type: "gaussian" std: 0.3 }'

NETS = {
    "deconv_variants": (2, 4, 7, 6, f"""
layer {{ name: "deconv_plain" type: "Deconvolution" bottom: "data" top: "deconv_plain"
        convolution_param {{ num_output: 5 kernel_size: 3 {GAUSS} }} }}
layer {{ name: "deconv_strided" type: "Deconvolution" bottom: "data" top: "deconv_strided"
        convolution_param {{ num_output: 3 kernel_size: 4 stride: 2 pad: 1 {GAUSS} }} }}
layer {{ name: "deconv_group" type: "Deconvolution" bottom: "data" top: "deconv_group"
        convolution_param {{ num_output: 6 kernel_size: 3 stride: 2 pad: 1 group: 2 {GAUSS} }} }}
layer {{ name: "deconv_rect" type: "Deconvolution" bottom: "data" top: "deconv_rect"
        convolution_param {{ num_output: 2 kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 3
                            pad_h: 1 pad_w: 0 {GAUSS} }} }}
layer {{ name: "deconv_nobias" type: "Deconvolution" bottom: "deconv_strided"
        top: "deconv_nobias"
        convolution_param {{ num_output: 2 kernel_size: 2 stride: 2 bias_term: false
                            weight_filler {{ type: "xavier" }} }} }}
"""),
    # FCN's recipe: 2× and 3× bilinear upsampling, one channel per group.
    "bilinear_upsampling": (2, 3, 5, 6, """
layer { name: "up2" type: "Deconvolution" bottom: "data" top: "up2"
        param { lr_mult: 0 decay_mult: 0 }
        convolution_param { num_output: 3 group: 3 kernel_size: 4 stride: 2 pad: 1
                            bias_term: false weight_filler { type: "bilinear" } } }
layer { name: "up3" type: "Deconvolution" bottom: "data" top: "up3"
        param { lr_mult: 0 decay_mult: 0 }
        convolution_param { num_output: 3 group: 3 kernel_size: 5 stride: 3 pad: 1
                            bias_term: false weight_filler { type: "bilinear" } } }
"""),
}


def build(tmp_path, key):
    n, c, h, w, body = NETS[key]
    return saved_random_net(tmp_path, key, HEAD.format(n=n, c=c, h=h, w=w) + body)


@pytest.mark.parametrize("key", sorted(NETS))
def test_forward_matches_opencv(tmp_path, key):
    net, prototxt, weights = build(tmp_path, key)
    rng = np.random.default_rng(11)
    x = rng.standard_normal(net.blobs["data"].shape).astype(np.float32)
    net.blobs["data"].data[...] = x
    net.forward()
    reference = opencv_net(prototxt, weights, {"data": x})
    names = list(reference.getLayerNames())
    outputs = reference.forward(names)
    for name, expected in zip(names, outputs):
        ours = net.blobs[name].data
        assert ours.shape == tuple(expected.shape), name
        assert_close(ours, expected, f"layer {name}")


LOSSES = ["ContrastiveLoss", "HingeLoss", "InfogainLoss",
          "MultinomialLogisticLoss", "SigmoidCrossEntropyLoss"]


@pytest.mark.parametrize("layer_type", LOSSES)
def test_loss_layers_opencv_lacks(tmp_path, layer_type):
    # OpenCV's importer is for inference: it has none of these losses. The
    # test checks that this is still so; the loss layers are compared with
    # loop references and torch in tests/layers/loss.
    prototxt = tmp_path / "loss.prototxt"
    prototxt.write_text(HEAD.format(n=2, c=3, h=1, w=1) + f"""
layer {{ name: "loss" type: "{layer_type}" bottom: "data" bottom: "data" top: "loss" }}
""")
    # OpenCV creates its layers at the first forward.
    reference = cv2.dnn.readNetFromCaffe(str(prototxt))
    reference.setInput(np.zeros((2, 3, 1, 1), np.float32), "data")
    with pytest.raises(cv2.error, match="Can't create layer"):
        reference.forward("loss")    # passes while OpenCV lacks the layer;
    # once OpenCV reads it, this fails: then add a parity test for it.
