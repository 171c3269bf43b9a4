"""``kaffe convert_imageset``: images named in a list file → a DB of Datums.

Caffe's ``tools/convert_imageset.cpp``: for every "path label" line of
LISTFILE (split at the last space) read ROOTFOLDER + path (in colour unless
--gray, resized when --resize_width and --resize_height are both set), and
store it as a Datum under the key ``%08d_<path>`` (the line's index in the
possibly shuffled list), committing every 1000 records. Raw Datums hold
C×H×W BGR bytes; with --encoded (or an --encode_type) they hold the image
file (re-encoded when it was resized, converted, or of another type).
Images that cannot be read are logged and skipped, as in Caffe.
"""
import logging
import os

from .flags import add_bool_flag, add_value_flag

HELP = "convert a list of images into an LMDB/LevelDB of Datums"
DESCRIPTION = """\
Convert a set of images to the leveldb/lmdb format used as input for
Caffe, as Caffe's convert_imageset: LISTFILE has one 'path label' per line
(paths relative to ROOTFOLDER, which is prefixed as a string: end it with
'/'). Keys are %08d_<path>. The DB must not exist."""
EPILOG = """\
example:
  kaffe convert_imageset --resize_height=256 --resize_width=256 --shuffle \\
      /data/train/ train.txt train_lmdb"""

log = logging.getLogger("kaffe")


def add_arguments(parser):
    parser.add_argument("root", metavar="ROOTFOLDER/",
                        help="prefix of every image path (keep its '/')")
    parser.add_argument("listfile", metavar="LISTFILE",
                        help="text file of 'path label' lines")
    parser.add_argument("db", metavar="DB_NAME", help="the DB to create")
    add_bool_flag(parser, "gray", "treat images as grayscale ones")
    add_bool_flag(parser, "shuffle",
                  "randomly shuffle the order of images and their labels")
    add_value_flag(parser, "backend", default="lmdb",
                   help="lmdb or leveldb (default lmdb)")
    add_value_flag(parser, "resize_width", type=int, default=0,
                   help="width images are resized to (0: keep)")
    add_value_flag(parser, "resize_height", type=int, default=0,
                   help="height images are resized to (0: keep)")
    add_bool_flag(parser, "check_size",
                  "check that all the datums have the same size")
    add_bool_flag(parser, "encoded",
                  "store the encoded image in the datum")
    add_value_flag(parser, "encode_type", default="",
                   help="what to encode the images as (png, jpg, ...)")


def convert_imageset(root, listfile, db, *, gray=False, shuffle=False,
                     backend="lmdb", resize_width=0, resize_height=0,
                     check_size=False, encoded=False, encode_type=""):
    """Write the listed images into a new DB; returns how many were stored."""
    from ..core.errors import KaffeFormatError
    from ..core.random import rng
    from ..data.datum import read_image_to_datum
    from ..data.db import BatchWriter
    from ..data.listfile import read_list_file
    lines = read_list_file(listfile)
    if shuffle:
        log.info("Shuffling data")
        order = rng().permutation(len(lines))
        lines = [lines[i] for i in order]
    log.info("A total of %d images.", len(lines))
    if encode_type and not encoded:
        log.info("encode_type specified, assuming encoded=true.")
    resize_height = max(0, resize_height)
    resize_width = max(0, resize_width)
    is_color = not gray
    data_size = None

    def processed(count):
        log.info("Processed %d files.", count)

    with BatchWriter(db, backend, on_commit=processed) as writer:
        for line_id, entry in enumerate(lines):
            encoding = encode_type
            if encoded and not encoding:
                # Guess the encoding from the file name.
                ext = os.path.splitext(entry.path)[1]
                if not ext:
                    log.warning("Failed to guess the encoding of '%s'",
                                entry.path)
                encoding = ext[1:].lower()
            datum = read_image_to_datum(root + entry.path, entry.label,
                                        resize_height, resize_width,
                                        is_color, encoding)
            if datum is None:
                continue
            if check_size:
                if data_size is None:
                    data_size = datum.channels * datum.height * datum.width
                elif len(datum.data) != data_size:
                    raise KaffeFormatError(
                        f"image '{entry.path}' has an incorrect data field "
                        f"size", file=listfile, line=entry.line,
                        received=len(datum.data),
                        expected=f"{data_size} (the first image's "
                                 f"channels × height × width)",
                        fix="resize every image (--resize_height, "
                            "--resize_width); --check_size compares raw "
                            "pixel sizes, so it cannot be used with "
                            "--encoded")
            key = "%08d_%s" % (line_id, entry.path)
            writer.put(key.encode("utf-8", "surrogateescape"),
                       datum.SerializeToString())
        stored = writer.count
    return stored


def run(args):
    convert_imageset(args.root, args.listfile, args.db, gray=args.gray,
                     shuffle=args.shuffle, backend=args.backend,
                     resize_width=args.resize_width,
                     resize_height=args.resize_height,
                     check_size=args.check_size, encoded=args.encoded,
                     encode_type=args.encode_type)
    return 0
