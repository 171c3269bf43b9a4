"""The fuzzer's seed corpus: one small valid file of every kind kaffe reads.

:func:`build_corpus` writes, into a folder, from the bundled examples and a
fixed random seed (so every run starts from the same bytes):

========================  ==================================================
kind                      file
========================  ==================================================
``net``                   LeNet (examples/mnist), a "zoo" net with one layer
                          of most vision/neuron/common types, a tiny MLP
``weights``               a binary ``.caffemodel`` of the tiny net
``weights_h5``            the same weights as ``.caffemodel.h5``
``solver``                a solver prototxt training the tiny net
``solverstate``           a binary ``.solverstate`` of that solver (Adam)
``solverstate_h5``        an HDF5 ``.solverstate.h5`` of that solver
``mean``                  a ``.binaryproto`` mean image
``lmdb``                  an LMDB of four Datum records
========================  ==================================================

Only the bundled examples and kaffe's own writers are used; nothing is
downloaded.
"""
import os
import pathlib

import numpy as np

from ...optional import available

EXAMPLES = pathlib.Path(__file__).resolve().parents[3] / "examples"

TINY_NET = """name: "tiny"
layer { name: "data" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 4 dim: 3 dim: 6 dim: 6 }
                      shape { dim: 4 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1
          weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip" type: "InnerProduct" bottom: "pool" top: "ip"
        inner_product_param { num_output: 3
          weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label"
        top: "loss" }
"""

# A training version of the tiny net: DummyData instead of Input.
TINY_TRAIN_NET = TINY_NET.replace(
    """layer { name: "data" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 4 dim: 3 dim: 6 dim: 6 }
                      shape { dim: 4 } } }""",
    """layer { name: "data" type: "DummyData" top: "data" top: "label"
        dummy_data_param { shape { dim: 4 dim: 3 dim: 6 dim: 6 }
                           shape { dim: 4 }
                           data_filler { type: "gaussian" std: 1 }
                           data_filler { type: "constant" value: 1 } } }""")

ZOO_NET = """name: "zoo"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 2 dim: 4 dim: 8 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 stride: 1
          group: 2 dilation: 1 weight_filler { type: "msra" } } }
layer { name: "prelu" type: "PReLU" bottom: "conv" top: "conv"
        prelu_param { filler { type: "constant" value: 0.25 } } }
layer { name: "lrn" type: "LRN" bottom: "conv" top: "lrn"
        lrn_param { local_size: 3 alpha: 0.0001 beta: 0.75 } }
layer { name: "lrn2" type: "LRN" bottom: "conv" top: "lrn2"
        lrn_param { local_size: 3 norm_region: WITHIN_CHANNEL } }
layer { name: "pool" type: "Pooling" bottom: "lrn" top: "pool"
        pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "spp" type: "SPP" bottom: "lrn2" top: "spp"
        spp_param { pyramid_height: 2 pool: MAX } }
layer { name: "deconv" type: "Deconvolution" bottom: "pool" top: "deconv"
        convolution_param { num_output: 4 kernel_size: 4 stride: 2 pad: 1
          weight_filler { type: "bilinear" } bias_term: false } }
layer { name: "bn" type: "BatchNorm" bottom: "deconv" top: "bn" }
layer { name: "scale" type: "Scale" bottom: "bn" top: "bn"
        scale_param { bias_term: true } }
layer { name: "elt" type: "Eltwise" bottom: "bn" bottom: "lrn" top: "elt"
        eltwise_param { operation: SUM coeff: 1 coeff: -1 } }
layer { name: "cat" type: "Concat" bottom: "elt" bottom: "conv" top: "cat"
        concat_param { axis: 1 } }
layer { name: "slice" type: "Slice" bottom: "cat" top: "s1" top: "s2"
        slice_param { axis: 1 slice_point: 3 } }
layer { name: "silence" type: "Silence" bottom: "s2" }
layer { name: "crop" type: "Crop" bottom: "s1" bottom: "pool" top: "crop"
        crop_param { axis: 2 offset: 1 } }
layer { name: "flat" type: "Flatten" bottom: "crop" top: "flat" }
layer { name: "ip" type: "InnerProduct" bottom: "flat" top: "ip"
        inner_product_param { num_output: 5
          weight_filler { type: "uniform" min: -0.1 max: 0.1 } } }
layer { name: "ip2" type: "InnerProduct" bottom: "spp" top: "ip2"
        inner_product_param { num_output: 5 } }
layer { name: "rs" type: "Reshape" bottom: "ip" top: "rs"
        reshape_param { shape { dim: 0 dim: -1 dim: 1 } } }
layer { name: "tile" type: "Tile" bottom: "rs" top: "tile"
        tile_param { axis: 2 tiles: 2 } }
layer { name: "pow" type: "Power" bottom: "tile" top: "pow"
        power_param { power: 2 scale: 0.5 shift: 1 } }
layer { name: "red" type: "Reduction" bottom: "pow" top: "red"
        reduction_param { operation: SUMSQ axis: 1 } }
layer { name: "sm" type: "Softmax" bottom: "ip" top: "prob" }
layer { name: "argmax" type: "ArgMax" bottom: "prob" top: "am"
        argmax_param { top_k: 2 } }
"""

# A Python layer whose module the corpus folder holds (the worker puts that
# folder on sys.path).
PY_NET = """name: "py"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 2 dim: 3 } } }
layer { name: "py" type: "Python" bottom: "data" top: "py"
        python_param { module: "kaffe_fuzz_layers" layer: "Double"
                       param_str: "2" } }
layer { name: "ip" type: "InnerProduct" bottom: "py" top: "ip"
        inner_product_param { num_output: 2 } }
"""

PY_MODULE = """import kaffe


class Double(kaffe.Layer):
    def setup(self, bottom, top):
        self.k = float(self.param_str or 2)

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        top[0].data[...] = self.k * bottom[0].data

    def backward(self, top, propagate_down, bottom):
        bottom[0].diff[...] = self.k * top[0].diff
"""

DATA_NET = """name: "datanet"
layer { name: "data" type: "Data" top: "data" top: "label"
        transform_param { scale: 0.00390625 crop_size: 4 }
        data_param { source: "%s" backend: LMDB batch_size: 2 } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param { num_output: 2 } }
"""

SOLVER = """net: "%s"
base_lr: 0.01
lr_policy: "step"
stepsize: 2
gamma: 0.5
momentum: 0.9
momentum2: 0.999
type: "Adam"
weight_decay: 0.0005
max_iter: 3
display: 1
average_loss: 2
snapshot_prefix: "%s"
snapshot_format: %s
random_seed: 7
"""


def build_corpus(folder):
    """Write the seed files into ``folder``; return {kind: [paths]} and the
    context paths the actions need ({"tiny_net", "solver", "data_net"})."""
    import kaffe
    from kaffe.proto.io import write_binary
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    kaffe.set_random_seed(3)
    seeds = {kind: [] for kind in KINDS}
    ctx = {}

    tiny = folder / "tiny.prototxt"
    tiny.write_text(TINY_NET)
    train = folder / "tiny_train.prototxt"
    train.write_text(TINY_TRAIN_NET)
    zoo = folder / "zoo.prototxt"
    zoo.write_text(ZOO_NET)
    py = folder / "python.prototxt"
    py.write_text(PY_NET)
    (folder / "kaffe_fuzz_layers.py").write_text(PY_MODULE)
    ctx["tiny_net"] = str(tiny)
    ctx["modules"] = str(folder)
    seeds["net"] += [str(tiny), str(zoo), str(py)]
    for name in ("lenet.prototxt", "lenet_train_test.prototxt"):
        if (EXAMPLES / "mnist" / name).exists():
            seeds["net"].append(str(EXAMPLES / "mnist" / name))

    net = kaffe.Net(str(tiny), kaffe.TEST)
    weights = folder / "tiny.caffemodel"
    net.save(str(weights))
    seeds["weights"].append(str(weights))

    snapshots = folder / "snapshots"
    snapshots.mkdir(exist_ok=True)
    have_h5 = available("h5py") is not None
    formats = ["BINARYPROTO"] + (["HDF5"] if have_h5 else [])
    for fmt in formats:
        solver_path = folder / f"solver_{fmt.lower()}.prototxt"
        prefix = snapshots / fmt.lower()
        solver_path.write_text(SOLVER % (train, prefix, fmt))
        seeds["solver"].append(str(solver_path))
        solver = kaffe.get_solver(str(solver_path))
        solver.step(2)
        model, state = solver.snapshot()
        if fmt == "HDF5":
            seeds["weights_h5"].append(model)
            seeds["solverstate_h5"].append(state)
            ctx["solver_h5"] = str(solver_path)
        else:
            seeds["solverstate"].append(state)
            ctx["solver"] = str(solver_path)

    mean = folder / "mean.binaryproto"
    rng = np.random.default_rng(5)
    write_binary(kaffe.io.array_to_blobproto(
        rng.uniform(0, 255, (1, 3, 6, 6)).astype(np.float32)), str(mean))
    seeds["mean"].append(str(mean))

    have_lmdb = available("lmdb") is not None
    if have_lmdb:
        records = [kaffe.io.array_to_datum(
            rng.integers(0, 255, (1, 6, 6)).astype(np.uint8), label=i % 2)
            .SerializeToString() for i in range(4)]
        db = folder / "seed_lmdb"
        write_lmdb(db, [(f"{i:08d}".encode(), r)
                        for i, r in enumerate(records)])
        seeds["lmdb"].append(str(db))
    return {k: v for k, v in seeds.items() if v}, ctx


def write_lmdb(path, items):
    """An LMDB at ``path`` holding the (key, value) pairs ``items``."""
    import lmdb
    os.makedirs(path, exist_ok=True)
    env = lmdb.open(str(path), map_size=1 << 24, subdir=True)
    with env.begin(write=True) as txn:
        for key, value in items:
            txn.put(key, value)
    env.close()


KINDS = ("net", "weights", "weights_h5", "solver", "solverstate",
         "solverstate_h5", "mean", "lmdb")
