"""Running a net's layers forward with as little Python per layer as
possible (issue 12: nets that run in well under a millisecond are mostly
this overhead).

A net keeps, per layer, the lists of its bottom and top blobs, made once
(the blobs of a net never change, only their shapes and buffers), instead
of building them on every call; and when no pycaffe hook is registered,
``debug_info`` is off and no blob is released early, forward is a bare
loop over ``Layer.Forward``. With any of those on it runs the full loop,
which calls them in Caffe's order around each layer.
"""
from ..memory import KaffeMemoryError


def layer_blob_lists(net):
    """[(bottom blobs, top blobs)] per layer of ``net``, in layer order."""
    return [(net._bottoms(i), net._tops(i)) for i in range(len(net.layers))]


def forward_layers(net, start, end):
    """Run layers ``start`` .. ``end`` (inclusive) of ``net`` forward;
    return the weighted loss."""
    if (net._before_forward or net._after_forward or net.debug_info
            or net._release_plan is not None):
        return _forward_observed(net, start, end)
    layers = net.layers
    blob_lists = net._blob_lists
    loss = 0.0
    i = start
    try:
        for i in range(start, end + 1):
            bottoms, tops = blob_lists[i]
            loss += layers[i].Forward(bottoms, tops)
    except (MemoryError, KaffeMemoryError) as e:
        raise net._memory_error(e, i, "running forward") from None
    return loss


def _forward_observed(net, start, end):
    """The loop with the hooks, the early releases and debug_info."""
    loss = 0.0
    for i in range(start, end + 1):
        for run in net._before_forward:
            run(i)
        bottoms, tops = net._blob_lists[i]
        try:
            loss += net.layers[i].Forward(bottoms, tops)
        except (MemoryError, KaffeMemoryError) as e:
            raise net._memory_error(e, i, "running forward") from None
        if net._release_plan is not None:
            for blob in net._release_plan[i]:
                blob.release()
        if net.debug_info:
            net._forward_debug_info(i)
        for run in net._after_forward:
            run(i)
    return loss
