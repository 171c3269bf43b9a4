"""DenseImageData: SegNet's data layer of image + label-image pairs."""
import logging

import numpy as np

from ...core.errors import KaffeFormatError
from ...core.registry import register_layer
from ...data.image import read_image
from ...parallel.context import data_shard, next_kept
from .base_data import BasePrefetchingDataLayer
from .list_cursor import ListCursor

log = logging.getLogger("kaffe")

FIELD = "dense_image_data_param"


@register_layer("DenseImageData")
class DenseImageDataLayer(ListCursor, BasePrefetchingDataLayer):
    """Batches of images and their per-pixel label images.

    From the SegNet Caffe fork (alexgkendall/caffe-segnet,
    ``dense_image_data_layer.cpp``). Reads dense_image_data_param: source
    (a text file of whitespace-separated "image label_image" pairs),
    root_folder (prefixed to both paths as a string), batch_size,
    shuffle (at setup and after every pass), rand_skip, new_height +
    new_width (both or neither: the image is resized bilinearly, the label
    image with nearest-neighbour, as the fork), is_color; and
    transform_param (mean, scale) for the image only: labels keep their
    pixel values. Random crops and mirroring (transform_param crop_size /
    mirror, or this message's crop_width / crop_height / mirror) are
    refused: the fork aborts on them too (its label would not follow).

    Tops: data (batch_size, C, H, W) and label (batch_size, 1, H, W).
    Every batch is shaped by its first image (the fork reshapes only for
    batch 1). With several solvers a TRAIN-phase layer uses every N-th
    pair, from pair ``solver_rank`` on, as ImageData (kaffe.parallel).
    Backward does nothing (no bottoms).
    """

    exact_num_top_blobs = 2

    def data_setup(self, top):
        p = self.layer_param.dense_image_data_param
        t = self.layer_param.transform_param
        if (p.new_height == 0) != (p.new_width == 0):
            raise self.config_error(
                "and new_width must be set together",
                field=f"{FIELD}.new_height",
                received=f"new_height {p.new_height}, new_width "
                         f"{p.new_width}", fix="set both (to resize) or "
                                               "neither")
        for field, value in ((f"{FIELD}.mirror", p.mirror),
                             (f"{FIELD}.crop_width", p.crop_width),
                             (f"{FIELD}.crop_height", p.crop_height),
                             ("transform_param.mirror", t.mirror),
                             ("transform_param.crop_size", t.crop_size)):
            if value:
                raise self.config_error(
                    "is not supported: a random crop or flip would not be "
                    "applied to the label image (the SegNet fork aborts "
                    "too)", field=field, received=value,
                    fix="remove it; resize with new_height/new_width")
        if not p.source:
            raise self.config_error("is not set", field=f"{FIELD}.source",
                                    fix="name the list file of image pairs")
        if p.batch_size <= 0:
            raise self.config_error("must be > 0",
                                    field=f"{FIELD}.batch_size",
                                    received=p.batch_size)
        log.info("Opening file %s", p.source)
        self.lines = read_pair_list(p.source)
        self.open_list(self.lines, p, FIELD, "examples")
        self.offset = 0           # pairs passed, for kaffe.parallel's shard
        self.shard = data_shard(self.phase, p.batch_size)
        image, label = self._read(self.lines[self.lines_id])
        shape = list(self.transformer.infer_shape(image))
        shape[0] = p.batch_size
        top[0].reshape(shape)
        top[1].reshape((p.batch_size, 1) + label.shape[1:])
        log.info("output data size: %s", ",".join(map(str, shape)))

    def _read(self, entry):
        """(image C×H×W, label 1×H×W) for one list entry."""
        p = self.layer_param.dense_image_data_param
        path, label_path, line = entry
        image = read_image(p.root_folder + path, p.new_height, p.new_width,
                           p.is_color)
        label = read_image(p.root_folder + label_path, 0, 0, False)
        for what, name, array in (("an image", path, image),
                                  ("a label image", label_path, label)):
            if array is None:
                raise KaffeFormatError(
                    f"names {what} that cannot be opened or decoded: "
                    f"'{p.root_folder + name}'", file=p.source, line=line,
                    fix="check the path, root_folder (it is prefixed as a "
                        "string) and the file")
        if p.new_height > 0:
            label = resize_nearest(label, p.new_height, p.new_width)
        if label.shape[:2] != image.shape[:2]:
            raise KaffeFormatError(
                "pairs an image and a label image of different sizes",
                file=p.source, line=line,
                received=f"{image.shape[0]}×{image.shape[1]} and "
                         f"{label.shape[0]}×{label.shape[1]}",
                fix="give every label image its image's height and width")
        return image.transpose(2, 0, 1), label.transpose(2, 0, 1)

    def load_batch(self):
        """Read batch_size pairs (on the prefetch thread)."""
        p = self.layer_param.dense_image_data_param
        data = labels = None
        for item in range(p.batch_size):
            self.offset = next_kept(self.shard, self.offset, self._advance)
            entry = self.lines[self.lines_id]
            image, label = self._read(entry)
            where = f"image '{entry[0]}' ({p.source}:{entry[2]})"
            if item == 0:
                shape = list(self.transformer.infer_shape(image, where))
                shape[0] = p.batch_size
                data = self.new_batch(shape)
                labels = self.new_batch((p.batch_size, 1) + label.shape[1:])
            self.transformer.transform(image, data[item], where)
            if label.shape != labels.shape[1:]:
                raise KaffeFormatError(
                    f"{where} does not fit the batch, which its first "
                    "example shaped", received=label.shape[1:],
                    expected=labels.shape[2:],
                    fix="make every image the same size, or resize with "
                        "new_height/new_width")
            labels[item] = label
            self._advance()
            self.offset += 1
        return data, labels


def read_pair_list(source):
    """[(image path, label path, line)] from whitespace-separated tokens, as
    the fork's ``infile >> filename >> label_filename`` reads them."""
    try:
        with open(source, "rb") as f:
            text = f.read().decode("utf-8", "surrogateescape")
    except OSError as e:
        raise KaffeFormatError(f"cannot read list file ({e.strerror})",
                               file=source) from None
    tokens = [(word, number) for number, line in
              enumerate(text.split("\n"), start=1) for word in line.split()]
    if len(tokens) % 2:
        word, number = tokens[-1]
        raise KaffeFormatError(
            "ends with an image that has no label image", file=source,
            line=number, received=word,
            expected="'image label_image' pairs")
    if not tokens:
        raise KaffeFormatError("lists no examples", file=source,
                               fix="write one 'image label_image' per line")
    return [(tokens[i][0], tokens[i + 1][0], tokens[i][1])
            for i in range(0, len(tokens), 2)]


def resize_nearest(image, height, width):
    """OpenCV's INTER_NEAREST resize of an (H, W, C) array: destination
    pixel x reads source pixel min(⌊x · W_src / W_dst⌋, W_src − 1)."""
    rows = np.minimum((np.arange(height) * (image.shape[0] / height))
                      .astype(np.int64), image.shape[0] - 1)
    cols = np.minimum((np.arange(width) * (image.shape[1] / width))
                      .astype(np.int64), image.shape[1] - 1)
    return image[rows][:, cols]
