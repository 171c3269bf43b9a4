"""pycaffe's image resize (``caffe.io.resize_image``) without scikit-image.

:func:`resize_image` reproduces what pycaffe's ``skimage.transform.resize``
and ``scipy.ndimage.zoom`` calls computed, with NumPy only: bilinear or
nearest, pixel centres aligned (1- and 3-channel images) or corners aligned
(any other channel count). :mod:`kaffe.data.image` has the other resize,
OpenCV's ``INTER_LINEAR`` on 8-bit images, which Caffe's C++ tools use.
"""
import numpy as np

from ..errors import KaffeConfigError, KaffeShapeError


def resize_image(im, new_dims, interp_order=1, *, anti_aliasing=False):
    """Resize an H×W×K image to ``new_dims`` = (height, width), K unchanged.

    What pycaffe computes, without scikit-image or SciPy:

    * K = 1 or 3 (``skimage.transform.resize(..., mode='constant')`` on the
      image scaled to [0, 1], then scaled back): pixel centres are aligned
      (source coordinate = (o + 0.5) · in/out − 0.5) and samples beyond the
      border count as the image's minimum — so upscaled borders are darkened,
      exactly as pycaffe's. The result is clipped to the input's range.
      A constant image stays constant.
    * any other K (``scipy.ndimage.zoom``): corners are aligned (source
      coordinate = o · (in − 1)/(out − 1)), no border effect; integer
      images are rounded half away from zero as zoom does (a value at an
      exact .5 may land one level off SciPy's).

    Args:
        im: H×W×K ndarray (any real dtype, any range).
        new_dims: (height, width).
        interp_order: 1 bilinear (default), 0 nearest neighbour.
        anti_aliasing: only for K = 1 or 3: smooth with scikit-image's Gaussian
            (σ = (in/out − 1)/2 per axis) before downscaling, as
            scikit-image ≥ 0.15 does by default. pycaffe's results date from
            before that, so it is off.

    Returns:
        float32 ndarray (new_dims[0], new_dims[1], K) in the input's range.

    Compared with ``cv2.resize(INTER_LINEAR)`` on float images: the same values
    when downscaling, and in the interior when upscaling; OpenCV replicates the
    edge pixels where this blends in the minimum.
    """
    im = np.asarray(im)
    if im.ndim != 3:
        raise KaffeShapeError("resize_image takes an H×W×K image",
                              received=im.shape, expected="3 axes")
    if interp_order not in (0, 1):
        raise KaffeConfigError(
            "is not supported", field="interp_order", received=interp_order,
            expected="0 (nearest) or 1 (bilinear)",
            fix="kaffe has no spline interpolation; use 0 or 1")
    out_h, out_w = (int(d) for d in new_dims)
    if out_h <= 0 or out_w <= 0:
        raise KaffeShapeError("resize_image needs a positive size",
                              received=(out_h, out_w))
    if im.shape[0] == 0 or im.shape[1] == 0:
        raise KaffeShapeError("cannot resize an empty image",
                              received=im.shape)
    if im.shape[-1] not in (1, 3):
        out = _zoom_corners(im, out_h, out_w, interp_order)
        return out.astype(np.float32)
    im_min, im_max = im.min(), im.max()
    if not im_max > im_min:
        return np.full((out_h, out_w, im.shape[-1]), im_min, dtype=np.float32)
    # skimage works in float32 for float32 input, else in float64.
    work = np.float32 if im.dtype == np.float32 else np.float64
    if work is np.float64:
        im_min, im_max = np.float64(im_min), np.float64(im_max)
    im_std = ((im - im_min) / (im_max - im_min)).astype(work)
    if anti_aliasing:
        im_std = _gaussian_smooth(im_std, (im.shape[0] / out_h,
                                           im.shape[1] / out_w))
    resized = _zoom_centres(im_std, out_h, out_w, interp_order).astype(work)
    np.clip(resized, 0, 1, out=resized)
    return (resized * (im_max - im_min) + im_min).astype(np.float32)


def _taps(n_in, n_out, order, centres):
    """Source indices (lo, hi) and weights (w_lo, w_hi) along one axis.

    Out-of-range taps get index -1 (read as zero by the callers).
    """
    o = np.arange(n_out, dtype=np.float64)
    if centres:
        x = (o + 0.5) * (n_in / n_out) - 0.5
    else:
        x = o * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(1)
        x = np.clip(x, 0, n_in - 1)
    if order == 0:
        lo = np.clip(np.floor(x + 0.5).astype(np.int64), 0, n_in - 1)
        return lo, lo, np.ones(n_out), np.zeros(n_out)
    lo = np.floor(x).astype(np.int64)
    t = x - lo
    hi = lo + 1
    if centres:
        lo = np.where(lo < 0, -1, lo)
        hi = np.where(hi >= n_in, -1, hi)
    else:
        hi = np.minimum(hi, n_in - 1)
    return lo, hi, 1.0 - t, t


def _interp_axis(a, axis, lo, hi, w_lo, w_hi):
    """Linear interpolation of float64 ``a`` along ``axis``; index -1 = 0."""
    padded = np.concatenate(
        [a, np.zeros_like(a.take([0], axis=axis))], axis=axis)  # [-1] is 0
    shape = [1] * a.ndim
    shape[axis] = -1
    return (padded.take(lo, axis=axis) * w_lo.reshape(shape)
            + padded.take(hi, axis=axis) * w_hi.reshape(shape))


def _zoom_centres(im, out_h, out_w, order):
    """skimage's resize (ndimage.zoom, grid_mode, 'grid-constant' 0)."""
    a = im.astype(np.float64)
    a = _interp_axis(a, 0, *_taps(im.shape[0], out_h, order, True))
    return _interp_axis(a, 1, *_taps(im.shape[1], out_w, order, True))


def _zoom_corners(im, out_h, out_w, order):
    """scipy.ndimage.zoom(im, (out_h/H, out_w/W, 1), order) (corner-aligned);
    the result has ``im``'s dtype, as zoom's (integers rounded)."""
    a = im.astype(np.float64)
    a = _interp_axis(a, 0, *_taps(im.shape[0], out_h, order, False))
    a = _interp_axis(a, 1, *_taps(im.shape[1], out_w, order, False))
    if np.issubdtype(im.dtype, np.integer):
        info = np.iinfo(im.dtype)
        a = np.trunc(a + np.where(a < 0, -0.5, 0.5))  # half away from 0
        a = np.clip(a, info.min, info.max)
    return a.astype(im.dtype) if im.dtype.kind in "fiu" else a


def _gaussian_smooth(im, factors):
    """scipy.ndimage.gaussian_filter(im, σ = max(0, (f − 1)/2), mode
    'constant' 0, truncate 4) over the two image axes, in ``im``'s dtype."""
    out = im
    for axis, factor in enumerate(factors):
        sigma = max(0.0, (factor - 1) / 2)
        if sigma <= 1e-15:
            continue
        radius = int(4.0 * sigma + 0.5)
        x = np.arange(-radius, radius + 1, dtype=np.float64)
        weights = np.exp(-0.5 / sigma ** 2 * x ** 2)
        weights /= weights.sum()
        a = np.moveaxis(out.astype(np.float64), axis, 0)
        padded = np.concatenate([np.zeros((radius,) + a.shape[1:]), a,
                                 np.zeros((radius,) + a.shape[1:])])
        acc = np.zeros_like(a)
        for k, w in enumerate(weights):
            acc += w * padded[k:k + a.shape[0]]
        out = np.moveaxis(acc, 0, axis).astype(im.dtype)
    return out
