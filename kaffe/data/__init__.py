"""Caffe's data path: Datums, LMDB/LevelDB, image decoding, the
DataTransformer and the prefetch thread.

* :mod:`.datum` — Datum ↔ C×H×W arrays (raw bytes, float_data, encoded images).
* :mod:`.image` — decode/encode/resize images as Caffe's OpenCV calls do.
* :mod:`.db` — ``open_db(source, backend, mode)``, cursors, transactions,
  :class:`BatchWriter` (commits every 1000 records, as Caffe's tools).
* :mod:`.transformer` — :class:`DataTransformer` (scale, mean, crop, mirror).
* :mod:`.prefetch` — :class:`Prefetcher`, the background batch loader.

The optional packages (lmdb, plyvel, Pillow, h5py) are imported only when
used; ``pip install 'kaffe[data]'`` installs them.
"""
from .datum import (array_to_datum, datum_to_array, decode_datum,
                    image_to_datum, parse_datum, read_file_to_datum,
                    read_image_to_datum)
from .db import BatchWriter, backend_name, open_db
from .image import decode_image, encode_image, read_image, resize_bilinear
from .prefetch import Prefetcher
from .transformer import DataTransformer

__all__ = [
    "BatchWriter", "DataTransformer", "Prefetcher", "array_to_datum",
    "backend_name", "datum_to_array", "decode_datum", "decode_image",
    "encode_image", "image_to_datum", "open_db", "parse_datum",
    "read_file_to_datum", "read_image", "read_image_to_datum",
    "resize_bilinear",
]
