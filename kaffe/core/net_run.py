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


# Layer types whose tops may share their bottoms' memory (Caffe's
# ShareData): a buffer is free only once every blob that may hold it has
# been read for the last time.
SHARING_TYPES = frozenset({"Split", "Reshape", "Flatten", "Concat", "Slice",
                           "Parameter"})


def lean_plans(net):
    """(release, reuse) for lean inference, per layer: ``release[i]`` the
    blobs layer i is the last to read (the net's inputs and outputs are
    kept); ``reuse[i]`` None, or (top, bottom) for an Eltwise whose first
    bottom's memory is read for the last time by it: the top is computed
    into that memory (ResNet's shortcut sums then hold two activations at
    once, not three)."""
    top_ids, bottom_ids = net._top_ids, net._bottom_ids
    last_reader = {}
    for i, ids in enumerate(top_ids):
        for blob_id in ids:
            last_reader.setdefault(blob_id, i)
    for i, ids in enumerate(bottom_ids):
        for blob_id in ids:
            last_reader[blob_id] = i
    keep = set(net._inputs) | set(net._outputs)
    release = [[] for _ in net.layers]
    for blob_id, i in last_reader.items():
        if blob_id not in keep:
            release[i].append(net._blobs[blob_id])
    parent = {}

    def root(blob_id):
        while parent.get(blob_id, blob_id) != blob_id:
            blob_id = parent[blob_id]
        return blob_id

    for i, layer in enumerate(net.layers):
        if layer.type in SHARING_TYPES and bottom_ids[i]:
            for blob_id in list(top_ids[i]) + list(bottom_ids[i][1:]):
                parent[root(blob_id)] = root(bottom_ids[i][0])
    dies = {}                  # group -> the layer its memory dies after
    for blob_id, i in last_reader.items():
        group = root(blob_id)
        dies[group] = (float("inf") if blob_id in keep or dies.get(group)
                       == float("inf") else max(i, dies.get(group, -1)))
    reuse = [None] * len(net.layers)
    for i, layer in enumerate(net.layers):
        if (layer.type != "Eltwise" or len(top_ids[i]) != 1
                or not bottom_ids[i]):
            continue
        first, top = bottom_ids[i][0], top_ids[i][0]
        group = root(first)
        if (top in bottom_ids[i] or root(top) == group or dies[group] != i
                or any(root(b) == group for b in bottom_ids[i][1:])):
            continue
        reuse[i] = (net._blobs[top], net._blobs[first])
    return release, reuse


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
        if net._reuse_plan is not None and net._reuse_plan[i] is not None:
            top, bottom = net._reuse_plan[i]
            top.share_data(bottom)
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
