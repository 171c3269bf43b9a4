"""kaffe.ops.detection's NMS: the whole-matrix overlap path keeps exactly
the boxes the box-by-box path keeps."""
import numpy as np
import pytest

from kaffe.ops import detection
from kaffe.ops.detection import box_sizes, jaccard_overlap, nms_fast


def _boxes(count, seed):
    rng = np.random.default_rng(seed)
    corner = rng.random((count, 2)).astype(np.float32)
    size = (rng.random((count, 2)) * 0.3).astype(np.float32)
    boxes = np.concatenate([corner, corner + size], axis=1)
    boxes[::7, 2:] = boxes[::7, :2]                 # empty boxes
    boxes[1::11] = boxes[::11][:len(boxes[1::11])]  # duplicates
    boxes[2::13, 0] = boxes[3::13, 2][:len(boxes[2::13])]   # touching
    return boxes, box_sizes(boxes).astype(np.float32)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.45, 0.9])
def test_matrix_and_box_by_box_nms_agree(seed, threshold, monkeypatch):
    boxes, sizes = _boxes(300, seed)
    scores = np.random.default_rng(seed + 10).random(300).astype(np.float32)
    scores[::5] = scores[0]                          # ties keep index order
    matrix = nms_fast(boxes, sizes, scores, 0.05, threshold, 1.0, 200)
    monkeypatch.setattr(detection, "_NMS_MATRIX_MAX", 0)
    assert nms_fast(boxes, sizes, scores, 0.05, threshold, 1.0, 200) \
        == matrix
    assert len(matrix) > 1


def test_overlap_matrix_rows_are_jaccard_overlap():
    boxes, sizes = _boxes(60, 5)
    matrix = detection._overlap_matrix(boxes, sizes)
    for i in range(len(boxes)):
        np.testing.assert_array_equal(
            matrix[i], jaccard_overlap(boxes[i], sizes[i], boxes, sizes))
