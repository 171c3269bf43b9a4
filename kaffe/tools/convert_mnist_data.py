"""``kaffe convert_mnist_data``: MNIST's IDX files → a DB of Datums.

Caffe's ``examples/mnist/convert_mnist_data.cpp``: every image becomes a
1×rows×cols uint8 Datum with its label, stored under the key ``%08d`` (the
item's index), committed 1000 at a time. The IDX files may be gzipped (as
downloaded) or not.
"""
import gzip
import logging

import numpy as np

from .flags import add_value_flag

HELP = "convert MNIST IDX image/label files into an LMDB/LevelDB of Datums"
DESCRIPTION = """\
Convert the MNIST data set (IDX files, raw or .gz) into a database of
Datums as Caffe's convert_mnist_data does: 1x28x28 uint8 images, keys
%08d in file order, committed every 1000 records. The DB must not exist."""
EPILOG = """\
example:
  kaffe convert_mnist_data train-images-idx3-ubyte.gz \\
      train-labels-idx1-ubyte.gz mnist_train_lmdb --backend=lmdb"""

log = logging.getLogger("kaffe")

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049


def add_arguments(parser):
    parser.add_argument("images", metavar="IMAGES",
                        help="the IDX image file (idx3-ubyte, or .gz)")
    parser.add_argument("labels", metavar="LABELS",
                        help="the IDX label file (idx1-ubyte, or .gz)")
    parser.add_argument("db", metavar="DB", help="the DB to create")
    add_value_flag(parser, "backend", default="lmdb",
                   help="lmdb or leveldb (default lmdb)")


def read_idx(path, magic, what):
    """(header ints after the magic, payload bytes) of an IDX file.

    Raises KaffeFormatError for a missing file or a wrong magic number.
    """
    from ..core.errors import KaffeFormatError
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise KaffeFormatError(f"unable to open {what} file: not found",
                               file=path) from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise KaffeFormatError(f"{what} file is a broken gzip ({e})",
                                   file=path) from None
    dims = 3 if magic == IMAGE_MAGIC else 1
    header = 4 * (1 + dims)
    found = int(np.frombuffer(raw[:4], dtype=">u4")[0]) if len(raw) >= 4 \
        else None
    if found != magic:
        raise KaffeFormatError(
            f"incorrect {what} file magic", file=path, received=found,
            expected=f"{magic} (MNIST {what}s)",
            fix="pass the images file first, then the labels file")
    if len(raw) < header:
        raise KaffeFormatError(f"{what} file is too short for an IDX header",
                               file=path)
    values = np.frombuffer(raw[:header], dtype=">u4")
    return [int(v) for v in values[1:]], raw[header:]


def convert_mnist_data(images, labels, db, backend="lmdb"):
    """Write the MNIST items of ``images``/``labels`` into a new DB.

    Returns the number of items written.
    """
    from ..core.errors import KaffeFormatError
    from ..data.db import BatchWriter
    from ..proto import caffe_pb2
    (num_items, rows, cols), pixels = read_idx(images, IMAGE_MAGIC, "image")
    (num_labels,), label_bytes = read_idx(labels, LABEL_MAGIC, "label")
    if num_items != num_labels:
        raise KaffeFormatError(
            "the image and label files hold different numbers of items",
            received=f"{num_items} images, {num_labels} labels",
            fix="pass matching files (train with train, t10k with t10k)")
    size = rows * cols
    if len(pixels) < num_items * size or len(label_bytes) < num_items:
        raise KaffeFormatError(
            "the IDX files are truncated", file=images,
            received=f"{len(pixels)} pixel bytes, {len(label_bytes)} labels",
            expected=f"{num_items * size} and {num_items}")
    # Caffe reads a label into a (signed) char.
    signed_labels = np.frombuffer(label_bytes, dtype=np.int8)
    datum = caffe_pb2.Datum(channels=1, height=rows, width=cols)
    log.info("A total of %d items.", num_items)
    log.info("Rows: %d Cols: %d", rows, cols)
    with BatchWriter(db, backend) as writer:
        for item in range(num_items):
            datum.data = pixels[item * size:(item + 1) * size]
            datum.label = int(signed_labels[item])
            writer.put(b"%08d" % item, datum.SerializeToString())
    log.info("Processed %d files.", num_items)
    return num_items


def run(args):
    convert_mnist_data(args.images, args.labels, args.db, args.backend)
    return 0
