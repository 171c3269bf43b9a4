"""Images as Caffe's OpenCV calls see them: decoded to BGR, resized bilinearly.

Caffe reads images with ``cv::imread``/``cv::imdecode`` and resizes them with
``cv::resize(..., INTER_LINEAR)``. kaffe decodes with Pillow and resizes with
a NumPy transcription of OpenCV's 8-bit bilinear kernel, so that the pixels
match what Caffe's data path produces:

* Images are ``uint8`` arrays of shape (H, W, C), channels in OpenCV's order:
  BGR, or BGRA when an alpha channel is kept; C = 1 for grey.
* Three decode modes, OpenCV's flags: ``"native"`` (``IMREAD_UNCHANGED``, as
  ``DecodeDatumToCVMatNative``: grey stays 1 channel, alpha is kept),
  ``"color"`` (``IMREAD_COLOR``: always 3 channels, alpha dropped, grey
  replicated) and ``"gray"`` (``IMREAD_GRAYSCALE``: 1 channel).
* Grey from a colour JPEG is libjpeg's luma channel (Pillow's draft mode asks
  libjpeg for it, as OpenCV does); from a colour PNG it is libpng's
  ``png_set_rgb_to_gray`` result (15-bit weights 9797, 19234, 3737,
  truncated), from other formats OpenCV's ``cvtColor`` (14-bit, rounded).
* :func:`resize_bilinear` is OpenCV's ``INTER_LINEAR`` for 8-bit images: the
  same sample positions, 11-bit fixed-point weights and rounding, and the exact
  2× downscale that OpenCV hands to its area filter.

Where kaffe cannot be bit-exact: libjpeg builds may decode a JPEG slightly
differently (Pillow and OpenCV usually bundle the same libjpeg-turbo); a PNG
with a gamma chunk read as grey may differ by a level (libpng applies the
gamma there); JPEG files kaffe *writes* are
Pillow's (quality 95, as OpenCV's default), so their bytes differ from
OpenCV's, and PNG bytes differ although the pixels are the same.

Pillow is imported only inside the functions that need it.
"""
import io
import logging
import os

import numpy as np

from ..core.errors import KaffeConfigError, KaffeFormatError
from ..optional import require

log = logging.getLogger("kaffe")

MODES = ("native", "color", "gray")

# OpenCV's fixed-point constants (imgproc/src/resize.cpp, color.hpp).
_COEF_BITS = 11
_COEF_SCALE = 1 << _COEF_BITS
_GRAY_SHIFT = 14
_R2Y, _G2Y, _B2Y = 4899, 9617, 1868
# libpng's rgb_to_gray weights for OpenCV's (0.299, 0.587), out of 2^15.
_PNG_R, _PNG_G, _PNG_B = 9797, 19234, 3737


def pil():
    """The ``PIL.Image`` module, or a KaffeError saying how to install it."""
    return require("PIL.Image", "reading or writing images")


def decode_image(data, mode="native", *, what="image"):
    """Decode encoded image bytes (JPEG, PNG, ...) as OpenCV would.

    Args:
        data: the file's bytes.
        mode: "native", "color" or "gray" (see the module docstring).
        what: how to name the data in an error message.

    Returns:
        A uint8 array (H, W, C) in BGR(A) order.

    Raises:
        KaffeFormatError: the bytes are not an image Pillow can read.
    """
    if mode not in MODES:
        raise KaffeConfigError("is not a decode mode", field="mode",
                               received=mode, expected=" or ".join(MODES))
    Image = pil()
    try:
        image = Image.open(io.BytesIO(data))
        if mode == "gray" and image.format == "JPEG" and image.mode in (
                "RGB", "YCbCr"):
            image.draft("L", image.size)      # libjpeg's own luma output
        image.load()
    except (OSError, ValueError, SyntaxError) as e:
        raise KaffeFormatError(
            f"{what} cannot be decoded ({e})",
            fix="check that the file is a complete JPEG/PNG/BMP image") \
            from None
    return _to_opencv(image, mode, what, png=image.format == "PNG")


def _to_opencv(image, mode, what, png=False):
    """A decoded Pillow image → an OpenCV-layout uint8 array."""
    if image.mode in ("1", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "RGBX",
                      "RGBa", "La"):
        has_alpha = image.mode in ("PA", "RGBa", "La") or (
            image.mode == "P" and "transparency" in image.info)
        image = image.convert("RGBA" if has_alpha else "RGB") \
            if image.mode != "1" else image.convert("L")
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        if mode == "native":
            raise KaffeFormatError(
                f"{what} has {image.mode} (not 8-bit) pixels; Caffe's data "
                f"path takes 8-bit images only",
                fix="convert the image to 8 bits, or read it with "
                    "force_color/force_gray (is_color) to reduce it")
        array = np.asarray(image)
        array = (array.astype(np.int64) >> 8).clip(0, 255).astype(np.uint8) \
            if image.mode.startswith("I;16") else \
            np.asarray(image.convert("L"))
        image_array, channels = array[..., None], "L"
    else:
        image_array = np.asarray(image)
        if image_array.ndim == 2:
            image_array = image_array[..., None]
        channels = image.mode
    if channels not in ("L", "LA", "RGB", "RGBA"):
        raise KaffeFormatError(f"{what} has the unsupported pixel mode "
                               f"{image.mode}")
    return _convert(image_array, channels, mode, png)


def _convert(array, channels, mode, png):
    """Pillow-ordered channels (L, LA, RGB, RGBA) → OpenCV's for ``mode``."""
    if channels == "L":
        grey = array
    elif channels == "LA":
        grey = array[..., :1]
    if mode == "gray":
        if channels in ("L", "LA"):
            return np.ascontiguousarray(grey)
        return rgb_to_gray(array[..., :3], png)
    if channels in ("L", "LA"):
        if mode == "native" and channels == "L":
            return np.ascontiguousarray(grey)
        if mode == "native":    # grey + alpha → BGRA
            return np.ascontiguousarray(np.concatenate(
                [grey, grey, grey, array[..., 1:2]], axis=2))
        return np.ascontiguousarray(np.repeat(grey, 3, axis=2))
    bgr = array[..., 2::-1]
    if channels == "RGBA" and mode == "native":
        return np.ascontiguousarray(np.concatenate([bgr, array[..., 3:4]],
                                                   axis=2))
    return np.ascontiguousarray(bgr)


def rgb_to_gray(rgb, png=False):
    """(H, W, 3) RGB uint8 → (H, W, 1) grey, as OpenCV's decoders compute it.

    ``png`` selects libpng's weights (truncated 15-bit); otherwise OpenCV's
    ``cvtColor`` (rounded 14-bit).
    """
    rgb = rgb.astype(np.int32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    if png:
        grey = (r * _PNG_R + g * _PNG_G + b * _PNG_B) >> 15
    else:
        grey = (r * _R2Y + g * _G2Y + b * _B2Y
                + (1 << (_GRAY_SHIFT - 1))) >> _GRAY_SHIFT
    return grey.astype(np.uint8)[..., None]


def read_image(path, height=0, width=0, is_color=True):
    """Caffe's ``ReadImageToCVMat``: read, decode, optionally resize.

    Args:
        path: the image file.
        height, width: resize to this size when both are > 0.
        is_color: decode as 3-channel BGR (True) or 1-channel grey (False).

    Returns:
        A uint8 (H, W, C) array, or None when the file cannot be opened or
        decoded (Caffe logs "Could not open or find file" and carries on; the
        callers decide whether that is fatal).
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
        image = decode_image(data, "color" if is_color else "gray",
                             what=f"image '{path}'")
    except (OSError, KaffeFormatError):
        log.error("Could not open or find file %s", path)
        return None
    if height > 0 and width > 0:
        image = resize_bilinear(image, height, width)
    return image


def encode_image(image, ext):
    """Encode a (H, W, C) BGR(A)/grey uint8 image as ``ext`` ("png", "jpg").

    OpenCV's ``imencode`` defaults: JPEG quality 95; PNG is lossless.
    """
    Image = pil()
    ext = ext.lower().lstrip(".")
    formats = {"jpg": "JPEG", "jpeg": "JPEG", "jpe": "JPEG", "png": "PNG",
               "bmp": "BMP", "tif": "TIFF", "tiff": "TIFF", "ppm": "PPM",
               "pgm": "PPM", "pbm": "PPM", "webp": "WEBP"}
    if ext not in formats:
        raise KaffeConfigError(
            "is not an image format kaffe can write", field="encode_type",
            received=ext, expected="png or jpg (or bmp, tif, ppm, webp)")
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    channels = image.shape[2]
    if channels == 1:
        pil_image = Image.fromarray(image[..., 0], "L")
    elif channels == 3:
        pil_image = Image.fromarray(np.ascontiguousarray(image[..., ::-1]),
                                    "RGB")
    elif channels == 4:
        rgba = np.concatenate([image[..., 2::-1], image[..., 3:]], axis=2)
        pil_image = Image.fromarray(np.ascontiguousarray(rgba), "RGBA")
    else:
        raise KaffeFormatError(f"an image with {channels} channels cannot be "
                               "encoded", expected="1, 3 or 4 channels")
    if formats[ext] == "JPEG" and channels == 4:
        pil_image = pil_image.convert("RGB")
    out = io.BytesIO()
    options = {"quality": 95} if formats[ext] == "JPEG" else {}
    pil_image.save(out, format=formats[ext], **options)
    return out.getvalue()


def extension_matches(path, encoding):
    """Caffe's matchExt: does ``path``'s extension name ``encoding``?"""
    ext = os.path.splitext(path)[1][1:] if "." in os.path.basename(path) \
        else path
    ext, encoding = ext.lower(), encoding.lower()
    return ext == encoding or (encoding == "jpg" and ext == "jpeg")


# -- OpenCV's INTER_LINEAR ----------------------------------------------------
def resize_bilinear(image, height, width):
    """``cv::resize(image, (width, height), INTER_LINEAR)`` for uint8 images.

    Args:
        image: uint8 (H, W) or (H, W, C).
        height, width: the output size (> 0).

    Returns:
        uint8 (height, width[, C]), bit-identical to OpenCV's kernel.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise KaffeFormatError("resize_bilinear takes uint8 images",
                               received=str(image.dtype), expected="uint8")
    if height <= 0 or width <= 0:
        raise KaffeConfigError("resize size must be positive",
                               received=f"{height}x{width}")
    squeeze = image.ndim == 2
    if squeeze:
        image = image[..., None]
    src_h, src_w = image.shape[:2]
    if (src_h, src_w) == (height, width):
        out = image.copy()
    elif src_h == 2 * height and src_w == 2 * width:
        # OpenCV treats an exact 2x shrink as INTER_AREA: the rounded mean of
        # each 2x2 block.
        s = image.astype(np.int32)
        out = ((s[0::2, 0::2] + s[0::2, 1::2] + s[1::2, 0::2]
                + s[1::2, 1::2] + 2) >> 2).astype(np.uint8)
    else:
        x0, x1, ax0, ax1 = _linear_taps(src_w, width, clamp_weights=True)
        y0, y1, by0, by1 = _linear_taps(src_h, height, clamp_weights=False)
        s = image.astype(np.int32)
        # Horizontal pass: int sums scaled by 2^11 (OpenCV's HResizeLinear).
        rows = s[:, x0] * ax0[:, None] + s[:, x1] * ax1[:, None]
        # Vertical pass with OpenCV's 8-bit rounding (VResizeLinear).
        value = (((by0[:, None, None] * (rows[y0] >> 4)) >> 16)
                 + ((by1[:, None, None] * (rows[y1] >> 4)) >> 16) + 2) >> 2
        out = value.clip(0, 255).astype(np.uint8)
    return out[..., 0] if squeeze else out


def _linear_taps(src, dst, clamp_weights):
    """Source indices and 11-bit weights of OpenCV's linear resize on one axis.

    Along x OpenCV moves out-of-range taps onto the edge pixel with weight
    (1, 0); along y it only clamps the row indices and keeps the weights.
    """
    scale = 1.0 / (dst / src)
    d = np.arange(dst, dtype=np.float64)
    f = ((d + 0.5) * scale - 0.5).astype(np.float32)
    s = np.floor(f).astype(np.int64)
    f = (f - s.astype(np.float32)).astype(np.float32)
    if clamp_weights:
        low = s < 0
        f[low] = 0
        s[low] = 0
        high = s >= src - 1
        f[high] = 0
        s[high] = src - 1
    w1 = np.rint(f * np.float32(_COEF_SCALE)).astype(np.int32)
    w0 = np.rint((np.float32(1) - f) * np.float32(_COEF_SCALE)).astype(
        np.int32)
    return (np.clip(s, 0, src - 1), np.clip(s + 1, 0, src - 1), w0, w1)
