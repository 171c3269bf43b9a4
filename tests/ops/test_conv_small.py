"""SmallConvForward: the same bits as conv_forward, where it applies."""
import numpy as np
import pytest

from kaffe.ops import conv as conv_ops
from kaffe.ops.conv import conv_forward
from kaffe.ops.conv_small import MAX_COLUMN_ELEMENTS, SmallConvForward

CASES = [
    # x shape, w shape, stride, pad, dilation
    ((1, 3, 12, 12), (10, 3, 3, 3), 1, 0, 1),       # P-Net conv1, batch-first
    ((8, 3, 12, 12), (10, 3, 3, 3), 1, 0, 1),       # batch 8: batch-last
    ((1, 32, 3, 3), (4, 32, 1, 1), 1, 0, 1),        # pointwise, batch-first
    ((8, 32, 3, 3), (2, 32, 1, 1), 1, 0, 1),        # pointwise, batch-last
    ((2, 4, 9, 7), (6, 4, 3, 2), (2, 1), (1, 2), (1, 2)),
    ((3, 2, 11), (5, 2, 4), 3, 2, 1),               # 1-D
    ((2, 2, 5, 6, 4), (3, 2, 2, 3, 2), 1, 1, 1),    # 3-D
    ((1, 20, 12, 12), (50, 20, 5, 5), 1, 0, 1),     # LeNet conv2
    ((1, 1, 28, 28), (20, 1, 5, 5), 1, 0, 1),       # LeNet conv1
    # The rows-first im2col: padded, dilated, strided along the width ...
    ((1, 4, 9, 11), (5, 4, 3, 2), (1, 2), (2, 1), (2, 3)),
    # ... and several images batch-first.
    ((2, 2, 20, 20), (3, 2, 3, 3), 1, 1, 1),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape, w_shape, stride, pad, dilation", CASES)
def test_same_bits_as_conv_forward(x_shape, w_shape, stride, pad, dilation,
                                   bias, dtype):
    rng = np.random.default_rng(sum(x_shape) + len(w_shape))
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    small = SmallConvForward.build(x_shape, w_shape, dtype, stride, pad,
                                   dilation, 1)
    assert small is not None
    expected = conv_forward(x, w, b, stride=stride, pad=pad,
                            dilation=dilation)
    y = np.full(expected.shape, np.nan, dtype=dtype)
    for _ in range(2):      # its buffers are reused: the second call too
        assert small.forward(x, w, b, y) is y
        np.testing.assert_array_equal(y.view(f"u{y.itemsize}"),
                                      expected.view(f"u{y.itemsize}"))
        x = x * -0.5
        expected = conv_forward(x, w, b, stride=stride, pad=pad,
                                dilation=dilation)


def test_refuses_what_conv_forward_does_otherwise():
    # Winograd (float32 3×3 stride 1 with many channels), groups, chunked
    # batches and large columns stay on conv_forward's own paths.
    assert SmallConvForward.build((1, 64, 56, 56), (64, 64, 3, 3),
                                  np.float32, 1, 1, 1, 1) is None
    assert SmallConvForward.build((1, 4, 8, 8), (4, 1, 3, 3), np.float32,
                                  1, 1, 1, 4) is None
    assert SmallConvForward.build((1, 4, 8, 8), (4, 4, 3, 3), np.int32,
                                  1, 1, 1, 1) is None
    side = int(np.sqrt(MAX_COLUMN_ELEMENTS)) + 8
    assert SmallConvForward.build((1, 1, side, side), (1, 1, 1, 1),
                                  np.float32, 1, 0, 1, 1) is None


def test_chunked_batch_is_refused(monkeypatch):
    monkeypatch.setattr(conv_ops, "_CHUNK_COLUMN_ELEMENTS", 27 * 100)
    assert SmallConvForward.build((2, 3, 12, 12), (10, 3, 3, 3),
                                  np.float32, 1, 0, 1, 1) is None


def test_rows_first_im2col_is_taken_where_it_applies():
    def rows_first(*args):
        small = SmallConvForward.build(*args, 1)
        return small.batch_first and small.rows is not None

    assert rows_first((1, 20, 12, 12), (50, 20, 5, 5), np.float32, 1, 0, 1)
    assert rows_first((2, 2, 20, 20), (3, 2, 3, 3), np.float32, 1, 1, 1)
    assert rows_first((1, 4, 9, 11), (5, 4, 3, 2), np.float32, (1, 2),
                      (2, 1), (2, 3))
    # Strided along the height, or one output row: the single copy.
    assert not rows_first((1, 4, 9, 9), (5, 4, 3, 3), np.float32, 2, 0, 1)
    assert not rows_first((1, 16, 3, 3), (8, 16, 3, 3), np.float32, 1, 0,
                          1)
