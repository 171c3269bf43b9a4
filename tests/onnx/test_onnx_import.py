"""ONNX → Caffe: models written by torch.onnx.export import into Caffe files
whose kaffe forward matches onnxruntime on the ONNX model.

The architectures are built here by hand (no torchvision) with random
weights and running statistics: ResNet-18, MobileNet-v2 and VGG-11 with
their layer structure intact and their widths divided (so the suite stays
fast on two cores), plus small nets for single ops and for the errors.
"""
import io
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
nn = torch.nn

import kaffe  # noqa: E402
from kaffe.errors import KaffeConfigError  # noqa: E402
from kaffe.onnx import check_import, load, save  # noqa: E402


# -- the models -----------------------------------------------------------------------
class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride,
                                                bias=False),
                                      nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.down is None else self.down(x)))


def resnet18(width=16, classes=10):
    """ResNet-18: 7×7/2 stem, 3×3/2 max pool, 4 stages × 2 basic blocks."""
    layers = [nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width),
              nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = width
    for i, mult in enumerate((1, 2, 4, 8)):
        cout = width * mult
        layers += [BasicBlock(cin, cout, 1 if i == 0 else 2),
                   BasicBlock(cout, cout, 1)]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        layers = []
        if expand != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False),
                       nn.BatchNorm2d(hidden), nn.ReLU6()]
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden,
                             bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


def mobilenet_v2(width=0.25, classes=10):
    """MobileNet-v2: the (t, c, n, s) table of the paper, ReLU6, depthwise
    convolutions, linear bottlenecks, dropout + linear classifier."""
    def ch(c):
        return max(8, int(c * width))
    table = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
             (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    cin = ch(32)
    layers = [nn.Conv2d(3, cin, 3, 2, 1, bias=False), nn.BatchNorm2d(cin),
              nn.ReLU6()]
    for t, c, n, s in table:
        for i in range(n):
            layers.append(InvertedResidual(cin, ch(c), s if i == 0 else 1, t))
            cin = ch(c)
    last = ch(1280)
    layers += [nn.Conv2d(cin, last, 1, bias=False), nn.BatchNorm2d(last),
               nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Dropout(0.2), nn.Linear(last, classes)]
    return nn.Sequential(*layers)


def vgg11(width=8, classes=10, hidden=64):
    """VGG-11 (configuration A): 8 3×3 convolutions with ReLU, 5 max pools,
    three fully connected layers with dropout."""
    cfg = [1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M"]
    layers, cin = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v * width, 3, padding=1), nn.ReLU()]
            cin = v * width
    layers += [nn.Flatten(), nn.Linear(cin, hidden), nn.ReLU(),
               nn.Dropout(), nn.Linear(hidden, hidden), nn.ReLU(),
               nn.Dropout(), nn.Linear(hidden, classes)]
    return nn.Sequential(*layers)


def randomise(model, seed=0):
    """Random weights and BatchNorm statistics (not the init's 0/1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g)
                                     * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g)
                                    + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


def to_onnx(model, shape, dynamic=True, opset=17, fold=False):
    """The model exported by torch's TorchScript-based exporter (BatchNorm
    kept as its own node unless ``fold``)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, torch.randn(*shape), buffer, dynamo=False,
            opset_version=opset, input_names=["input"],
            output_names=["output"], do_constant_folding=fold,
            dynamic_axes={"input": {0: "N"}, "output": {0: "N"}}
            if dynamic else None)
    return onnx.load_from_string(buffer.getvalue())


def import_and_check(tmp_path, model, name="net"):
    result = load(model)
    prototxt, weights = tmp_path / f"{name}.prototxt", tmp_path / f"{name}.caffemodel"
    save(result, str(prototxt), str(weights))
    net = kaffe.Net(str(prototxt), kaffe.TEST, weights=str(weights))
    report = check_import(model, net, result)
    assert report.rows, "nothing was compared"
    assert any(r.output for r in report.rows)
    assert report.ok, report.to_text()
    return result, net, report


# -- whole models -----------------------------------------------------------------------
@pytest.mark.parametrize("build, shape", [
    (resnet18, (1, 3, 64, 64)),
    (mobilenet_v2, (1, 3, 32, 32)),
    (vgg11, (1, 3, 32, 32)),
], ids=["resnet18", "mobilenet_v2", "vgg11"])
def test_torch_model_imports_and_matches_onnxruntime(tmp_path, build, shape):
    torch.manual_seed(0)
    model = randomise(build())
    result, net, report = import_and_check(tmp_path, to_onnx(model, shape))
    types = {layer.type for layer in result.net.layer}
    assert "InnerProduct" in types and "Convolution" in types
    assert "Dropout" not in types               # identities disappear
    # and kaffe's forward equals torch itself
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    out = net.forward(input=x)[result.outputs[0]]
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_batchnorm_becomes_batchnorm_and_scale(tmp_path):
    torch.manual_seed(0)
    model = randomise(resnet18(width=8))
    result, _, _ = import_and_check(tmp_path, to_onnx(model, (1, 3, 32, 32)))
    types = [layer.type for layer in result.net.layer]
    assert types.count("BatchNorm") == types.count("Scale") == 20
    assert "Eltwise" in types


def test_constant_folded_export_with_fixed_batch(tmp_path):
    torch.manual_seed(0)
    model = randomise(mobilenet_v2())
    import_and_check(tmp_path, to_onnx(model, (2, 3, 32, 32), dynamic=False,
                                       fold=True))


# -- single ops -------------------------------------------------------------------------
class SqueezeExcite(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, c // 2, 1), nn.Conv2d(c // 2, c, 1)

    def forward(self, x):
        w = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(w))))


class Arithmetic(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bias = nn.Parameter(torch.randn(c, 1, 1))
        self.scale = nn.Parameter(torch.randn(1, c, 1, 1))

    def forward(self, x):
        y = (x + self.bias) * self.scale - 0.5
        y = 2.0 * y + x / 4.0
        return torch.cat([y, 1.0 - x, x - y], 1)


class Unary(nn.Module):
    def forward(self, x):
        y = nn.functional.hardswish(x) + nn.functional.hardsigmoid(x)
        z = torch.reciprocal(torch.sqrt(torch.abs(x) + 1))
        return torch.maximum(-y, z)


class Reshapes(nn.Module):
    def forward(self, x):
        n = x.shape[0]
        y = x.view(n, -1, 4).unsqueeze(1)
        return torch.softmax(y, dim=-1).reshape(n, -1)


@pytest.mark.parametrize("module, shape", [
    (nn.Sequential(nn.Conv2d(4, 6, 3, 2, 1, dilation=2), nn.LeakyReLU(0.2),
                   nn.Conv2d(6, 6, (3, 1), padding=(1, 0), groups=3)),
     (1, 4, 15, 13)),
    (nn.Sequential(nn.ConvTranspose2d(4, 6, 4, 2, 1, groups=2), nn.ELU(0.7),
                   nn.Tanh()), (1, 4, 7, 9)),
    (nn.Sequential(nn.MaxPool2d(3, 2, ceil_mode=True), nn.AvgPool2d(3, 2, 1),
                   nn.AvgPool2d(2, 2, ceil_mode=True)), (1, 2, 17, 14)),
    (nn.Sequential(nn.PReLU(3), nn.Sigmoid(), nn.PReLU()), (1, 3, 5, 5)),
    (nn.Sequential(nn.ZeroPad2d(2), nn.Conv2d(3, 4, 5), nn.Hardtanh(-1, 2)),
     (1, 3, 8, 8)),
    (nn.Sequential(nn.Upsample(scale_factor=3), nn.Softplus()),
     (1, 4, 5, 6)),
    (nn.Sequential(SqueezeExcite(8)), (2, 8, 6, 6)),
    (Arithmetic(3), (1, 3, 4, 4)),
    (Unary(), (1, 3, 4, 4)),
    (Reshapes(), (2, 3, 4, 4)),
], ids=["conv", "deconv", "pooling", "prelu", "pad", "upsample", "se",
        "arithmetic", "unary", "reshape-softmax"])
def test_ops_import_and_match(tmp_path, module, shape):
    torch.manual_seed(0)
    import_and_check(tmp_path, to_onnx(randomise(module), shape))


def test_onnx_lrn_and_gemm_from_onnx_helper(tmp_path):
    """Ops torch does not write as such: ONNX's own LRN (torch decomposes
    its LocalResponseNorm), Gemm with alpha/beta/transB = 0, MatMul."""
    h = onnx.helper
    rng = np.random.default_rng(0)
    b = rng.standard_normal((4 * 3 * 3, 5)).astype(np.float32)
    c = rng.standard_normal(5).astype(np.float32)
    m = rng.standard_normal((5, 2)).astype(np.float32)
    graph = h.make_graph([
        h.make_node("LRN", ["x"], ["lrn"], size=5, alpha=3e-3, beta=0.6,
                    bias=2.0),
        h.make_node("Flatten", ["lrn"], ["flat"], axis=1),
        h.make_node("Gemm", ["flat", "B", "C"], ["gemm"], alpha=0.5,
                    beta=2.0),
        h.make_node("MatMul", ["gemm", "M"], ["y"])],
        "helper", [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT,
                                            [2, 4, 3, 3])],
        [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 2])],
        [onnx.numpy_helper.from_array(b, "B"),
         onnx.numpy_helper.from_array(c, "C"),
         onnx.numpy_helper.from_array(m, "M")])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    result, _, report = import_and_check(tmp_path, model)
    assert [l.type for l in result.net.layer] == [
        "Input", "LRN", "Flatten", "InnerProduct", "InnerProduct"]
    assert len(report.rows) == 4


# -- what Caffe cannot express ---------------------------------------------------------------
class Asymmetric(nn.Module):
    def forward(self, x):
        return nn.functional.pad(x, (0, 1, 0, 1))


@pytest.mark.parametrize("module, shape, match", [
    (nn.Sequential(nn.AvgPool2d(3, 2, 1, count_include_pad=False)),
     (1, 2, 8, 8), "divides by a window size"),
    (nn.Sequential(Asymmetric(), nn.Conv2d(2, 2, 3)), (1, 2, 6, 6),
     "asymmetric padding"),
    (nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear")),
     (1, 2, 4, 4), "mode 'linear' with half_pixel"),
    (nn.Sequential(nn.LogSoftmax(1)), (1, 4), "LogSoftmax"),
], ids=["avgpool-exclude-pad", "asymmetric-pad", "bilinear", "logsoftmax"])
def test_inexpressible_node_is_named(module, shape, match):
    model = to_onnx(module.eval(), shape)
    with pytest.raises(KaffeConfigError, match=match) as info:
        load(model)
    assert "ONNX" in str(info.value)


@pytest.mark.parametrize("module, shape, types", [
    (nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear",
                               align_corners=True)), (1, 2, 5, 4),
     ("Interp",)),
    (nn.Sequential(nn.ReLU6()), (1, 2, 3, 3), ("ReLU6",)),
], ids=["interp", "relu6"])
def test_fork_layers_imported_when_registered(tmp_path, module, shape, types):
    missing = [t for t in types if t not in kaffe.layer_type_list()]
    if missing:
        pytest.skip(f"fork layer types {missing} are not registered yet")
    result, _, _ = import_and_check(tmp_path, to_onnx(module.eval(), shape))
    assert {l.type for l in result.net.layer} >= set(types)


def test_symbolic_input_needs_a_shape():
    model = to_onnx(nn.Sequential(nn.ReLU()).eval(), (1, 3, 4, 4))
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "H"
    with pytest.raises(KaffeConfigError, match="--shape input="):
        load(model)
    result = load(model, shapes={"input": (2, 3, 4, 4)})
    assert list(result.net.layer[0].input_param.shape[0].dim) == [2, 3, 4, 4]
    with pytest.raises(KaffeConfigError, match="not an input"):
        load(model, shapes={"data": (1, 3, 4, 4)})


class Cut(nn.Module):
    def forward(self, x):
        return torch.clamp(x[:, 1:3, 2:-1], 0, 6)


@pytest.mark.parametrize("opset", [9, 11, 13])
def test_older_opsets_keep_their_attributes(tmp_path, opset):
    """Slice, Clip, Pad and Upsample read attributes before opsets 10/11."""
    model = nn.Sequential(Cut(), nn.ZeroPad2d(1), nn.Conv2d(2, 3, 3),
                          nn.Upsample(scale_factor=2)).eval()
    torch.manual_seed(0)
    result, _, _ = import_and_check(tmp_path, to_onnx(model, (1, 4, 6, 5),
                                                      opset=opset))
    types = [layer.type for layer in result.net.layer]
    assert types.count("Slice") == 2 and "Deconvolution" in types


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle as torch writes it (view, transpose)."""

    def forward(self, x):
        n, c, h, w = x.shape
        y = x.view(n, 3, c // 3, h, w).transpose(1, 2).contiguous()
        return y.view(n, c, h, w)


def test_transpose_imports_as_permute(tmp_path):
    if "Permute" not in kaffe.layer_type_list():
        pytest.skip("the Permute fork layer is not registered")
    model = to_onnx(ChannelShuffle().eval(), (2, 6, 3, 4))
    result, _, _ = import_and_check(tmp_path, model)
    assert "Permute" in [layer.type for layer in result.net.layer]


def test_max_roi_pool_imports_as_roi_pooling(tmp_path):
    if "ROIPooling" not in kaffe.layer_type_list():
        pytest.skip("the ROIPooling fork layer is not registered")
    h = onnx.helper
    graph = h.make_graph(
        [h.make_node("MaxRoiPool", ["x", "rois"], ["y"], pooled_shape=[2, 3],
                     spatial_scale=0.5)], "roi",
        [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 10, 12]),
         h.make_tensor_value_info("rois", onnx.TensorProto.FLOAT, [2, 5])],
        [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    result = load(model)
    save(result, str(tmp_path / "r.prototxt"), str(tmp_path / "r.caffemodel"))
    net = kaffe.Net(str(tmp_path / "r.prototxt"), kaffe.TEST)
    x = np.random.default_rng(0).standard_normal((1, 3, 10, 12)).astype(
        np.float32)
    rois = np.array([[0, 1, 2, 15, 17], [0, 4.4, 0, 9, 6.6]], np.float32)
    report = check_import(model, net, result, inputs={"x": x, "rois": rois})
    assert report.ok, report.to_text()
