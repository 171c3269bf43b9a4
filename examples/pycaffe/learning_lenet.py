#!/usr/bin/env python
"""Solving in Python with LeNet: Caffe's "learning LeNet" notebook as a script.

The flow of Caffe's examples/01-learning-lenet.ipynb, written the way a
pycaffe user writes it, with ``import kaffe as caffe`` in place of
``import caffe``:

1. convert MNIST to LMDBs (if they are not there yet);
2. describe LeNet with NetSpec and write the train and test prototxts;
3. write the solver prototxt (SGD, momentum, "inv" learning-rate policy);
4. load it with ``caffe.SGDSolver``; look at the blob and parameter shapes;
   run one forward pass of the train and test nets;
5. step the solver in a Python loop, recording the training loss and, every
   ``--test-interval`` iterations, the test accuracy computed by hand from
   ``score.argmax(1) == label``;
6. plot loss and accuracy to a PNG (needs matplotlib).

Run it from anywhere::

    python examples/pycaffe/learning_lenet.py                  # 200 iterations
    python examples/pycaffe/learning_lenet.py --subset 2048 --niter 100

Everything it writes (LMDBs, prototxts, the plot) goes to ``--workdir``
(default examples/pycaffe/work, which git ignores).
"""
import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
# As the notebook puts caffe_root/python on sys.path: the checkout's kaffe.
sys.path.insert(0, REPO)

import kaffe as caffe  # noqa: E402
from kaffe import layers as L, params as P  # noqa: E402

DEFAULT_MNIST = os.path.join(REPO, "..", "shared", "data", "mnist")
DEFAULT_WORKDIR = os.path.join(HERE, "work")
SPLITS = {"train": "train", "test": "t10k"}   # our name -> MNIST's prefix


# -- 1. the data ----------------------------------------------------------------
def mnist_file(mnist_dir, prefix, kind):
    """The path of e.g. train-images-idx3-ubyte(.gz) in ``mnist_dir``."""
    name = f"{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte"
    for candidate in (name + ".gz", name):
        path = os.path.join(mnist_dir, candidate)
        if os.path.exists(path):
            return path
    raise SystemExit(f"error: MNIST file {name}[.gz] is not in {mnist_dir}; "
                     f"pass --mnist DIR (the directory holding the four IDX "
                     f"files)")


def convert_split(mnist_dir, split, db, subset=None):
    """Write MNIST's ``split`` into the LMDB ``db``; returns the item count.

    Without a subset this is ``kaffe convert_mnist_data``; with one, the first
    ``subset`` items are written with caffe.io.array_to_datum and kaffe's DB
    writer (keys %08d, as the converter writes them).
    """
    from kaffe.data.db import BatchWriter
    from kaffe.tools.convert_mnist_data import (IMAGE_MAGIC, LABEL_MAGIC,
                                                convert_mnist_data, read_idx)
    images = mnist_file(mnist_dir, SPLITS[split], "images")
    labels = mnist_file(mnist_dir, SPLITS[split], "labels")
    if subset is None:
        return convert_mnist_data(images, labels, db, backend="lmdb")
    (count, rows, cols), pixels = read_idx(images, IMAGE_MAGIC, "image")
    _, label_bytes = read_idx(labels, LABEL_MAGIC, "label")
    count = min(count, subset)
    pixels = np.frombuffer(pixels, np.uint8)[:count * rows * cols]
    pixels = pixels.reshape(count, 1, rows, cols)
    with BatchWriter(db, "lmdb") as writer:
        for i in range(count):
            datum = caffe.io.array_to_datum(pixels[i], int(label_bytes[i]))
            writer.put(b"%08d" % i, datum.SerializeToString())
    return count


def prepare_lmdbs(mnist_dir, workdir, subset):
    """{split: (lmdb path, item count)}, converting what is missing."""
    dbs = {}
    for split in SPLITS:
        tag = f"{split}_{subset}" if subset else split
        db = os.path.join(workdir, f"mnist_{tag}_lmdb")
        if os.path.isdir(db):
            count = _count_records(db)
            print(f"Using {db} ({count} images)")
        else:
            count = convert_split(mnist_dir, split, db, subset)
            print(f"Wrote {db} ({count} images)")
        dbs[split] = (db, count)
    return dbs


def _count_records(db):
    from kaffe.data.db import open_db
    with open_db(db, "lmdb", "read") as reader:
        cursor = reader.cursor()
        count = 0
        while cursor.valid:
            count += 1
            cursor.next()
        cursor.close()
    return count


# -- 2. the net -------------------------------------------------------------------
def lenet(lmdb, batch_size):
    # our version of LeNet: a series of linear and simple nonlinear
    # transformations
    n = caffe.NetSpec()

    n.data, n.label = L.Data(batch_size=batch_size, backend=P.Data.LMDB,
                             source=lmdb, transform_param=dict(scale=1. / 255),
                             ntop=2)

    n.conv1 = L.Convolution(n.data, kernel_size=5, num_output=20,
                            weight_filler=dict(type='xavier'))
    n.pool1 = L.Pooling(n.conv1, kernel_size=2, stride=2, pool=P.Pooling.MAX)
    n.conv2 = L.Convolution(n.pool1, kernel_size=5, num_output=50,
                            weight_filler=dict(type='xavier'))
    n.pool2 = L.Pooling(n.conv2, kernel_size=2, stride=2, pool=P.Pooling.MAX)
    n.fc1 = L.InnerProduct(n.pool2, num_output=500,
                           weight_filler=dict(type='xavier'))
    n.relu1 = L.ReLU(n.fc1, in_place=True)
    n.score = L.InnerProduct(n.relu1, num_output=10,
                             weight_filler=dict(type='xavier'))
    n.loss = L.SoftmaxWithLoss(n.score, n.label)

    return n.to_proto()


# -- 3. the solver ----------------------------------------------------------------
def write_solver(path, train_net, test_net, test_iter, prefix):
    """lenet_auto_solver.prototxt, built as the notebook's last section does."""
    s = caffe.proto.caffe_pb2.SolverParameter()
    s.random_seed = 0xCAFFE          # reproducible runs
    s.train_net = train_net
    s.test_net.append(test_net)
    s.test_interval = 500            # Caffe's own test (we also test by hand)
    s.test_iter.append(test_iter)
    s.max_iter = 10000
    s.type = "SGD"
    s.base_lr = 0.01
    s.momentum = 0.9
    s.weight_decay = 5e-4
    s.lr_policy = "inv"
    s.gamma = 0.0001
    s.power = 0.75
    s.display = 100
    s.snapshot = 5000
    s.snapshot_prefix = prefix
    s.solver_mode = caffe.proto.caffe_pb2.SolverParameter.CPU
    with open(path, "w") as f:
        f.write(str(s))


# -- 5. the loop ------------------------------------------------------------------
def train(solver, niter, test_interval, test_iters):
    """Step ``niter`` times; returns (train_loss, test_acc, tested_at)."""
    train_loss = np.zeros(niter)
    tested_at = list(range(0, niter, test_interval))
    test_acc = np.zeros(len(tested_at))
    test_net = solver.test_nets[0]
    batch = test_net.blobs['data'].num
    for it in range(niter):
        solver.step(1)  # SGD by kaffe
        # store the train loss
        train_loss[it] = solver.net.blobs['loss'].data
        # run a full test every so often (Caffe can also do this for us and
        # write to a log, but here it is done by hand in Python)
        if it % test_interval == 0:
            correct = 0
            for _ in range(test_iters):
                test_net.forward()
                correct += np.sum(test_net.blobs['score'].data.argmax(1)
                                  == test_net.blobs['label'].data)
            test_acc[it // test_interval] = correct / (test_iters * batch)
            print(f"Iteration {it:4d}  train loss {train_loss[it]:.4f}  "
                  f"test accuracy {test_acc[it // test_interval]:.4f}")
    return train_loss, test_acc, tested_at


# -- 6. the plot -------------------------------------------------------------------
def plot(path, train_loss, test_acc, tested_at):
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: skipping the plot "
              "(pip install matplotlib)")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    _, ax1 = plt.subplots()
    ax2 = ax1.twinx()
    ax1.plot(np.arange(len(train_loss)), train_loss)
    ax2.plot(tested_at, test_acc, 'r')
    ax1.set_xlabel('iteration')
    ax1.set_ylabel('train loss')
    ax2.set_ylabel('test accuracy')
    ax2.set_title('Test Accuracy: {:.2f}'.format(test_acc[-1]))
    plt.savefig(path)
    plt.close()
    print(f"Wrote {path}")
    return path


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Caffe's learning-LeNet notebook, with kaffe as caffe.")
    parser.add_argument("--mnist", default=DEFAULT_MNIST, metavar="DIR",
                        help="the directory holding MNIST's four IDX files "
                             "(raw or .gz); default ../shared/data/mnist "
                             "next to the repository")
    parser.add_argument("--workdir", default=DEFAULT_WORKDIR, metavar="DIR",
                        help="where the LMDBs, prototxts and the plot go "
                             "(default examples/pycaffe/work)")
    parser.add_argument("--niter", type=int, default=200,
                        help="training iterations (default 200)")
    parser.add_argument("--test-interval", type=int, default=25,
                        help="test by hand every N iterations (default 25)")
    parser.add_argument("--subset", type=int, default=None, metavar="N",
                        help="convert only the first N images of each split "
                             "(default: all of them)")
    args = parser.parse_args(argv)
    for name in ("niter", "test_interval", "subset"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, "
                         f"received {value}")
    return args


def main(argv=None):
    """Run the example; returns what it recorded (for tests)."""
    args = parse_args(argv)
    workdir = os.path.abspath(args.workdir)
    os.makedirs(workdir, exist_ok=True)
    start = time.perf_counter()

    # 1. data
    dbs = prepare_lmdbs(args.mnist, workdir, args.subset)
    train_db, _ = dbs["train"]
    test_db, n_test = dbs["test"]
    test_batch = min(100, n_test)
    test_iters = max(1, n_test // test_batch)   # about one pass over the set

    # 2. nets
    train_proto = os.path.join(workdir, "lenet_auto_train.prototxt")
    test_proto = os.path.join(workdir, "lenet_auto_test.prototxt")
    with open(train_proto, 'w') as f:
        f.write(str(lenet(train_db, 64)))
    with open(test_proto, 'w') as f:
        f.write(str(lenet(test_db, test_batch)))

    # 3. solver
    solver_proto = os.path.join(workdir, "lenet_auto_solver.prototxt")
    write_solver(solver_proto, train_proto, test_proto, test_iters,
                 os.path.join(workdir, "lenet"))

    # 4. load and check
    caffe.set_mode_cpu()
    solver = None  # (the notebook's workaround for two solvers on one LMDB)
    solver = caffe.SGDSolver(solver_proto)
    print("blobs:", [(k, v.data.shape) for k, v in solver.net.blobs.items()])
    print("params:", [(k, v[0].data.shape)
                      for k, v in solver.net.params.items()])
    solver.net.forward()  # train net
    solver.test_nets[0].forward()  # test net (there can be more than one)
    print('train labels:', solver.net.blobs['label'].data[:8])
    print('test labels:', solver.test_nets[0].blobs['label'].data[:8])
    solver.step(1)
    conv1_diff = solver.net.params['conv1'][0].diff
    print(f"after one step: |conv1 diff| mean {np.abs(conv1_diff).mean():.3g}")

    # 5. the loop
    train_loss, test_acc, tested_at = train(
        solver, args.niter, args.test_interval, test_iters)
    print(f"train loss: first {train_loss[0]:.4f}, last {train_loss[-1]:.4f}"
          f"; test accuracy: first {test_acc[0]:.4f}, last {test_acc[-1]:.4f}"
          f" ({test_iters * test_batch} test images)")

    # 6. the plot
    png = plot(os.path.join(workdir, "lenet_learning_curves.png"),
               train_loss, test_acc, tested_at)
    print(f"done in {time.perf_counter() - start:.1f} s")
    return dict(train_loss=train_loss, test_acc=test_acc, tested_at=tested_at,
                train_proto=train_proto, test_proto=test_proto,
                solver_proto=solver_proto, png=png)


if __name__ == "__main__":
    main()
