"""The net as the doctor's checks see it: a JSON-friendly description.

Everything here reads the net through its public graph (``net.graph``,
``net.blob_shapes()``, ``net.blob_loss_weights``) and the weight files through
kaffe's readers; nothing runs a layer. The same description is written to a
``--stats`` directory (``meta.json``) so that the checks work on a recorded
run exactly as on a live one.
"""
import os

from ..errors import KaffeConfigError

# Layer types whose second bottom holds class labels for the first bottom's
# scores (along softmax_param.axis / accuracy_param.axis / axis 1).
LABELLED = ("SoftmaxWithLoss", "Accuracy", "MultinomialLogisticLoss",
            "InfogainLoss")
DATA_TYPES = ("Data", "ImageData", "HDF5Data", "MemoryData", "DummyData",
              "Input", "WindowData", "AnnotatedData", "Python")
# -log(FLT_MIN): a softmax loss stuck here is saturated.
FLT_MIN_LOSS = 87.33654475


def describe_net(net):
    """{"name", "phase", "layers": [...], "blobs": {name: shape},
    "loss_blobs": [...], "outputs": [...]} for ``net``."""
    from ..proto import caffe_pb2
    layers = []
    for node in net.graph:
        layers.append({
            "index": node.index, "name": node.name, "type": node.type,
            "bottoms": list(node.bottoms), "tops": list(node.tops),
            "inserted": bool(node.inserted), "in_place": bool(node.in_place),
            "need_backward": bool(node.need_backward),
            "params": [{"shape": list(p.blob.shape), "lr_mult": p.lr_mult,
                        "decay_mult": p.decay_mult,
                        "shared": p.owner is not None}
                       for p in node.params],
            "config": layer_config(node.type, node.param),
        })
    weights = net.blob_loss_weights
    return {
        "name": net.name, "phase": caffe_pb2.Phase.Name(net.phase),
        "layers": layers,
        "blobs": {k: list(v) for k, v in net.blob_shapes().items()},
        "loss_blobs": [b for b, w in weights.items() if w],
        "outputs": list(net.outputs),
    }


def describe_param(param):
    """The part of :func:`describe_net` that needs no built net: layers with
    their type, bottoms, tops and config (no shapes, no parameters). For
    nets that cannot be built without running code (Python layers)."""
    from ..core.net import layer_included
    from ..proto import caffe_pb2
    layers = []
    for layer in param.layer:
        if not layer_included(param.state, layer):
            continue
        layers.append({
            "index": len(layers), "name": layer.name, "type": layer.type,
            "bottoms": list(layer.bottom), "tops": list(layer.top),
            "inserted": False, "in_place": bool(set(layer.bottom)
                                                & set(layer.top)),
            "need_backward": False, "params": [],
            "config": layer_config(layer.type, layer)})
    return {"name": param.name,
            "phase": caffe_pb2.Phase.Name(param.state.phase),
            "layers": layers, "blobs": {}, "loss_blobs": [], "outputs": []}


def layer_config(type_name, p):
    """The few fields of LayerParameter ``p`` that the checks read."""
    out = {}
    if type_name == "ReLU":
        out["negative_slope"] = p.relu_param.negative_slope
    if type_name == "BatchNorm":
        bn = p.batch_norm_param
        out["use_global_stats"] = (bn.use_global_stats
                                   if bn.HasField("use_global_stats")
                                   else None)
    if type_name in LABELLED:
        loss = p.loss_param
        out["ignore_label"] = (loss.ignore_label
                               if loss.HasField("ignore_label") else None)
        if type_name == "Accuracy":
            out["axis"] = p.accuracy_param.axis
            if p.accuracy_param.HasField("ignore_label"):
                out["ignore_label"] = p.accuracy_param.ignore_label
        elif type_name == "SoftmaxWithLoss":
            out["axis"] = p.softmax_param.axis
        else:
            out["axis"] = 1
    if type_name in DATA_TYPES and p.HasField("transform_param"):
        t = p.transform_param
        out["scale"] = t.scale if t.HasField("scale") else None
        out["mean"] = bool(t.mean_file or len(t.mean_value))
    if type_name in ("Convolution", "InnerProduct", "Deconvolution"):
        sub = (p.inner_product_param if type_name == "InnerProduct"
               else p.convolution_param)
        out["weight_filler"] = _filler(sub.weight_filler,
                                       sub.HasField("weight_filler"))
    return out


def _filler(f, given):
    if not given:
        return "constant 0 (none given)"
    if f.type == "constant":
        return f"constant {f.value:g}"
    if f.type == "gaussian":
        return f"gaussian std {f.std:g}"
    if f.type == "uniform":
        return f"uniform [{f.min:g}, {f.max:g}]"
    return f.type


# -- weights ----------------------------------------------------------------
def weight_shapes(path):
    """{layer name: [shape of each param blob]} of a weight file (binary
    .caffemodel or Caffe's HDF5 layout), read without touching a net."""
    from ..proto.hdf5 import is_hdf5
    path = os.fspath(path)
    if is_hdf5(path):
        return _hdf5_shapes(path)
    from ..core.blob import proto_shape
    from ..proto.io import load_weights
    param = load_weights(path)
    return {layer.name: [list(proto_shape(b)) for b in layer.blobs]
            for layer in param.layer if len(layer.blobs)}


def _hdf5_shapes(path):
    try:
        import h5py
    except ImportError:
        raise KaffeConfigError(
            "is an HDF5 weight file, and reading it needs h5py",
            field="--weights", received=path,
            fix="pip install 'kaffe[hdf5]'") from None
    out = {}
    with h5py.File(path, "r") as f:
        data = f.get("data")
        if isinstance(data, h5py.Group):
            _walk(h5py, data, "", out)
    return out


def _walk(h5py, group, prefix, out):
    for key in group:
        item = group[key]
        if not isinstance(item, h5py.Group):
            continue
        shapes = [list(item[k].shape) for k in sorted(item, key=_int_key)
                  if isinstance(item[k], h5py.Dataset)]
        if shapes:
            out[prefix + key] = shapes
        _walk(h5py, item, prefix + key + "/", out)


def _int_key(text):
    return int(text) if text.isdigit() else 1 << 30


def match_weights(net_description, shapes, path):
    """How a weight file's layers meet a net's learnable layers.

    Returns:
        {"path", "loaded": [layer], "missing": [net layers with parameters
        that the file does not name], "unused": [file layers that no net
        layer is named after], "mismatched": [{"layer", "param", "file",
        "net"}]}.
    """
    loaded, missing, mismatched = [], [], []
    names = set()
    net_shapes = {}
    for layer in net_description["layers"]:
        names.add(layer["name"])
        own = [p for p in layer["params"] if not p["shared"]]
        if not own:
            continue
        if layer["name"] not in shapes:
            missing.append(layer["name"])
            net_shapes[layer["name"]] = [list(p["shape"])
                                         for p in layer["params"]]
            continue
        bad = False
        for j, (p, s) in enumerate(zip(layer["params"],
                                       shapes[layer["name"]])):
            if list(p["shape"]) != list(s):
                mismatched.append({"layer": layer["name"], "param": j,
                                   "file": list(s), "net": list(p["shape"])})
                bad = True
        if not bad:
            loaded.append(layer["name"])
    unused = [name for name in shapes if name not in names]
    return {"path": os.fspath(path), "loaded": loaded, "missing": missing,
            "unused": unused, "mismatched": mismatched,
            "guesses": _rename_guesses(missing, unused, net_shapes, shapes)}


def _rename_guesses(missing, unused, net_shapes, file_shapes):
    """{net layer: file layer it was probably renamed from}: the unused
    file layer with the same parameter shapes (the closest name among
    several), else the closest name."""
    import difflib
    guesses = {}
    pool = list(unused)
    for name in missing:
        same = [u for u in pool if file_shapes[u] == net_shapes[name]]
        close = difflib.get_close_matches(name, same, n=1, cutoff=0.0) \
            if same else difflib.get_close_matches(name, pool, n=1,
                                                   cutoff=0.6)
        if close:
            guesses[name] = close[0]
            pool.remove(close[0])
    return guesses


def load_matching(net, path, report):
    """Copy into ``net`` the layers of weight file ``path`` that
    :func:`match_weights` found to fit (all of them, through
    ``net.copy_from``, when nothing mismatched)."""
    if not report["mismatched"]:
        net.copy_from(path)
        return
    from ..proto.hdf5 import is_hdf5
    if is_hdf5(path):
        return          # HDF5 loads whole files; the mismatch is reported
    from ..proto.io import load_weights
    param = load_weights(path)
    bad = {m["layer"] for m in report["mismatched"]}
    keep = [layer for layer in param.layer if layer.name not in bad]
    del param.layer[:]
    param.layer.extend(keep)
    net.copy_trained_layers_from(param, path)
