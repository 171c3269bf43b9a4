"""NumPy's ufunc buffer size, set for broadcast arithmetic over rows.

A ufunc over a 2-D (or more) operand whose rows are not contiguous with
each other (a per-channel value broadcast along each row, a view of every
other row) is iterated row by row; when a row is shorter than about half
NumPy's buffer size (8192 elements by default), NumPy copies the operands
through its buffer in 8192-element pieces first, which costs 2-4× the
arithmetic itself. A small buffer size turns that off: the rows are then
computed in place. That wins for rows of a few hundred elements or more
(BatchNorm's subtraction on MobileNet's 144 × 56² map: 92 → 44 µs, on
192 × 28²: 35 → 17 µs, one thread) and loses for very short rows, where
the buffer's long pieces pay for themselves (960 × 7²: 12 → 33 µs).

``numpy.setbufsize`` is local to the thread (NumPy keeps it in a context
variable), so setting it around a few calls does not disturb others.
Results do not depend on it: the same arithmetic runs either way.
"""
import numpy as np

# The buffer size set while rows are long enough, and the row length from
# which that pays.
SMALL_BUFSIZE = 16
MIN_ROW = 128


class rows_unbuffered:
    """Context manager: NumPy's ufunc buffer small while ufuncs run over
    rows of ``row`` elements, if ``row >= MIN_ROW`` (else unchanged)."""

    __slots__ = ("_set", "_old")

    def __init__(self, row):
        self._set = row >= MIN_ROW

    def __enter__(self):
        if self._set:
            self._old = np.setbufsize(SMALL_BUFSIZE)
        return self

    def __exit__(self, *exc):
        if self._set:
            np.setbufsize(self._old)
        return False
