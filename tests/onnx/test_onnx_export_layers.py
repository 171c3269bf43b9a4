"""Caffe → ONNX, one layer type at a time: the exported model computes in
onnxruntime what kaffe computes, within 1e-4 relative, for the settings
where Caffe and ONNX differ (pooling rounding and divisors, LRN regions,
BatchNorm's scale factor, axes, coefficients …)."""
import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx_nets import export_and_check, net_from_text  # noqa: E402


def single(layer, shape=(2, 3, 9, 11), extra_inputs=""):
    dims = " ".join(f"dim: {d}" for d in shape)
    return (f'layer {{ name: "data" type: "Input" top: "data" '
            f'input_param {{ shape {{ {dims} }} }} }}\n{extra_inputs}\n'
            + layer)


CONV = 'weight_filler { type: "gaussian" std: 0.3 } bias_filler { type: "gaussian" std: 0.3 }'

CASES = {
    # vision
    "conv-grouped-dilated": single(f'''layer {{ name: "c" type: "Convolution"
      bottom: "data" top: "c" convolution_param {{ num_output: 6 group: 3
      kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 0 pad_w: 2
      dilation: 2 {CONV} }} }}'''),
    "conv-1x1-no-bias": single(f'''layer {{ name: "c" type: "Convolution"
      bottom: "data" top: "c" convolution_param {{ num_output: 4 kernel_size: 1
      bias_term: false {CONV} }} }}'''),
    "deconv-grouped": single(f'''layer {{ name: "d" type: "Deconvolution"
      bottom: "data" top: "d" convolution_param {{ num_output: 6 group: 3
      kernel_size: 4 stride: 2 pad: 1 dilation: 2 {CONV} }} }}'''),
    "pool-max-ceil-clip": single('''layer { name: "p" type: "Pooling"
      bottom: "data" top: "p" pooling_param { pool: MAX kernel_size: 3
      stride: 2 pad: 1 } }''', (1, 2, 10, 7)),
    "pool-ave-ceil-overhang": single('''layer { name: "p" type: "Pooling"
      bottom: "data" top: "p" pooling_param { pool: AVE kernel_size: 3
      stride: 2 pad: 1 } }''', (1, 2, 10, 8)),
    "pool-ave-ceil-nopad": single('''layer { name: "p" type: "Pooling"
      bottom: "data" top: "p" pooling_param { pool: AVE kernel_size: 3
      stride: 2 } }''', (1, 2, 10, 8)),
    "pool-ave-floor": single('''layer { name: "p" type: "Pooling"
      bottom: "data" top: "p" pooling_param { pool: AVE kernel_h: 3
      kernel_w: 2 stride: 2 pad_h: 1 pad_w: 0 round_mode: FLOOR } }''', (1, 2, 10, 9)),
    "pool-stochastic-test": single('''layer { name: "a" type: "AbsVal"
      bottom: "data" top: "a" }
      layer { name: "p" type: "Pooling" bottom: "a" top: "p"
      pooling_param { pool: STOCHASTIC kernel_size: 3 stride: 2 } }''',
                                   (1, 2, 10, 9)),
    "spp": single('''layer { name: "s1" type: "SPP" bottom: "data" top: "s1"
      spp_param { pyramid_height: 3 } }
      layer { name: "s2" type: "SPP" bottom: "data" top: "s2"
      spp_param { pyramid_height: 2 pool: AVE } }
      layer { name: "s3" type: "SPP" bottom: "data" top: "s3"
      spp_param { pyramid_height: 1 } }''', (2, 3, 13, 10)),
    "pool-global": single('''layer { name: "p" type: "Pooling"
      bottom: "data" top: "p" pooling_param { pool: MAX global_pooling: true
      } }'''),
    "lrn-across": single('''layer { name: "n" type: "LRN" bottom: "data"
      top: "n" lrn_param { local_size: 3 alpha: 0.5 beta: 0.6 k: 2.5 } }''',
                         (2, 7, 4, 4)),
    "lrn-within": single('''layer { name: "n" type: "LRN" bottom: "data"
      top: "n" lrn_param { local_size: 3 alpha: 0.5 beta: 0.6 k: 2.5
      norm_region: WITHIN_CHANNEL } }''', (2, 3, 6, 5)),
    # common
    "ip-axis-2": single(f'''layer {{ name: "ip" type: "InnerProduct"
      bottom: "data" top: "ip" inner_product_param {{ num_output: 5 axis: 2
      {CONV} }} }}'''),
    "ip-transpose": single(f'''layer {{ name: "ip" type: "InnerProduct"
      bottom: "data" top: "ip" inner_product_param {{ num_output: 5
      transpose: true {CONV} }} }}'''),
    "reshape-axis": single('''layer { name: "r" type: "Reshape" bottom: "data"
      top: "r" reshape_param { shape { dim: 0 dim: -1 dim: 3 } axis: 1
      num_axes: 2 } }'''),
    "reshape-infer": single('''layer { name: "r" type: "Reshape"
      bottom: "data" top: "r" reshape_param { shape { dim: 0 dim: 3 dim: -1
      } } }'''),
    "flatten-axes": single('''layer { name: "f" type: "Flatten" bottom: "data"
      top: "f" flatten_param { axis: 1 end_axis: 2 } }'''),
    "flatten": single('''layer { name: "f" type: "Flatten" bottom: "data"
      top: "f" }'''),
    "concat-slice": single('''layer { name: "s" type: "Slice" bottom: "data"
      top: "a" top: "b" top: "c" slice_param { axis: 3 slice_point: 2
      slice_point: 7 } }
      layer { name: "cat" type: "Concat" bottom: "c" bottom: "a" top: "cat"
      concat_param { axis: 3 } }'''),
    "crop": single('''layer { name: "crop" type: "Crop" bottom: "data"
      bottom: "ref" top: "crop" crop_param { axis: 1 offset: 1 offset: 2
      offset: 3 } }''', extra_inputs='''layer { name: "ref" type: "Input"
      top: "ref" input_param { shape { dim: 2 dim: 2 dim: 5 dim: 6 } } }'''),
    "eltwise-coeffs": single('''layer { name: "sp" type: "Split"
      bottom: "data" top: "x1" top: "x2" top: "x3" }
      layer { name: "e" type: "Eltwise" bottom: "x1" bottom: "x2"
      bottom: "x3" top: "e" eltwise_param { coeff: 0.5 coeff: -2 coeff: 1 } }
      layer { name: "p" type: "Eltwise" bottom: "e" bottom: "x1" top: "p"
      eltwise_param { operation: PROD } }
      layer { name: "m" type: "Eltwise" bottom: "p" bottom: "x3" top: "m"
      eltwise_param { operation: MAX } }'''),
    "softmax-axis": single('''layer { name: "s" type: "Softmax"
      bottom: "data" top: "s" softmax_param { axis: 2 } }'''),
    "reduction": single('''layer { name: "r1" type: "Reduction" bottom: "data"
      top: "r1" reduction_param { operation: ASUM axis: 2 coeff: 0.5 } }
      layer { name: "r2" type: "Reduction" bottom: "data" top: "r2"
      reduction_param { operation: SUMSQ axis: 1 } }
      layer { name: "r3" type: "Reduction" bottom: "data" top: "r3"
      reduction_param { operation: MEAN axis: -1 coeff: 3 } }
      layer { name: "r4" type: "Reduction" bottom: "data" top: "r4" }'''),
    "argmax": single('''layer { name: "a1" type: "ArgMax" bottom: "data"
      top: "a1" }
      layer { name: "a2" type: "ArgMax" bottom: "data" top: "a2"
      argmax_param { out_max_val: true top_k: 3 } }
      layer { name: "a3" type: "ArgMax" bottom: "data" top: "a3"
      argmax_param { axis: 1 } }
      layer { name: "a4" type: "ArgMax" bottom: "data" top: "a4"
      argmax_param { axis: 3 top_k: 2 out_max_val: true } }'''),
    "tile": single('''layer { name: "t" type: "Tile" bottom: "data" top: "t"
      tile_param { axis: 2 tiles: 3 } }'''),
    # normalisation
    "batchnorm-scale-factor": single('''layer { name: "bn" type: "BatchNorm"
      bottom: "data" top: "data" batch_norm_param { eps: 0.01 } }'''),
    "batchnorm-batch-stats": single('''layer { name: "bn" type: "BatchNorm"
      bottom: "data" top: "bn" batch_norm_param { use_global_stats: false }
      }''', (4, 3, 5, 5)),
    "scale-axis-num-axes": single('''layer { name: "s" type: "Scale"
      bottom: "data" top: "s" scale_param { axis: 1 num_axes: 2
      bias_term: true } }'''),
    "scale-two-bottoms": single('''layer { name: "s" type: "Scale"
      bottom: "data" bottom: "w" top: "s" scale_param { axis: 0 } }''',
                                extra_inputs='''layer { name: "w" type: "Input"
      top: "w" input_param { shape { dim: 2 dim: 3 } } }'''),
    "bias-axis": single('''layer { name: "b" type: "Bias" bottom: "data"
      top: "b" bias_param { axis: 2 num_axes: -1 } }'''),
    "mvn": single('''layer { name: "m1" type: "MVN" bottom: "data" top: "m1" }
      layer { name: "m2" type: "MVN" bottom: "data" top: "m2"
      mvn_param { across_channels: true normalize_variance: false } }'''),
    # neurons
    "neurons": single('''layer { name: "r" type: "ReLU" bottom: "data"
      top: "r" relu_param { negative_slope: 0.1 } }
      layer { name: "e" type: "ELU" bottom: "r" top: "e" elu_param { alpha: 0.3 } }
      layer { name: "s" type: "Sigmoid" bottom: "e" top: "s" }
      layer { name: "t" type: "TanH" bottom: "data" top: "t" }
      layer { name: "a" type: "AbsVal" bottom: "data" top: "a" }
      layer { name: "b" type: "BNLL" bottom: "data" top: "b" }
      layer { name: "c" type: "Clip" bottom: "data" top: "c"
      clip_param { min: -0.5 max: 0.7 } }
      layer { name: "w" type: "Swish" bottom: "data" top: "w"
      swish_param { beta: 1.5 } }
      layer { name: "th" type: "Threshold" bottom: "data" top: "th"
      threshold_param { threshold: 0.2 } }'''),
    "power-exp-log": single('''layer { name: "a" type: "AbsVal" bottom: "data"
      top: "a" }
      layer { name: "p" type: "Power" bottom: "a" top: "p"
      power_param { power: 1.5 scale: 2 shift: 0.5 } }
      layer { name: "e" type: "Exp" bottom: "data" top: "e"
      exp_param { base: 2 scale: 0.5 shift: 0.1 } }
      layer { name: "l" type: "Log" bottom: "p" top: "l"
      log_param { base: 10 scale: 3 shift: 1 } }'''),
    "prelu": single('''layer { name: "p1" type: "PReLU" bottom: "data"
      top: "p1" }
      layer { name: "p2" type: "PReLU" bottom: "data" top: "p2"
      prelu_param { channel_shared: true } }'''),
    "dropout-in-place": single('''layer { name: "d" type: "Dropout"
      bottom: "data" top: "r" }
      layer { name: "r" type: "ReLU" bottom: "r" top: "r" }'''),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_layer_exports_exactly(tmp_path, case):
    net = net_from_text(tmp_path, CASES[case])
    result, report = export_and_check(net, tmp_path)
    tops = {t for node in net.graph for t in node.tops
            if node.type not in ("Input", "Split")}
    compared = {r.blob for r in report.rows}
    assert tops <= compared, f"not compared: {tops - compared}"


def test_pooling_pads_reproduce_caffe_sizes():
    from kaffe.onnx.export_layers import pool_end_pads
    # 10 with k3 s2 p1: Caffe ceil gives 6 windows (last starts at 9 < 11).
    assert pool_end_pads((10,), (3,), (2,), (1,), (6,)) == [2]
    # 7 with k3 s2 p1: ceil would give 5, the clip rule makes it 4.
    assert pool_end_pads((7,), (3,), (2,), (1,), (4,)) == [1]
    # FLOOR without padding never needs an end pad.
    assert pool_end_pads((10,), (3,), (2,), (0,), (4,)) == [0]


def test_dropout_writes_no_node(tmp_path):
    net = net_from_text(tmp_path, CASES["dropout-in-place"])
    result, _ = export_and_check(net, tmp_path)
    ops = [n.op_type for n in result.model.graph.node]
    assert ops == ["Relu"]
    assert any("Dropout" in note for note in result.notes)


def test_unsupported_layer_is_named(tmp_path):
    from kaffe.errors import KaffeConfigError
    from kaffe.onnx import export
    net = net_from_text(tmp_path, single('''layer { name: "lstm" type: "LSTM"
      bottom: "data" bottom: "cont" top: "h" recurrent_param {
      num_output: 4 weight_filler { type: "gaussian" std: 0.1 } } }''',
      (3, 2, 5), extra_inputs='''layer { name: "cont" type: "Input"
      top: "cont" input_param { shape { dim: 3 dim: 2 } } }'''))
    with pytest.raises(KaffeConfigError, match=r"layer 'lstm' \(LSTM\).*ONNX"):
        export(net, str(tmp_path / "m.onnx"))
    assert not (tmp_path / "m.onnx").exists()


def test_dynamic_batch_runs_other_batch_sizes(tmp_path):
    import onnxruntime as ort
    net = net_from_text(tmp_path, CASES["ip-axis-2"])
    result, _ = export_and_check(net, tmp_path, dynamic_batch=True)
    session = ort.InferenceSession(str(tmp_path / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((5, 3, 9, 11)).astype(
        np.float32)
    (y,) = session.run(None, {"data": x})
    net.blobs["data"].reshape(5, 3, 9, 11)
    net.reshape()
    np.testing.assert_allclose(y, net.forward(data=x)["ip"], rtol=1e-4,
                               atol=1e-5)


@pytest.mark.parametrize("opset", [13, 18, 21])
def test_opsets(tmp_path, opset):
    net = net_from_text(tmp_path, CASES["reduction"])
    result, _ = export_and_check(net, tmp_path, opset=opset)
    assert result.model.opset_import[0].version == opset


def test_bad_opset_is_refused(tmp_path):
    from kaffe.errors import KaffeConfigError
    from kaffe.onnx import export
    net = net_from_text(tmp_path, CASES["flatten"])
    with pytest.raises(KaffeConfigError, match="opset"):
        export(net, None, opset=9)


def test_pooling_sweep_matches_caffe_sizes_and_values(tmp_path):
    """Every kernel/stride/pad/rounding combination of a small sweep gives
    Caffe's pooled size and values in onnxruntime, or (an average over a
    window wholly past an unpadded input, NaN in Caffe) a named error."""
    import itertools
    from kaffe.errors import KaffeConfigError
    from kaffe.onnx import check_export, export
    failures, refused = [], 0
    for k, s, p, size, method, mode in itertools.product(
            (1, 2, 3), (1, 2, 3), (0, 1), (5, 6), ("MAX", "AVE"),
            ("CEIL", "FLOOR")):
        if p >= k or (s == 1 and method == "MAX" and mode == "FLOOR"):
            continue
        net = net_from_text(tmp_path, single(f'''layer {{ name: "p"
          type: "Pooling" bottom: "data" top: "p" pooling_param {{
          pool: {method} kernel_size: {k} stride: {s} pad: {p}
          round_mode: {mode} }} }}''', (1, 2, size, size + 1)))
        try:
            report = check_export(net, export(net, None))
        except KaffeConfigError as e:
            assert "wholly past the input" in str(e) and method == "AVE"
            refused += 1
            continue
        if not report.ok:
            failures.append((k, s, p, size, method, mode))
    assert failures == []
    assert refused < 10


def test_embed_exports_as_gather(tmp_path):
    net = net_from_text(tmp_path, single('''layer { name: "e" type: "Embed"
      bottom: "data" top: "e" embed_param { num_output: 4 input_dim: 7
      weight_filler { type: "gaussian" std: 1 } } }''', (2, 3)))
    indices = np.array([[0, 6, 3], [2, 2, 5]], dtype=np.float32)
    result, _ = export_and_check(net, tmp_path, {"data": indices})
    assert "Gather" in [n.op_type for n in result.model.graph.node]
