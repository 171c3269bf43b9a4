"""Max pooling of small inputs with its Python work done once.

:func:`kaffe.ops.pooling.max_pool_forward` (no mask asked: inference)
takes the separable path: the maxima along the width into a row buffer,
then along the height, each pass seeded with −FLT_MAX. On a 10×10 map
(MTCNN's P-Net) its geometry checks and slice arithmetic cost 15 µs around
2 µs of arithmetic. A :class:`SmallMaxPool` is made once for one input
shape and window geometry (the Pooling layer keeps one while its input
shape stays) and runs only the ``fmax`` passes.

It applies where every kernel offset's cells cover all the outputs along
its axis (no padding or overhang reaching outside the image), the windows
are not so few that max_pool_forward loops over them instead, and the
input takes at most ``MAX_BYTES`` (one of max_pool_forward's chunks). The
passes then start from the first offset's cells instead of −FLT_MAX and
clamp at −FLT_MAX once at the end: ``fmax`` ignores NaN and −FLT_MAX is
below every other number it can win against, so every output has the
bits max_pool_forward gives it (the tests check this, zeros of both signs,
NaN and −inf included).
"""
import numpy as np

from .pooling import _CHUNK_BYTES, _MAX_INIT, _axis_ranges, _few_windows

__all__ = ["SmallMaxPool", "MAX_BYTES"]

MAX_BYTES = _CHUNK_BYTES


class SmallMaxPool:
    """Mask-free max pooling of (N, C, H, W) inputs of one shape.

    Make it with :meth:`build` (None where it does not apply), then call
    ``forward(x, y)``: x C-contiguous of ``x_shape``, y C-contiguous
    (N, C, H_out, W_out) not overlapping x.
    """

    @classmethod
    def build(cls, x_shape, dtype, kernel, stride, pad, out_hw):
        """A SmallMaxPool, or None where max_pool_forward's own passes are
        needed."""
        x_shape, out_hw = tuple(x_shape), tuple(out_hw)
        dtype = np.dtype(dtype)
        if (len(x_shape) != 4 or dtype not in (np.float32, np.float64)
                or _few_windows(kernel, out_hw)
                or np.prod(x_shape) * dtype.itemsize > MAX_BYTES):
            return None
        along = []
        for axis in (0, 1):
            cells = []
            for offset in range(kernel[axis]):
                ranges = _axis_ranges(x_shape[2 + axis], out_hw[axis],
                                      stride[axis], pad[axis], offset)
                if ranges is None or ranges[0] != slice(0, out_hw[axis]):
                    return None
                cells.append(ranges[1])
            along.append(cells)
        return cls(x_shape, dtype, out_hw, along[0], along[1])

    def __init__(self, x_shape, dtype, out_hw, rows, cols):
        planes = x_shape[0] * x_shape[1]
        self.x_shape = x_shape
        self.planes_in = (planes,) + x_shape[2:]
        self.planes_out = (planes,) + out_hw
        self.rows = [(slice(None), r) for r in rows]
        self.cols = [(Ellipsis, c) for c in cols]
        self.row_max = (np.empty((planes, x_shape[2], out_hw[1]), dtype)
                        if len(cols) > 1 else None)

    def forward(self, x, y):
        """y = the window maxima of x (−FLT_MAX where no cell is above)."""
        x = x.reshape(self.planes_in)
        y = y.reshape(self.planes_out)
        cols = self.cols
        row_max = self.row_max
        if row_max is None:
            row_max = x[cols[0]]
        else:
            np.fmax(x[cols[0]], x[cols[1]], out=row_max)
            for index in cols[2:]:
                np.fmax(row_max, x[index], out=row_max)
        rows = self.rows
        if len(rows) == 1:
            y[...] = row_max[rows[0]]
        else:
            np.fmax(row_max[rows[0]], row_max[rows[1]], out=y)
            for index in rows[2:]:
                np.fmax(y, row_max[index], out=y)
        np.fmax(y, _MAX_INIT, out=y)
