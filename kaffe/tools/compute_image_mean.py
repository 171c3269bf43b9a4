"""``kaffe compute_image_mean``: the mean image of a DB of Datums.

Caffe's ``tools/compute_image_mean.cpp``: the per-pixel mean over every
record (encoded ones decoded as stored), written as a BlobProto with the
legacy num/channels/height/width fields (1×C×H×W), followed by the log lines
``mean_value channel [c]: v``. The sums are kept in float32 and the channel
means summed pixel by pixel, as Caffe does, so the numbers are Caffe's.
"""
import logging

import numpy as np

from .flags import add_value_flag

HELP = "compute the mean image of a DB (a mean.binaryproto for mean_file)"
DESCRIPTION = """\
Compute the mean image of an LMDB/LevelDB of Datums, as Caffe's
compute_image_mean: write it (if OUTPUT_FILE is given) as a 1xCxHxW
BlobProto for transform_param.mean_file, and log the per-channel means
("mean_value channel [c]: v") for transform_param.mean_value."""
EPILOG = """\
example:
  kaffe compute_image_mean mnist_train_lmdb mean.binaryproto --backend=lmdb"""

log = logging.getLogger("kaffe")


def add_arguments(parser):
    parser.add_argument("db", metavar="INPUT_DB", help="the DB to average")
    parser.add_argument("output", metavar="OUTPUT_FILE", nargs="?",
                        help="where to write the mean BlobProto (optional)")
    add_value_flag(parser, "backend", default="lmdb",
                   help="lmdb or leveldb (default lmdb)")


def _values(datum, where):
    from ..core.errors import KaffeFormatError
    if len(datum.data):
        return np.frombuffer(datum.data, dtype=np.uint8)
    if len(datum.float_data):
        return np.asarray(datum.float_data, dtype=np.float32)
    raise KaffeFormatError(f"{where} holds no values")


def compute_image_mean(db, output=None, backend="lmdb"):
    """Average the Datums of ``db``; write the BlobProto to ``output``.

    Returns:
        (BlobProto, per-channel means as a list of floats).
    """
    from ..core.errors import KaffeFormatError
    from ..data.datum import decode_datum, parse_datum
    from ..data.db import open_db
    from ..proto import caffe_pb2
    from ..proto.io import write_binary
    source = open_db(db, backend, "read")
    cursor = source.cursor()
    try:
        if not cursor.valid:
            raise KaffeFormatError(f"'{db}' is an empty database",
                                   fix="nothing to average")

        def read(cursor):
            where = f"record '{cursor.key().decode('utf-8', 'replace')}' " \
                    f"of {db}"
            datum, decoded = decode_datum(
                parse_datum(cursor.value(), where=where), "native",
                where=where)
            return datum, decoded, where

        first, decoded, _ = read(cursor)
        if decoded:
            log.info("Decoding Datum")
        channels, height, width = first.channels, first.height, first.width
        data_size = channels * height * width
        total = np.zeros(max(len(first.data), len(first.float_data)),
                         dtype=np.float32)
        log.info("Starting iteration")
        count = 0
        while cursor.valid:
            datum, _, where = read(cursor)
            size = max(len(datum.data), len(datum.float_data))
            if size != data_size:
                raise KaffeFormatError(
                    f"{where} has an incorrect data field size",
                    received=size,
                    expected=f"{data_size} ({channels}×{height}×{width}, the "
                             f"first record's size)",
                    fix="every record must have the same size (convert "
                        "with --resize_height/--resize_width)")
            total += _values(datum, where)
            count += 1
            if count % 10000 == 0:
                log.info("Processed %d files.", count)
            cursor.next()
    finally:
        cursor.close()
        source.close()
    if count % 10000 != 0:
        log.info("Processed %d files.", count)
    mean = total / np.float32(count)
    blob = caffe_pb2.BlobProto(num=1, channels=channels, height=height,
                               width=width)
    blob.data.extend(mean.tolist())
    if output:
        log.info("Write to %s", output)
        write_binary(blob, output)
    log.info("Number of channels: %d", channels)
    dim = height * width
    means = []
    for c in range(channels):
        # Caffe sums the channel in float32, one pixel after the other.
        channel_sum = np.add.accumulate(mean[dim * c:dim * (c + 1)],
                                        dtype=np.float32)[-1] if dim else \
            np.float32(0)
        value = channel_sum / np.float32(dim) if dim else np.float32("nan")
        means.append(float(value))
        log.info("mean_value channel [%d]: %s", c, format_float(value))
    return blob, means


def format_float(value):
    """A float as C++'s ``ostream <<`` prints it (6 significant digits)."""
    return f"{float(value):.6g}"


def run(args):
    compute_image_mean(args.db, args.output, args.backend)
    return 0
