"""kaffe.ops.ufunc_buffer: NumPy's buffer size set for long rows only,
restored afterwards, results unchanged."""
import numpy as np

from kaffe.ops.ufunc_buffer import MIN_ROW, SMALL_BUFSIZE, rows_unbuffered


def test_sets_the_buffer_for_long_rows_and_restores_it():
    before = np.getbufsize()
    with rows_unbuffered(MIN_ROW):
        assert np.getbufsize() == SMALL_BUFSIZE
    assert np.getbufsize() == before
    with rows_unbuffered(MIN_ROW - 1):
        assert np.getbufsize() == before
    assert np.getbufsize() == before


def test_restores_the_buffer_after_an_error():
    before = np.getbufsize()
    try:
        with rows_unbuffered(4096):
            raise KeyError("x")
    except KeyError:
        pass
    assert np.getbufsize() == before


def test_broadcast_arithmetic_is_unchanged():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 40, 700)).astype(np.float32)
    m = rng.standard_normal((1, 40, 1)).astype(np.float32)
    expected = (x - m) / (m * m + 1)
    y = np.empty_like(x)
    with rows_unbuffered(x.shape[2]):
        np.subtract(x, m, out=y)
        np.divide(y, m * m + 1, out=y)
    np.testing.assert_array_equal(y, expected)
