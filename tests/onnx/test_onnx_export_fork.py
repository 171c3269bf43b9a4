"""Fork layers through ONNX: each exported layer computes in onnxruntime what
kaffe's implementation of the fork computes; the real res10 SSD face
detector gives the same detections. Each test skips while the fork layer is
not registered in this kaffe."""
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import kaffe  # noqa: E402
from onnx_nets import export_and_check, net_from_text  # noqa: E402
from test_onnx_export_layers import CONV, single  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RES10 = ROOT / ".." / "shared" / "models" / "res10_ssd"


def require(*types):
    missing = [t for t in types if t not in kaffe.layer_type_list()]
    if missing:
        pytest.skip(f"fork layer types {missing} are not registered yet")


CASES = {
    "relu6": (("ReLU6",), single('''layer { name: "r" type: "ReLU6"
      bottom: "data" top: "r" }
      layer { name: "s" type: "Power" bottom: "r" top: "s"
      power_param { scale: 4 } }
      layer { name: "r2" type: "ReLU6" bottom: "s" top: "s" }''')),
    "depthwise": (("ConvolutionDepthwise", "DepthwiseConvolution"), single(
        f'''layer {{ name: "a" type: "ConvolutionDepthwise" bottom: "data"
      top: "a" convolution_param {{ kernel_size: 3 pad: 1 stride: 2 {CONV} }} }}
      layer {{ name: "b" type: "DepthwiseConvolution" bottom: "a" top: "b"
      convolution_param {{ num_output: 3 group: 3 kernel_size: 3 dilation: 2
      pad: 2 {CONV} }} }}''')),
    "permute-normalize": (("Permute", "Normalize"), single('''
      layer { name: "n1" type: "Normalize" bottom: "data" top: "n1"
      norm_param { across_spatial: false channel_shared: false
      scale_filler { type: "gaussian" std: 1 } } }
      layer { name: "n2" type: "Normalize" bottom: "data" top: "n2"
      norm_param { across_spatial: true eps: 0.001 } }
      layer { name: "p" type: "Permute" bottom: "n1" top: "p"
      permute_param { order: 0 order: 2 order: 3 order: 1 } }''')),
    "interp": (("Interp",), single('''layer { name: "i1" type: "Interp"
      bottom: "data" top: "i1" interp_param { zoom_factor: 3 } }
      layer { name: "i2" type: "Interp" bottom: "data" top: "i2"
      interp_param { height: 5 width: 17 pad_beg: -1 pad_end: -2 } }''')),
    "segnet-unpool": (("Upsample",), single('''layer { name: "pool"
      type: "Pooling" bottom: "data" top: "pooled" top: "mask"
      pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
      layer { name: "up" type: "Upsample" bottom: "pooled" bottom: "mask"
      top: "up" upsample_param { upsample_h: 8 upsample_w: 10 } }''',
                                             (2, 3, 8, 10))),
    "shuffle-axpy": (("ShuffleChannel", "Axpy"), single('''
      layer { name: "sh" type: "ShuffleChannel" bottom: "data" top: "sh"
      shuffle_channel_param { group: 2 } }
      layer { name: "a" type: "Axpy" bottom: "w" bottom: "sh" bottom: "data"
      top: "a" }''', (2, 6, 4, 5), extra_inputs='''layer { name: "w"
      type: "Input" top: "w" input_param { shape { dim: 2 dim: 6 } } }''')),
    "transpose-reverse": (("Transpose", "Reverse"), single('''
      layer { name: "t" type: "Transpose" bottom: "data" top: "t"
      transpose_param { dim: 3 dim: 2 dim: 0 dim: 1 } }
      layer { name: "r" type: "Reverse" bottom: "t" top: "r"
      reverse_param { axis: 0 } }''')),
    "fork-bn": (("BN",), single('''layer { name: "segnet" type: "BN"
      bottom: "data" top: "a" bn_param { bn_mode: INFERENCE
      scale_filler { type: "gaussian" std: 1 } shift_filler { type: "gaussian"
      std: 1 } } }
      layer { name: "pspnet" type: "BN" bottom: "data" top: "b"
      bn_param { eps: 0.001 slope_filler { type: "gaussian" std: 1 } } }''')),
    "roi-pooling": (("ROIPooling",), single('''layer { name: "roi"
      type: "ROIPooling" bottom: "data" bottom: "rois" top: "roi"
      roi_pooling_param { pooled_h: 3 pooled_w: 2 spatial_scale: 0.5 } }''',
                                            (2, 3, 12, 14), extra_inputs='''
      layer { name: "rois" type: "Input" top: "rois"
      input_param { shape { dim: 4 dim: 5 } } }''')),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fork_layer_exports_exactly(tmp_path, case):
    types, text = CASES[case]
    require(*types)
    net = net_from_text(tmp_path, text)
    inputs = None
    if case == "roi-pooling":
        rng = np.random.default_rng(0)
        inputs = {"data": rng.standard_normal((2, 3, 12, 14)).astype(
            np.float32), "rois": np.array(
            [[0, 0, 0, 20, 16], [1, 3.2, 4.7, 9.5, 22], [0, 10, 2, 27, 23],
             [1, 5, 5, 5, 5]], dtype=np.float32)}
    export_and_check(net, tmp_path, inputs)


SSD_HEAD = '''
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 32 dim: 32 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 8 kernel_size: 3 stride: 4 pad: 1 %s } }
layer { name: "conv_norm" type: "Normalize" bottom: "conv" top: "conv_norm"
  norm_param { across_spatial: false channel_shared: false scale_filler { type: "constant" value: 20 } } }
layer { name: "loc" type: "Convolution" bottom: "conv_norm" top: "loc"
  convolution_param { num_output: %d kernel_size: 3 pad: 1 %s } }
layer { name: "loc_perm" type: "Permute" bottom: "loc" top: "loc_perm" permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "loc_flat" type: "Flatten" bottom: "loc_perm" top: "loc_flat" flatten_param { axis: 1 } }
layer { name: "conf" type: "Convolution" bottom: "conv_norm" top: "conf"
  convolution_param { num_output: 9 kernel_size: 3 pad: 1 %s } }
layer { name: "conf_perm" type: "Permute" bottom: "conf" top: "conf_perm" permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "conf_flat" type: "Flatten" bottom: "conf_perm" top: "conf_flat" flatten_param { axis: 1 } }
layer { name: "priors" type: "PriorBox" bottom: "conv_norm" bottom: "data" top: "priors"
  prior_box_param { min_size: 8 max_size: 16 aspect_ratio: 2 flip: false clip: false
  variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 offset: 0.5 } }
layer { name: "conf_reshape" type: "Reshape" bottom: "conf_flat" top: "conf_reshape" reshape_param { shape { dim: 0 dim: -1 dim: 3 } } }
layer { name: "conf_softmax" type: "Softmax" bottom: "conf_reshape" top: "conf_softmax" softmax_param { axis: 2 } }
layer { name: "conf_out" type: "Flatten" bottom: "conf_softmax" top: "conf_out" }
layer { name: "detection_out" type: "DetectionOutput" bottom: "loc_flat" bottom: "conf_out" bottom: "priors"
  top: "detection_out" detection_output_param { num_classes: 3 share_location: %s background_label_id: %d
  nms_param { nms_threshold: 0.45 %s } code_type: %s keep_top_k: %d %s } }
'''


@pytest.mark.parametrize("code, top_k, keep, threshold, shared, background", [
    ("CENTER_SIZE", "top_k: 20", 10, "confidence_threshold: 0.2", True, 0),
    ("CORNER", "", -1, "", True, 0),
    ("CORNER_SIZE", "top_k: 5", 3, "confidence_threshold: 0.3", True, 2),
    ("CENTER_SIZE", "", 10, "confidence_threshold: 0.99", True, 0),  # none
    ("CENTER_SIZE", "top_k: 8", 6, "confidence_threshold: 0.2", False, 1),
])
def test_ssd_head_detections_match(tmp_path, code, top_k, keep, threshold,
                                   shared, background):
    require("PriorBox", "Permute", "Normalize", "DetectionOutput")
    filler = 'weight_filler { type: "gaussian" std: 0.3 }'
    loc_outputs = 12 if shared else 36
    text = SSD_HEAD % (filler, loc_outputs, filler, filler,
                       str(shared).lower(), background, top_k, code, keep,
                       threshold)
    net = net_from_text(tmp_path, text)
    result, report = export_and_check(net, tmp_path)
    row = next(r for r in report.rows if r.blob == "detection_out")
    assert row.max_abs < 1e-5


@pytest.mark.skipif(not (RES10 / "res10_300x300_ssd_iter_140000.caffemodel")
                    .is_file(), reason=f"res10 SSD not found in "
                    f"{RES10.resolve()} (it is not part of the repository)")
def test_res10_ssd_gives_the_same_detections(tmp_path):
    require("PriorBox", "Permute", "Normalize", "DetectionOutput")
    from kaffe.onnx import check_export, export
    net = kaffe.Net(str(RES10 / "deploy.prototxt"), kaffe.TEST,
                    weights=str(RES10 / "res10_300x300_ssd_iter_140000"
                                        ".caffemodel"))
    faces = ROOT / ".." / "shared" / "data" / "images" / "faces.jpg"
    from kaffe.onnx.check import image_input
    shape = net.blobs["data"].data.shape
    if faces.is_file():
        x = image_input(faces, shape) - np.array(
            [104, 177, 123], np.float32).reshape(1, 3, 1, 1)
    else:
        x = np.random.default_rng(0).uniform(-100, 100, shape).astype(
            np.float32)
    result = export(net, str(tmp_path / "res10.onnx"))
    report = check_export(net, result, {"data": x.astype(np.float32)})
    assert report.ok, report.to_text()
    detections = net.blobs["detection_out"].data
    assert detections.shape[2] >= 1
