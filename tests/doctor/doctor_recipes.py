"""Broken and healthy training recipes for the doctor's tests: a small
MNIST-like LMDB (28×28 uint8 digits of 10 classes, drawn here) and a
reduced LeNet that trains on it in a few seconds.

Each recipe is one of the caffe-users list's classic failures, written the
way users wrote it; :func:`write_recipe` puts the data, the net and the
solver in a folder and returns the solver's path.
"""
import numpy as np

IMAGES = 256
SIZE = 28


def digits(count=IMAGES, seed=0, labels_from=0):
    """``count`` 1×28×28 uint8 images, class k a bright bar at position k
    (horizontal for even k, vertical for odd) on a noisy background, and
    their labels (``labels_from`` .. ``labels_from`` + 9)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 40, size=(count, 1, SIZE, SIZE)).astype(np.uint8)
    labels = np.arange(count) % 10
    for i, k in enumerate(labels):
        at = 3 + 2 * (k // 2) + rng.integers(0, 2)
        if k % 2:
            images[i, 0, 4:24, at:at + 3] = 230
        else:
            images[i, 0, at:at + 3, 4:24] = 230
    return images, labels + labels_from


def write_lmdb(path, images, labels):
    from kaffe.data.datum import array_to_datum
    from kaffe.data.db import BatchWriter
    with BatchWriter(str(path), "lmdb") as writer:
        for i, (image, label) in enumerate(zip(images, labels)):
            writer.put(b"%08d" % i,
                       array_to_datum(image, int(label)).SerializeToString())
    return str(path)


def lenet(source, scale="transform_param { scale: 0.00390625 }",
          conv1_extra="", ip1_extra="", fillers=None, batch=16,
          name_conv1="conv1", name_conv2="conv2", name_ip1="ip1",
          name_ip2="ip2", middle=""):
    """A reduced LeNet (8 and 16 filters, 64 hidden units) in prototxt."""
    weight = fillers if fillers is not None else \
        'weight_filler { type: "xavier" }'
    return f"""name: "SmallLeNet"
layer {{ name: "mnist" type: "Data" top: "data" top: "label"
  include {{ phase: TRAIN }} {scale}
  data_param {{ source: "{source}" batch_size: {batch} backend: LMDB }} }}
layer {{ name: "{name_conv1}" type: "Convolution" bottom: "data" top: "conv1"
  {conv1_extra}
  convolution_param {{ num_output: 8 kernel_size: 5 {weight}
    bias_filler {{ type: "constant" }} }} }}
layer {{ name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}
layer {{ name: "{name_conv2}" type: "Convolution" bottom: "pool1" top: "conv2"
  {conv1_extra}
  convolution_param {{ num_output: 16 kernel_size: 5 {weight}
    bias_filler {{ type: "constant" }} }} }}
layer {{ name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2"
  pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}
{middle}
layer {{ name: "{name_ip1}" type: "InnerProduct" bottom: "pool2" top: "ip1"
  {conv1_extra}
  inner_product_param {{ num_output: 64 {weight} {ip1_extra} }} }}
layer {{ name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }}
layer {{ name: "{name_ip2}" type: "InnerProduct" bottom: "ip1" top: "ip2"
  {conv1_extra}
  inner_product_param {{ num_output: 10 {weight}
    bias_filler {{ type: "constant" }} }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label"
  top: "loss" }}
"""


def solver(net_path, base_lr=0.01, extra=""):
    return f"""net: "{net_path}"
base_lr: {base_lr}
momentum: 0.9
weight_decay: 0.0005
lr_policy: "inv"
gamma: 0.0001
power: 0.75
display: 0
max_iter: 1000
random_seed: 1
{extra}
"""


def write_recipe(folder, net_text=None, base_lr=0.01, labels_from=0,
                 solver_extra="", db=None, **net_args):
    """Data (unless ``db`` names one), net and solver in ``folder``;
    returns the solver's path."""
    if db is None:
        images, labels = digits(labels_from=labels_from)
        db = folder / "train_lmdb"
        if not db.exists():
            write_lmdb(db, images, labels)
    net_path = folder / "net.prototxt"
    net_path.write_text(net_text if net_text is not None
                        else lenet(str(db), **net_args))
    solver_path = folder / "solver.prototxt"
    solver_path.write_text(solver(str(net_path), base_lr, solver_extra))
    return str(solver_path)
