"""Whole-net gradient parity with PyTorch autograd.

Each net is written here as prototxt, built by kaffe in float64 with weights
from its fillers, and run forward + backward. The same computation is then
written directly with torch.nn.functional from Caffe's semantics
(docs caffe-reference.md §1, checked against BVLC/caffe's layer sources),
starting from kaffe's weights, and differentiated by autograd. Compared: every
blob's data (split copies included), the loss values and the weighted total,
every parameter's diff, and the diffs of inputs and intermediate blobs.
caffe.proto's float fields (negative_slope, LRN alpha/beta, loss_weight) are
float32 even in a double net, so the torch side uses their float32 values.

Where torch's built-ins are used for Caffe semantics (ceil-mode pooling, LRN
across channels) ``test_torch_pooling_builtins_encode_caffe`` first checks
them against a loop transcription of Caffe's ``pooling_layer.cpp``.
"""
import numpy as np
import pytest

import kaffe

torch = pytest.importorskip("torch", reason="torch (test extra) not installed")
F = torch.nn.functional

RTOL, ATOL = 1e-9, 1e-11


def f32(value):
    """A float field of caffe.proto (negative_slope, alpha, beta, k, coeff,
    loss_weight): Caffe reads it as float32, also in a double net."""
    return float(np.float32(value))

GAUSS = 'weight_filler { type: "gaussian" std: 0.3 } bias_filler { type: "gaussian" std: 0.3 }'


# -- Caffe's semantics, written for torch ----------------------------------
def caffe_pooled_size(size, kernel, stride, pad, any_pad, ceil=True):
    """Caffe's PoolingLayer::Reshape for one axis. ``any_pad`` is
    ``pad_h || pad_w``: Caffe applies the clip rule to BOTH axes when either
    is padded."""
    span = size + 2 * pad - kernel
    out = (-(-span // stride) if ceil else span // stride) + 1
    if any_pad and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def caffe_pool_loops(x, method, kernel, stride, pad):
    """Direct transcription of Caffe's Forward_cpu (MAX and AVE), in NumPy."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    any_pad = bool(ph or pw)
    oh = caffe_pooled_size(h, kh, sh, ph, any_pad)
    ow = caffe_pooled_size(w, kw, sw, pw, any_pad)
    y = np.empty((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            hs, ws = i * sh - ph, j * sw - pw
            if method == "MAX":
                he, we = min(hs + kh, h), min(ws + kw, w)
                hs, ws = max(hs, 0), max(ws, 0)
                y[:, :, i, j] = x[:, :, hs:he, ws:we].max(axis=(2, 3))
            else:
                he, we = min(hs + kh, h + ph), min(ws + kw, w + pw)
                pool_size = (he - hs) * (we - ws)
                hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
                y[:, :, i, j] = x[:, :, hs:he, ws:we].sum(axis=(2, 3)) / pool_size
    return y


def pool(x, method, kernel=None, stride=1, pad=0, ceil=True):
    """Caffe pooling via torch built-ins (valid whenever some pad > 0, or the
    last window starts inside the image: torch applies the clip rule always,
    Caffe only when padded). kernel None = global pooling."""
    kernel = tuple(x.shape[2:]) if kernel is None else kernel
    if method == "MAX":
        return F.max_pool2d(x, kernel, stride, pad, ceil_mode=ceil)
    return F.avg_pool2d(x, kernel, stride, pad, ceil_mode=ceil, count_include_pad=True)


def lrn_within(x, n, alpha, beta):
    """WITHIN_CHANNEL: x·(1 + α·mean_{n×n}(x²))^−β, zero padding, divisor n²
    (Caffe's Split+Power+AVE pool+Power+Eltwise PROD; lrn_param.k unused)."""
    N, C, H, W = x.shape
    box = torch.ones(1, 1, n, n, dtype=x.dtype)
    sums = F.conv2d((x * x).reshape(N * C, 1, H, W), box, padding=(n - 1) // 2)
    return x * (1 + alpha * sums.reshape(N, C, H, W) / n ** 2) ** (-beta)


def conv(x, P, name, **kw):
    blobs = P[name]
    return F.conv2d(x, blobs[0], blobs[1] if len(blobs) > 1 else None, **kw)


def inner_product(x, P, name, axis=1, transpose=False):
    w, b = P[name]
    flat = x.reshape(*x.shape[:axis], -1)
    return flat @ (w if transpose else w.T) + b


def softmax_loss(z, label, ignore=None, normalization="VALID"):
    """SoftmaxWithLoss over axis 1: −Σ log p[label] / max(1, normalizer)."""
    lab = label.reshape(z.shape[0], *z.shape[2:]).long()
    valid = lab != ignore if ignore is not None else torch.ones_like(lab, dtype=torch.bool)
    logp = F.log_softmax(z, dim=1)
    picked = logp.gather(1, torch.where(valid, lab, 0).unsqueeze(1)).squeeze(1)
    total = -(picked * valid).sum()
    normalizer = {"VALID": int(valid.sum()), "FULL": lab.numel(),
                  "BATCH_SIZE": z.shape[0], "NONE": 1}[normalization]
    return total / max(1, normalizer)


def euclidean_loss(a, b):
    return ((a - b) ** 2).sum() / (2 * a.shape[0])


def accuracy(z, label, top_k=1, ignore=None):
    """Caffe's Accuracy: correct if fewer than top_k classes score >= the
    true one, besides itself (ties count against); ignored labels skipped."""
    lab = label.long()
    valid = lab != ignore if ignore is not None else torch.ones_like(lab, dtype=torch.bool)
    true_score = z.gather(1, torch.where(valid, lab, 0)[:, None])
    correct = (((z >= true_score).sum(1) - 1) < top_k) & valid
    return correct.sum().double() / max(1, int(valid.sum()))


# -- harness ------------------------------------------------------------------
def build(tmp_path, name, text, seed=5):
    path = tmp_path / f"{name}.prototxt"
    path.write_text(text)
    kaffe.set_random_seed(seed)
    return kaffe.Net(str(path), kaffe.TRAIN, dtype=np.float64)


def leaf(array, grad=True):
    return torch.tensor(np.array(array, dtype=np.float64), requires_grad=grad)


def check_parity(net, feeds, torch_net, loss_weights, grad_inputs=()):
    """Run kaffe and ``torch_net`` and compare everything.

    torch_net(X, P) returns (acts, grads): acts maps blob name -> the torch
    tensor its data must equal; grads maps blob name -> the tensor whose
    .grad its diff must equal (they differ for in-place blobs, whose diff is
    the gradient w.r.t. the layer's input). loss_weights: loss blob ->
    loss_weight as written in the prototxt; torch differentiates
    Σ f32(weight)·loss.
    """
    for name, value in feeds.items():
        net.blobs[name].data[...] = value
    net.forward()
    net.clear_param_diffs()
    net.backward()

    P = {layer: [leaf(b.data) for b in blobs] for layer, blobs in net.params.items()}
    X = {name: leaf(value, name in grad_inputs) for name, value in feeds.items()}
    acts, grads = torch_net(X, P)
    acts = {**X, **acts}
    for name in grad_inputs:
        grads.setdefault(name, X[name])
    for t in grads.values():
        if not t.is_leaf:
            t.retain_grad()
    weights = {name: w for name, w in net.blob_loss_weights.items() if w}
    assert weights == {name: f32(w) for name, w in loss_weights.items()}
    total = sum(f32(w) * acts[name] for name, w in loss_weights.items())
    total.backward()
    total = total.item()

    # Data of every blob (split copies equal their source).
    for name, blob in net.blobs.items():
        source = name
        if name not in acts:
            candidates = [k for k in acts if name.startswith(k + "_") and "_split_" in name]
            assert candidates, f"blob {name!r} is not modelled in torch"
            source = max(candidates, key=len)
        expected = acts[source].detach().numpy()
        assert blob.data.shape == expected.shape, (name, blob.data.shape, expected.shape)
        np.testing.assert_allclose(blob.data, expected, rtol=RTOL, atol=ATOL,
                                   err_msg=f"data of blob {name}")
    kaffe_total = sum(w * float(net.blobs[n].data) for n, w in weights.items())
    np.testing.assert_allclose(kaffe_total, total, rtol=RTOL, atol=ATOL,
                               err_msg="weighted total loss")
    # Diffs of parameters, inputs and intermediate blobs.
    for layer, blobs in net.params.items():
        for i, blob in enumerate(blobs):
            assert P[layer][i].grad is not None, f"{layer} param {i} gets no torch gradient"
            np.testing.assert_allclose(blob.diff, P[layer][i].grad.numpy(), rtol=RTOL,
                                       atol=ATOL, err_msg=f"diff of {layer} param {i}")
    for name, t in grads.items():
        assert t.grad is not None, f"blob {name} gets no torch gradient"
        np.testing.assert_allclose(net.blobs[name].diff, t.grad.numpy(), rtol=RTOL,
                                   atol=ATOL, err_msg=f"diff of blob {name}")


def inputs(*shapes):
    return "".join(
        f'layer {{ name: "{n}" type: "Input" top: "{n}" input_param {{ shape {{ '
        + " ".join(f"dim: {d}" for d in dims) + " } } }\n"
        for n, dims in shapes)


# -- net 1: convolutions, every pooling mode, concat, two losses --------------
VISION = 'name: "vision" force_backward: true\n' + inputs(
    ("data", (3, 4, 12, 11)), ("label", (3,)), ("target", (3, 4))) + f"""
layer {{ name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param {{ num_output: 6 kernel_size: 3 pad: 1 group: 2 {GAUSS} }} }}
layer {{ name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" relu_param {{ negative_slope: 0.1 }} }}
layer {{ name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2"
        convolution_param {{ num_output: 6 kernel_size: 3 dilation: 2 pad: 1 group: 3 bias_term: false
                            weight_filler {{ type: "gaussian" std: 0.3 }} }} }}
layer {{ name: "conv3" type: "Convolution" bottom: "conv2" top: "conv3"
        convolution_param {{ num_output: 5 kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 2
                            pad_h: 2 pad_w: 1 {GAUSS} }} }}
layer {{ name: "relu3" type: "ReLU" bottom: "conv3" top: "relu3" relu_param {{ negative_slope: 0.2 }} }}
layer {{ name: "max_pad" type: "Pooling" bottom: "relu3" top: "max_pad"
        pooling_param {{ pool: MAX kernel_size: 3 stride: 2 pad: 1 }} }}
layer {{ name: "max_clip" type: "Pooling" bottom: "relu3" top: "max_clip"
        pooling_param {{ pool: MAX kernel_size: 2 stride: 2 pad: 1 }} }}
layer {{ name: "max_nopad" type: "Pooling" bottom: "relu3" top: "max_nopad"
        pooling_param {{ pool: MAX kernel_size: 3 stride: 2 }} }}
layer {{ name: "ave_pad" type: "Pooling" bottom: "relu3" top: "ave_pad"
        pooling_param {{ pool: AVE kernel_size: 3 stride: 2 pad: 1 }} }}
layer {{ name: "ave_clip" type: "Pooling" bottom: "relu3" top: "ave_clip"
        pooling_param {{ pool: AVE kernel_h: 3 kernel_w: 2 stride: 2 pad: 1 }} }}
layer {{ name: "ave_nopad" type: "Pooling" bottom: "relu3" top: "ave_nopad"
        pooling_param {{ pool: AVE kernel_size: 3 stride: 2 }} }}
layer {{ name: "gave" type: "Pooling" bottom: "relu3" top: "gave"
        pooling_param {{ pool: AVE global_pooling: true }} }}
layer {{ name: "gmax" type: "Pooling" bottom: "relu3" top: "gmax"
        pooling_param {{ pool: MAX global_pooling: true }} }}
layer {{ name: "cat_a" type: "Concat" bottom: "max_pad" bottom: "max_clip" bottom: "ave_pad"
        bottom: "ave_clip" top: "cat_a" }}
layer {{ name: "cat_b" type: "Concat" bottom: "max_nopad" bottom: "ave_nopad" top: "cat_b"
        concat_param {{ axis: 3 }} }}
layer {{ name: "cat_g" type: "Concat" bottom: "gave" bottom: "gmax" top: "cat_g" }}
layer {{ name: "ip_a" type: "InnerProduct" bottom: "cat_a" top: "ip_a"
        inner_product_param {{ num_output: 4 {GAUSS} }} }}
layer {{ name: "ip_b" type: "InnerProduct" bottom: "cat_b" top: "ip_b"
        inner_product_param {{ num_output: 4 {GAUSS} }} }}
layer {{ name: "ip_g" type: "InnerProduct" bottom: "cat_g" top: "ip_g"
        inner_product_param {{ num_output: 4 {GAUSS} }} }}
layer {{ name: "score" type: "Eltwise" bottom: "ip_a" bottom: "ip_b" bottom: "ip_g" top: "score" }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss"
        loss_param {{ ignore_label: 3 }} }}
layer {{ name: "reg" type: "EuclideanLoss" bottom: "ip_g" bottom: "target" top: "reg"
        loss_weight: 0.5 }}
"""

# (H, W) of relu3 is (6, 5); pooled (H, W) by Caffe's formula, with what each shows.
VISION_POOLS = {
    "max_pad": ("MAX", (3, 3), (2, 2), (1, 1)),    # (4, 3)
    "max_clip": ("MAX", (2, 2), (2, 2), (1, 1)),   # W: 4 by ceil, clip rule -> 3
    "max_nopad": ("MAX", (3, 3), (2, 2), (0, 0)),  # H: last window overhangs
    "ave_pad": ("AVE", (3, 3), (2, 2), (1, 1)),    # H: overhang past pad, divisor 2
    "ave_clip": ("AVE", (3, 2), (2, 2), (1, 1)),   # W: clip rule
    "ave_nopad": ("AVE", (3, 3), (2, 2), (0, 0)),  # H: overhang, divisor 2
}


def torch_vision(X, P):
    a = {}
    pre1 = conv(X["data"], P, "conv1", padding=1, groups=2)
    a["conv1"] = F.leaky_relu(pre1, f32(0.1))
    a["conv2"] = conv(a["conv1"], P, "conv2", padding=1, dilation=2, groups=3)
    a["conv3"] = conv(a["conv2"], P, "conv3", stride=2, padding=(2, 1))
    a["relu3"] = F.leaky_relu(a["conv3"], f32(0.2))
    for name, (method, k, s, p) in VISION_POOLS.items():
        a[name] = pool(a["relu3"], method, k, s, p)
    a["gave"] = pool(a["relu3"], "AVE")
    a["gmax"] = pool(a["relu3"], "MAX")
    a["cat_a"] = torch.cat([a["max_pad"], a["max_clip"], a["ave_pad"], a["ave_clip"]], 1)
    a["cat_b"] = torch.cat([a["max_nopad"], a["ave_nopad"]], 3)
    a["cat_g"] = torch.cat([a["gave"], a["gmax"]], 1)
    for name in ("ip_a", "ip_b", "ip_g"):
        a[name] = inner_product(a["cat" + name[2:]], P, name)
    a["score"] = a["ip_a"] + a["ip_b"] + a["ip_g"]
    a["loss"] = softmax_loss(a["score"], X["label"], ignore=3)
    a["reg"] = euclidean_loss(a["ip_g"], X["target"])
    grads = {k: v for k, v in a.items()}
    grads["conv1"] = pre1  # in-place ReLU: the blob's diff is w.r.t. its input
    return a, grads


def test_vision_net_matches_autograd(tmp_path):
    net = build(tmp_path, "vision", VISION)
    rng = np.random.default_rng(0)
    feeds = {"data": rng.standard_normal((3, 4, 12, 11)),
             "label": np.array([1.0, 3.0, 2.0]),  # sample 1 ignored: VALID divides by 2
             "target": rng.standard_normal((3, 4))}
    assert net.blobs["relu3"].shape == (3, 5, 6, 5)
    for name, (_, k, s, p) in VISION_POOLS.items():
        any_pad = any(p)
        expected = tuple(caffe_pooled_size(n, *args, any_pad) for n, args in
                         zip((6, 5), zip(k, s, p)))
        assert net.blobs[name].shape[2:] == expected, name
    assert net.blobs["max_clip"].shape[3] == 3  # the clip rule removed a column
    check_parity(net, feeds, torch_vision, {"loss": 1, "reg": 0.5}, grad_inputs=("data", "target"))


# -- net 2: LRN both ways, Eltwise SUM/PROD/MAX, Sigmoid/TanH, Silence ---------
NORM = 'name: "norm" force_backward: true\n' + inputs(
    ("data", (2, 6, 7, 6)), ("target", (2, 3))) + f"""
layer {{ name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param {{ num_output: 6 kernel_size: 3 pad: 1 {GAUSS} }} }}
layer {{ name: "across" type: "LRN" bottom: "conv" top: "across"
        lrn_param {{ local_size: 5 alpha: 0.7 beta: 0.75 k: 2 }} }}
layer {{ name: "within" type: "LRN" bottom: "conv" top: "within"
        lrn_param {{ local_size: 3 alpha: 0.4 beta: 0.6 k: 5 norm_region: WITHIN_CHANNEL }} }}
layer {{ name: "tanh" type: "TanH" bottom: "conv" top: "tanh" }}
layer {{ name: "sig" type: "Sigmoid" bottom: "conv" top: "sig" }}
layer {{ name: "silence" type: "Silence" bottom: "sig" }}
layer {{ name: "e_sum" type: "Eltwise" bottom: "across" bottom: "within" bottom: "tanh" top: "e_sum"
        eltwise_param {{ operation: SUM coeff: 0.5 coeff: -2 coeff: 1.5 }} }}
layer {{ name: "e_prod" type: "Eltwise" bottom: "across" bottom: "within" bottom: "sig" top: "e_prod"
        eltwise_param {{ operation: PROD }} }}
layer {{ name: "e_max" type: "Eltwise" bottom: "across" bottom: "within" bottom: "tanh" top: "e_max"
        eltwise_param {{ operation: MAX }} }}
layer {{ name: "cat" type: "Concat" bottom: "e_sum" bottom: "e_prod" bottom: "e_max" top: "cat" }}
layer {{ name: "relu" type: "ReLU" bottom: "cat" top: "cat" }}
layer {{ name: "pool" type: "Pooling" bottom: "cat" top: "pool"
        pooling_param {{ pool: AVE kernel_size: 3 stride: 2 pad: 1 }} }}
layer {{ name: "flat" type: "Flatten" bottom: "pool" top: "flat" }}
layer {{ name: "ip" type: "InnerProduct" bottom: "flat" top: "ip"
        inner_product_param {{ num_output: 3 transpose: true {GAUSS} }} }}
layer {{ name: "loss" type: "EuclideanLoss" bottom: "ip" bottom: "target" top: "loss"
        loss_weight: 2.5 }}
"""


def torch_norm(X, P):
    a = {}
    a["conv"] = conv(X["data"], P, "conv", padding=1)
    a["across"] = F.local_response_norm(a["conv"], 5, alpha=f32(0.7), beta=0.75, k=2.0)
    a["within"] = lrn_within(a["conv"], 3, alpha=f32(0.4), beta=f32(0.6))
    a["tanh"] = torch.tanh(a["conv"])
    a["sig"] = torch.sigmoid(a["conv"])
    a["e_sum"] = 0.5 * a["across"] - 2 * a["within"] + 1.5 * a["tanh"]
    a["e_prod"] = a["across"] * a["within"] * a["sig"]
    a["e_max"] = torch.maximum(torch.maximum(a["across"], a["within"]), a["tanh"])
    pre = torch.cat([a["e_sum"], a["e_prod"], a["e_max"]], 1)
    a["cat"] = F.relu(pre)
    a["pool"] = pool(a["cat"], "AVE", 3, 2, 1)
    a["flat"] = a["pool"].reshape(2, -1)
    a["ip"] = inner_product(a["flat"], P, "ip", transpose=True)
    a["loss"] = euclidean_loss(a["ip"], X["target"])
    grads = dict(a, cat=pre)
    return a, grads


def test_lrn_eltwise_net_matches_autograd(tmp_path):
    net = build(tmp_path, "norm", NORM)
    rng = np.random.default_rng(1)
    feeds = {"data": rng.standard_normal((2, 6, 7, 6)),
             "target": rng.standard_normal((2, 3))}
    assert net.blobs["pool"].shape == (2, 18, 4, 4)
    check_parity(net, feeds, torch_norm, {"loss": 2.5}, grad_inputs=("data", "target"))


# -- net 3: InnerProduct axes, spatial + flat SoftmaxWithLoss, Accuracy -------
# No force_backward here: Caffe's Accuracy has no Backward (NOT_IMPLEMENTED).
HEADS = 'name: "heads"\n' + inputs(
    ("data", (4, 3, 5, 4)), ("label_map", (4, 5, 4)), ("label", (4,))) + f"""
layer {{ name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param {{ num_output: 5 kernel_size: 3 pad: 1 {GAUSS} }} }}
layer {{ name: "relu" type: "ReLU" bottom: "conv" top: "conv" }}
layer {{ name: "seg_loss" type: "SoftmaxWithLoss" bottom: "conv" bottom: "label_map" top: "seg_loss"
        loss_param {{ ignore_label: 255 normalization: {{norm}} }} }}
layer {{ name: "ip1" type: "InnerProduct" bottom: "conv" top: "ip1"
        inner_product_param {{ num_output: 6 axis: 2 {GAUSS} }} }}
layer {{ name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
        inner_product_param {{ num_output: 4 {GAUSS} }} }}
layer {{ name: "cls_loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "cls_loss"
        loss_weight: 0.7 loss_param {{ ignore_label: 2 }} }}
layer {{ name: "acc" type: "Accuracy" bottom: "ip2" bottom: "label" top: "acc"
        accuracy_param {{ top_k: 2 ignore_label: 2 }} }}
layer {{ name: "prob" type: "Softmax" bottom: "ip2" top: "prob" }}
"""


def torch_heads(norm):
    def run(X, P):
        a = {}
        pre = conv(X["data"], P, "conv", padding=1)
        a["conv"] = F.relu(pre)
        a["seg_loss"] = softmax_loss(a["conv"], X["label_map"], 255, norm)
        a["ip1"] = inner_product(a["conv"], P, "ip1", axis=2)
        a["ip2"] = inner_product(a["ip1"], P, "ip2")
        a["cls_loss"] = softmax_loss(a["ip2"], X["label"], 2)
        a["acc"] = accuracy(a["ip2"], X["label"], top_k=2, ignore=2)
        a["prob"] = F.softmax(a["ip2"], 1)
        grads = {k: a[k] for k in ("ip1", "ip2", "seg_loss", "cls_loss")}
        grads["conv"] = pre
        return a, grads
    return run


@pytest.mark.parametrize("norm", ["VALID", "FULL", "BATCH_SIZE", "NONE"])
def test_loss_heads_match_autograd(tmp_path, norm):
    net = build(tmp_path, "heads", HEADS.replace("{norm}", norm))
    rng = np.random.default_rng(2)
    label_map = rng.integers(0, 5, (4, 5, 4)).astype(float)
    label_map[rng.random((4, 5, 4)) < 0.3] = 255
    feeds = {"data": rng.standard_normal((4, 3, 5, 4)), "label_map": label_map,
             "label": np.array([0.0, 2.0, 3.0, 1.0])}
    assert net.blobs["ip1"].shape == (4, 5, 6)
    check_parity(net, feeds, torch_heads(norm), {"seg_loss": 1, "cls_loss": 0.7})


# -- net 4: pooling geometries, one Pooling layer each ------------------------
# (H, W, pool, kernel, stride, pad, round_mode)
GEOMETRIES = {
    "ave_overhang_past_pad": (6, 5, "AVE", (3, 3), (2, 2), (1, 1), "CEIL"),
    "max_overhang_past_pad": (6, 5, "MAX", (3, 3), (2, 2), (1, 1), "CEIL"),
    "ave_clip_rule": (5, 7, "AVE", (3, 3), (3, 3), (1, 1), "CEIL"),
    "max_clip_rule": (5, 7, "MAX", (3, 3), (3, 3), (1, 1), "CEIL"),
    "ave_overhang_no_pad": (6, 6, "AVE", (3, 2), (2, 2), (0, 0), "CEIL"),
    "max_overhang_no_pad": (6, 6, "MAX", (3, 2), (2, 2), (0, 0), "CEIL"),
    "ave_rect_floor": (7, 6, "AVE", (2, 3), (2, 1), (1, 1), "FLOOR"),
    # Caffe tests `pad_h || pad_w` and then clips BOTH axes: here W (pad 0)
    # loses its last window, which would start at W = 6, outside the image.
    "max_clip_unpadded_axis": (5, 6, "MAX", (2, 2), (2, 3), (1, 0), "CEIL"),
    "ave_clip_unpadded_axis": (5, 6, "AVE", (2, 2), (2, 3), (1, 0), "CEIL"),
}
def geometry_net(h, w, method, kernel, stride, pad, round_mode):
    return 'name: "pool" force_backward: true\n' + inputs(
        ("data", (2, 3, h, w)), ("target", (2, 3))) + f"""
layer {{ name: "pool" type: "Pooling" bottom: "data" top: "pool"
        pooling_param {{ pool: {method} kernel_h: {kernel[0]} kernel_w: {kernel[1]}
                        stride_h: {stride[0]} stride_w: {stride[1]} pad_h: {pad[0]} pad_w: {pad[1]}
                        round_mode: {round_mode} }} }}
layer {{ name: "ip" type: "InnerProduct" bottom: "pool" top: "ip"
        inner_product_param {{ num_output: 3 {GAUSS} }} }}
layer {{ name: "loss" type: "EuclideanLoss" bottom: "ip" bottom: "target" top: "loss" }}
"""


@pytest.mark.parametrize("key", sorted(GEOMETRIES))
def test_pooling_geometry_matches_autograd(tmp_path, key):
    h, w, method, kernel, stride, pad, round_mode = GEOMETRIES[key]
    ceil = round_mode == "CEIL"
    expected = tuple(caffe_pooled_size(n, k, s, p, any(pad), ceil)
                     for n, k, s, p in zip((h, w), kernel, stride, pad))
    net = build(tmp_path, key, geometry_net(h, w, method, kernel, stride, pad, round_mode))
    assert net.blobs["pool"].shape == (2, 3) + expected

    def run(X, P):
        a = {"pool": pool(X["data"], method, kernel, stride, pad, ceil)}
        a["ip"] = inner_product(a["pool"], P, "ip")
        a["loss"] = euclidean_loss(a["ip"], X["target"])
        return a, dict(a)

    rng = np.random.default_rng(3)
    feeds = {"data": rng.standard_normal((2, 3, h, w)), "target": rng.standard_normal((2, 3))}
    check_parity(net, feeds, run, {"loss": 1}, grad_inputs=("data", "target"))


@pytest.mark.parametrize("key", [k for k in GEOMETRIES if GEOMETRIES[k][6] == "CEIL"])
def test_torch_pooling_builtins_encode_caffe(key):
    """The torch side's own check: ceil-mode max_pool2d / avg_pool2d
    (count_include_pad) equal a loop transcription of Caffe's pooling, shape,
    clip rule and AVE divisor (padding counted, overhang not) included."""
    h, w, method, kernel, stride, pad, _ = GEOMETRIES[key]
    x = np.random.default_rng(4).standard_normal((2, 3, h, w))
    expected = caffe_pool_loops(x, method, kernel, stride, pad)
    ours = pool(torch.tensor(x), method, kernel, stride, pad).numpy()
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, rtol=1e-13, atol=1e-14)


def test_torch_lrn_across_encodes_caffe():
    """F.local_response_norm equals Caffe's ACROSS_CHANNELS formula
    x·(k + α/n·Σ_{window} x²)^−β with zero-padded channels."""
    x = np.random.default_rng(5).standard_normal((2, 7, 3, 4))
    n, alpha, beta, k = 5, 0.7, 0.75, 2.0
    padded = np.pad(x * x, ((0, 0), (n // 2, n // 2), (0, 0), (0, 0)))
    sums = sum(padded[:, i:i + 7] for i in range(n))
    expected = x * (k + alpha / n * sums) ** -beta
    ours = F.local_response_norm(torch.tensor(x), n, alpha=alpha, beta=beta, k=k).numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-13, atol=1e-14)
