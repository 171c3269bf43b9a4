"""WindowData: R-CNN training windows cropped from images and warped."""
import logging
import math

import numpy as np

from ...core.errors import KaffeFormatError
from ...core.registry import register_layer
from ...data.datum import read_file_to_datum
from ...data.image import decode_image, read_image, resize_bilinear
from ...data.transformer import child_generator
from ...parallel.context import data_shard
from .base_data import BasePrefetchingDataLayer

log = logging.getLogger("kaffe")

# Fields of a window (Caffe's WindowField enum).
IMAGE_INDEX, LABEL, OVERLAP, X1, Y1, X2, Y2 = range(7)


def c_round(value):
    """C's ``round``: halves go away from zero (NumPy's go to even)."""
    v = float(value)
    r = math.floor(v)
    frac = v - r
    if frac > 0.5 or (frac == 0.5 and v > 0):
        r += 1
    return int(r)


class _Tokens:
    """Whitespace-separated tokens of a text file with their line numbers,
    read as ``std::ifstream >>`` reads them."""

    def __init__(self, path):
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
        except FileNotFoundError:
            raise KaffeFormatError(
                "window file not found", file=path,
                fix="check window_data_param.source") from None
        except OSError as e:
            raise KaffeFormatError(f"cannot read window file ({e.strerror})",
                                   file=path) from None
        self.path = path
        self.items = [(token, number)
                      for number, line in enumerate(text.split("\n"), 1)
                      for token in line.split()]
        self.pos = 0
        self.line = 1

    def more(self):
        return self.pos < len(self.items)

    def take(self, kind, what):
        if self.pos >= len(self.items):
            raise KaffeFormatError(f"ends early: {what} is missing",
                                   file=self.path, line=self.line,
                                   fix=_FORMAT)
        token, self.line = self.items[self.pos]
        self.pos += 1
        try:
            return kind(token)
        except ValueError:
            raise KaffeFormatError(
                f"has a bad {what}", file=self.path, line=self.line,
                received=token,
                expected="an integer" if kind is int else "a number",
                fix=_FORMAT) from None


_FORMAT = ("each image block is: '# image_index', image path, channels, "
           "height, width, num_windows, then one 'class_index overlap x1 y1 "
           "x2 y2' line per window")


@register_layer("WindowData")
class WindowDataLayer(BasePrefetchingDataLayer):
    """Samples foreground and background windows, warps them to crop_size.

    Reads window_data_param: source (the window file, blocks of
    ``# image_index`` / image path / channels / height / width / num_windows
    / ``class_index overlap x1 y1 x2 y2`` per window), batch_size,
    fg_threshold (0.5: windows overlapping at least this are foreground,
    their class > 0), bg_threshold (0.5: windows overlapping less are
    background, label 0), fg_fraction (0.25 of each batch is foreground),
    context_pad (pixels of context around the warped window), crop_mode
    ("warp": stretch the window; "square": the smallest enclosing square),
    cache_images (keep the image files in memory), root_folder (prefixed to
    image paths), and **scale** (Caffe multiplies by window_data_param.scale,
    not transform_param.scale). From transform_param it reads crop_size
    (required), mirror, and mean_file (indexed from the centre crop of the
    mean, at (W_mean - crop_size) / 2 on both axes) or mean_value.

    A batch holds batch_size - int(batch_size * fg_fraction) background
    windows, then the foreground ones, each window drawn uniformly with
    replacement (on the prefetch thread, from the layer's own generator),
    then mirrored at random when ``mirror``. Images are decoded in colour
    (3 channels), and the window image indices count the blocks in file
    order, as Caffe's do. With several solvers a TRAIN-phase layer draws
    only from its share of the windows: the foreground and the background
    windows numbered solver_rank, solver_rank + N, … in file order (Caffe
    lets every solver draw from all windows with its own seed).

    Where Caffe only logs that an image cannot be read (and leaves the batch
    part-filled), kaffe raises an error naming the file.

    Tops: data (batch_size, channels, crop_size, crop_size), label
    (batch_size,). Backward does nothing (no bottoms).
    """

    exact_num_top_blobs = 2

    def data_setup(self, top):
        p = self.layer_param.window_data_param
        t = self.layer_param.transform_param
        log.info("Window data layer:\n  foreground (object) overlap "
                 "threshold: %g\n  background (non-object) overlap "
                 "threshold: %g\n  foreground sampling fraction: %g\n  "
                 "cache_images: %d\n  root_folder: %s", p.fg_threshold,
                 p.bg_threshold, p.fg_fraction, p.cache_images,
                 p.root_folder)
        if p.crop_mode not in ("warp", "square"):
            raise self.config_error("is not a crop mode",
                                    field="window_data_param.crop_mode",
                                    received=p.crop_mode,
                                    expected="'warp' or 'square'")
        self.prefetch_generator = child_generator() \
            if t.mirror or t.crop_size else None
        if not p.source:
            raise self.config_error("is not set",
                                    field="window_data_param.source",
                                    fix="name the window file")
        self._read_window_file(p)
        self._take_shard(p)
        crop = t.crop_size
        if crop <= 0:
            raise self.config_error(
                "must be > 0 for WindowData (the warped window size)",
                field="transform_param.crop_size", received=crop)
        if p.batch_size <= 0:
            raise self.config_error("must be > 0",
                                    field="window_data_param.batch_size",
                                    received=p.batch_size)
        if 2 * p.context_pad >= crop and p.context_pad > 0:
            raise self.config_error(
                "leaves no room for the window",
                field="window_data_param.context_pad",
                received=p.context_pad,
                expected=f"less than half of crop_size ({crop})")
        shape = (p.batch_size, self.channels, crop, crop)
        top[0].reshape(shape)
        log.info("output data size: %s", ",".join(map(str, shape)))
        top[1].reshape((p.batch_size,))
        values = self.transformer.mean_values
        if values and len(values) not in (1, self.channels):
            raise self.config_error(
                "must be given once or once per channel",
                field="transform_param.mean_value",
                received=f"{len(values)} values", expected=f"1 or "
                                                           f"{self.channels}")
        self.mean_values = np.asarray(
            values * (self.channels if len(values) == 1 else 1),
            dtype=self.dtype)

    def _read_window_file(self, p):
        tokens = _Tokens(p.source)
        self.images = []          # (path, (channels, height, width), line)
        self.image_cache = []
        self.fg_windows = []
        self.bg_windows = []
        fg_threshold = np.float32(p.fg_threshold)
        bg_threshold = np.float32(p.bg_threshold)
        label_hist = {0: 0}
        if not tokens.more():
            raise KaffeFormatError("window file is empty", file=p.source,
                                   fix=_FORMAT)
        image_index = None
        while tokens.more():
            hashtag = tokens.take(str, "'#'")
            if hashtag != "#":
                raise KaffeFormatError(
                    "has a block that does not start with '#'",
                    file=p.source, line=tokens.line, received=hashtag,
                    expected="'#' and the image index", fix=_FORMAT)
            if not tokens.more():
                break            # Caffe stops at a '#' without an index
            image_index = tokens.take(int, "image index")
            path = p.root_folder + tokens.take(str, "image path")
            line = tokens.line
            size = tuple(tokens.take(int, what) for what in
                         ("channels", "height", "width"))
            self.channels = size[0]
            self.images.append((path, size, line))
            if p.cache_images:
                datum = read_file_to_datum(path)
                if datum is None:
                    raise KaffeFormatError(
                        f"names an image that cannot be read: '{path}'",
                        file=p.source, line=line)
                self.image_cache.append(datum.data)
            num_windows = tokens.take(int, "num_windows")
            for _ in range(num_windows):
                label = tokens.take(int, "class index")
                overlap = np.float32(tokens.take(float, "overlap"))
                box = [tokens.take(int, name)
                       for name in ("x1", "y1", "x2", "y2")]
                window = [image_index, label, overlap] + box
                if overlap >= fg_threshold:
                    if label <= 0:
                        raise KaffeFormatError(
                            "has a foreground window of class <= 0",
                            file=p.source, line=tokens.line, received=label,
                            expected="a class index > 0 (0 is background)")
                    self.fg_windows.append(window)
                    label_hist[label] = label_hist.get(label, 0) + 1
                elif overlap < bg_threshold:
                    window[LABEL] = 0
                    window[OVERLAP] = 0
                    self.bg_windows.append(window)
                    label_hist[0] += 1
            if image_index % 100 == 0:
                log.info("num: %d %s %d %d %d windows to process: %d",
                         image_index, path, *size, num_windows)
        if not self.images:
            raise KaffeFormatError("window file is empty", file=p.source,
                                   fix=_FORMAT)
        log.info("Number of images: %d", image_index + 1)
        for label in sorted(label_hist):
            log.info("class %d has %d samples", label, label_hist[label])
        log.info("Amount of context padding: %d", p.context_pad)
        log.info("Crop mode: %s", p.crop_mode)

    def _take_shard(self, p):
        """Keep this solver's share of the windows (every N-th)."""
        shard = data_shard(self.phase, p.batch_size)
        if shard is None:
            return
        for kind in ("fg_windows", "bg_windows"):
            windows = getattr(self, kind)
            if windows and len(windows) < shard.count:
                raise self.config_error(
                    f"has fewer {kind[:2]} windows than solvers",
                    field="window_data_param.source",
                    received=f"{len(windows)} windows",
                    expected=f"at least {shard.count} (one per solver)")
            setattr(self, kind, windows[shard.rank::shard.count])

    def _rand(self):
        """Caffe's PrefetchRand(): a uint32 from the layer's generator."""
        return int(self.prefetch_generator.integers(0, 2**32))

    def _load_image(self, index):
        p = self.layer_param.window_data_param
        if not 0 <= index < len(self.images):
            raise KaffeFormatError(
                f"has a window of image index {index}, but the file has "
                f"{len(self.images)} image blocks", file=p.source,
                fix="number the blocks 0, 1, 2 ... in file order")
        path, _, line = self.images[index]
        if p.cache_images:
            image = decode_image(self.image_cache[index], "color",
                                 what=f"image '{path}'")
        else:
            image = read_image(path, is_color=True)
            if image is None:
                raise KaffeFormatError(
                    f"names an image that cannot be opened or decoded: "
                    f"'{path}'", file=p.source, line=line)
        if image.shape[2] != self.channels:
            raise KaffeFormatError(
                f"image '{path}' decodes to {image.shape[2]} channels, but "
                f"the top has {self.channels} (the last block's channels)",
                file=p.source, line=line)
        return image

    def load_batch(self):
        """Sample, warp and batch the windows (on the prefetch thread)."""
        p = self.layer_param.window_data_param
        t = self.layer_param.transform_param
        D = self.dtype.type
        scale = D(p.scale)
        crop = t.crop_size
        use_square = p.crop_mode == "square"
        mean = self.transformer.mean
        mean_off = (mean.shape[2] - crop) // 2 if mean is not None else 0
        data = self.new_batch((p.batch_size, self.channels, crop, crop))
        labels = self.new_batch((p.batch_size,))
        num_fg = int(np.float32(p.batch_size) * np.float32(p.fg_fraction))
        if not self.fg_windows or not self.bg_windows:
            raise self.config_error(
                "has no foreground or no background windows",
                field="window_data_param.source",
                received=f"{len(self.fg_windows)} foreground, "
                         f"{len(self.bg_windows)} background",
                fix="WindowData needs both: check fg_threshold/bg_threshold "
                    "against the overlaps in the file")
        item = 0
        for is_fg, count in ((False, p.batch_size - num_fg), (True, num_fg)):
            windows = self.fg_windows if is_fg else self.bg_windows
            for _ in range(count):
                window = windows[self._rand() % len(windows)]
                do_mirror = bool(t.mirror and self._rand() % 2)
                image = self._load_image(int(window[IMAGE_INDEX]))
                patch, pad_h, pad_w = self._warp(image, window, crop,
                                                 do_mirror, use_square, D)
                rows, cols = patch.shape[:2]
                values = patch.transpose(2, 0, 1).astype(self.dtype)
                if mean is not None:
                    top, left = mean_off + pad_h, mean_off + pad_w
                    if (top < 0 or left < 0 or top + rows > mean.shape[1]
                            or left + cols > mean.shape[2]):
                        raise self.config_error(
                            "is too small for crop_size",
                            field="transform_param.mean_file",
                            received="×".join(map(str, mean.shape)),
                            expected=f"at least {crop}×{crop} per channel")
                    values = values - mean[:, top:top + rows,
                                           left:left + cols].astype(
                                               self.dtype)
                elif len(self.mean_values):
                    values = values - self.mean_values[:, None, None]
                data[item, :, pad_h:pad_h + rows, pad_w:pad_w + cols] = \
                    values * scale
                labels[item] = window[LABEL]
                item += 1
        return data, labels

    def _warp(self, image, window, crop, do_mirror, use_square, D):
        """Crop the (context-padded) window and warp it; returns the patch
        and where it goes in the crop×crop output (pad_h, pad_w)."""
        p = self.layer_param.window_data_param
        context_pad = p.context_pad
        img_h, img_w = image.shape[:2]
        x1, y1, x2, y2 = (int(window[i]) for i in (X1, Y1, X2, Y2))
        out_w = out_h = crop
        pad_w = pad_h = 0
        if context_pad > 0 or use_square:
            context_scale = D(crop) / D(crop - 2 * context_pad)
            half_height = D(D(y2 - y1 + 1) / D(2))
            half_width = D(D(x2 - x1 + 1) / D(2))
            center_x = D(x1) + half_width
            center_y = D(y1) + half_height
            if use_square:
                if half_height > half_width:
                    half_width = half_height
                else:
                    half_height = half_width
            x1 = c_round(center_x - half_width * context_scale)
            x2 = c_round(center_x + half_width * context_scale)
            y1 = c_round(center_y - half_height * context_scale)
            y2 = c_round(center_y + half_height * context_scale)
            unclipped_height = y2 - y1 + 1
            unclipped_width = x2 - x1 + 1
            pad_x1 = max(0, -x1)
            pad_y1 = max(0, -y1)
            pad_x2 = max(0, x2 - img_w + 1)
            pad_y2 = max(0, y2 - img_h + 1)
            x1 += pad_x1
            x2 -= pad_x2
            y1 += pad_y1
            y2 -= pad_y2
            clipped_height = y2 - y1 + 1
            clipped_width = x2 - x1 + 1
            scale_x = D(crop) / D(unclipped_width)
            scale_y = D(crop) / D(unclipped_height)
            out_w = c_round(D(clipped_width) * scale_x)
            out_h = c_round(D(clipped_height) * scale_y)
            pad_x1 = c_round(D(pad_x1) * scale_x)
            pad_x2 = c_round(D(pad_x2) * scale_x)
            pad_y1 = c_round(D(pad_y1) * scale_y)
            pad_h = pad_y1
            # Mirroring mirrors the padding too.
            pad_w = pad_x2 if do_mirror else pad_x1
            if pad_h + out_h > crop:
                out_h = crop - pad_h
            if pad_w + out_w > crop:
                out_w = crop - pad_w
        if not (0 <= x1 <= x2 < img_w and 0 <= y1 <= y2 < img_h):
            path = self.images[int(window[IMAGE_INDEX])][0]
            raise KaffeFormatError(
                f"has a window ({x1}, {y1}, {x2}, {y2}) outside its "
                f"{img_w}×{img_h} image '{path}'", file=p.source,
                expected="0 <= x1 <= x2 < width and 0 <= y1 <= y2 < height")
        if out_w <= 0 or out_h <= 0:
            raise KaffeFormatError(
                f"has a window ({x1}, {y1}, {x2}, {y2}) that warps to an "
                f"empty {out_w}×{out_h} patch", file=p.source)
        patch = resize_bilinear(image[y1:y2 + 1, x1:x2 + 1], out_h, out_w)
        if patch.ndim == 2:
            patch = patch[..., None]
        if do_mirror:
            patch = patch[:, ::-1]
        return patch, pad_h, pad_w
