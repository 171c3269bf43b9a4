"""Top-k selection in Caffe's ArgMax order.

Caffe's ArgMax (``src/caffe/layers/argmax_layer.cpp``) pairs every value
with its index and partially sorts the pairs with ``std::greater``: by value,
descending, and among equal values by index, descending. So on ties the
LARGEST index wins (the opposite of ``numpy.argmax``). 0.0 and −0.0 are equal
values; the order of NaNs is unspecified (std::greater has none for them).
"""
from ..backend import array_module


def top_k(scores, k):
    """The k largest entries along axis 1, in Caffe's ArgMax order.

    Args:
        scores: an (outer, dim, inner) array.
        k: how many to keep, 1 <= k <= dim.

    Returns:
        (indices, values), both (outer, k, inner): the indices (int64) into
        axis 1 and the values, best first; among equal values the larger
        index comes first.
    """
    xp = array_module(scores)
    dim = scores.shape[1]
    if not 1 <= k <= dim:
        raise ValueError(f"top_k needs 1 <= k <= {dim} (the axis length), "
                         f"received {k}")
    # A stable ascending sort of −value over the REVERSED axis keeps equal
    # values in descending index order.
    reversed_scores = scores[:, ::-1, :]
    order = xp.argsort(-reversed_scores, axis=1, kind="stable")[:, :k, :]
    values = xp.take_along_axis(reversed_scores, order, axis=1)
    return dim - 1 - order, values
