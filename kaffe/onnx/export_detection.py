"""SSD's DetectionOutput (weiliu89/caffe, ssd branch) as ONNX nodes.

The fork decodes each prior's offsets (CORNER, CENTER_SIZE or CORNER_SIZE,
with or without the prior variances), then per class: keeps the scores
above confidence_threshold, the nms_param.top_k best of them, greedy NMS at
nms_threshold (IoU strictly above it suppresses); then the keep_top_k best
detections of the image, written per class in increasing label order, each
class best first, as rows [image, label, score, xmin, ymin, xmax, ymax] of a
(1, 1, D, 7) top — one row [image, -1, …] per image when nothing is found.

In ONNX: the decoding as arithmetic; the pre-NMS top_k as a TopK mask on
the scores; ONNX's NonMaxSuppression (the same greedy rule, candidates by
descending score, ties to the smaller index, output grouped by batch and
class); keep_top_k as a TopK on the selected scores followed by sorting the
kept positions back into NMS order; the empty case as an If.

With share_location: false every class has its own boxes, so each class
gets its own NonMaxSuppression node and the results are concatenated in
class order.

Limits (errors naming the field): adaptive NMS (eta < 1 with nms_threshold
> 0.5), and keep_top_k with a batch other than 1 or a dynamic batch
(keep_top_k is per image).
"""
import numpy as np

from ..proto import caffe_pb2
from .export_fork import converts

_CODE = caffe_pb2.PriorBoxParameter
_FLT_MAX = float(np.finfo(np.float32).max)


def _check(ctx, p, batch):
    nms = p.nms_param
    if nms.eta < 1 and nms.nms_threshold > 0.5:
        raise ctx.error("adaptive NMS (eta < 1) has no ONNX counterpart",
                        field="detection_output_param.nms_param.eta",
                        received=nms.eta)
    if p.keep_top_k > -1 and (batch != 1 or ctx.dynamic_batch):
        raise ctx.error("keep_top_k is applied per image, which is written "
                        "for a batch of 1 only",
                        field="detection_output_param.keep_top_k",
                        received=p.keep_top_k,
                        fix="export with a batch of 1 and no --dynamic-batch")


def _split4(g, x, axis, hint):
    return g.op("Split", [x, g.ints([1, 1, 1, 1], hint + "/sizes")], hint,
                outputs=4, axis=axis)


def _decode(ctx, p, loc, priors, num_priors):
    """Decoded boxes from loc (…, P, 4) and priors (1, 2, P·4): (N, P, 4)
    shared by the classes, or (N, C, P, 4) one set per class."""
    g = ctx.graph
    table = ctx.reshape(priors, (2, num_priors, 4), static=True)
    boxes = g.op("Gather", [table, g.ints([0], ctx.hint("row0"))],
                 ctx.hint("prior_rows"), axis=0)
    boxes = ctx.reshape(boxes, (num_priors, 4), static=True)
    var = None
    if not p.variance_encoded_in_target:
        var = g.op("Gather", [table, g.ints([1], ctx.hint("row1"))],
                   ctx.hint("var_rows"), axis=0)
        var = ctx.reshape(var, (num_priors, 4), static=True)

    def scaled(offset, v):
        return offset if v is None else g.op("Mul", [v, offset],
                                             ctx.hint("var_loc"))
    if p.code_type == _CODE.CORNER:
        return g.op("Add", [boxes, scaled(loc, var)], ctx.hint("boxes"))
    x0, y0, x1, y1 = _split4(g, boxes, 1, ctx.hint("prior"))
    width = g.op("Sub", [x1, x0], ctx.hint("prior_w"))
    height = g.op("Sub", [y1, y0], ctx.hint("prior_h"))
    if p.code_type == _CODE.CORNER_SIZE:
        size = g.op("Concat", [width, height, width, height],
                    ctx.hint("prior_size"), axis=1)
        return g.op("Add", [boxes, g.op("Mul", [scaled(loc, var), size],
                                        ctx.hint("offsets"))],
                    ctx.hint("boxes"))
    half = g.const(0.5, ctx.hint("half"))
    cx = g.op("Mul", [g.op("Add", [x0, x1], ctx.hint("sum_x")), half],
              ctx.hint("center_x"))
    cy = g.op("Mul", [g.op("Add", [y0, y1], ctx.hint("sum_y")), half],
              ctx.hint("center_y"))
    l0, l1, l2, l3 = _split4(g, loc, -1, ctx.hint("loc"))
    v = _split4(g, var, 1, ctx.hint("var")) if var is not None \
        else (None,) * 4
    dcx = g.op("Add", [g.op("Mul", [scaled(l0, v[0]), width],
                            ctx.hint("dx")), cx], ctx.hint("dcx"))
    dcy = g.op("Add", [g.op("Mul", [scaled(l1, v[1]), height],
                            ctx.hint("dy")), cy], ctx.hint("dcy"))
    dw = g.op("Mul", [g.op("Exp", [scaled(l2, v[2])], ctx.hint("ew")),
                      width], ctx.hint("dw"))
    dh = g.op("Mul", [g.op("Exp", [scaled(l3, v[3])], ctx.hint("eh")),
                      height], ctx.hint("dh"))
    half_w = g.op("Mul", [dw, half], ctx.hint("half_w"))
    half_h = g.op("Mul", [dh, half], ctx.hint("half_h"))
    corners = [g.op("Sub", [dcx, half_w], ctx.hint("xmin")),
               g.op("Sub", [dcy, half_h], ctx.hint("ymin")),
               g.op("Add", [dcx, half_w], ctx.hint("xmax")),
               g.op("Add", [dcy, half_h], ctx.hint("ymax"))]
    return g.op("Concat", corners, ctx.hint("boxes"), axis=-1)


@converts("DetectionOutput")
def detection_output(ctx):
    p = ctx.param.detection_output_param
    g = ctx.graph
    loc_shape, conf_shape, prior_shape = ctx.bottom_shapes
    batch = loc_shape[0]
    _check(ctx, p, batch)
    num_priors = prior_shape[2] // 4
    classes = p.num_classes
    if p.share_location:
        loc = ctx.reshape(ctx.inputs[0], (batch, num_priors, 4))
    else:       # the fork's (N, P, C, 4) layout, as (N, C, P, 4)
        loc = g.op("Transpose", [ctx.reshape(
            ctx.inputs[0], (batch, num_priors, classes, 4))],
            ctx.hint("loc_by_class"), perm=[0, 2, 1, 3])
    boxes = _decode(ctx, p, loc, ctx.inputs[2], num_priors)
    conf = ctx.reshape(ctx.inputs[1], (batch, num_priors, classes),
                       like=conf_shape)
    scores = g.op("Transpose", [conf], ctx.hint("scores"), perm=[0, 2, 1])
    candidates = scores
    if 0 <= p.background_label_id < classes:
        background = np.zeros((1, classes, 1), dtype=bool)
        background[0, p.background_label_id] = True
        candidates = g.op("Where", [
            g.const(background, ctx.hint("background"), dtype=bool),
            g.const(-np.inf, ctx.hint("minus_inf")), candidates],
            ctx.hint("foreground"))
    top_k = p.nms_param.top_k if p.nms_param.HasField("top_k") else -1
    if -1 < top_k < num_priors:
        _, best = g.op("TopK", [candidates, g.ints([top_k], ctx.hint("k"))],
                       ctx.hint("pre_nms"), outputs=2, axis=2, largest=1,
                       sorted=1)
        zeros = g.op("Mul", [scores, g.const(0.0, ctx.hint("zero"))],
                     ctx.hint("zeros"))
        ones = g.op("Add", [g.op("Mul", [g.op(
            "Cast", [best], ctx.hint("best_f"), to=1),
            g.const(0.0, ctx.hint("zero2"))], ctx.hint("zero_k")),
            g.const(1.0, ctx.hint("one"))], ctx.hint("ones"))
        chosen = g.op("ScatterElements", [zeros, best, ones],
                      ctx.hint("chosen"), axis=2)
        mask = g.op("Greater", [chosen, g.const(0.5, ctx.hint("half_mask"))],
                    ctx.hint("in_top_k"))
        candidates = g.op("Where", [mask, candidates, g.const(
            -np.inf, ctx.hint("minus_inf2"))], ctx.hint("candidates"))
    threshold = (p.confidence_threshold if p.HasField("confidence_threshold")
                 else -_FLT_MAX)
    per_class = top_k if -1 < top_k < num_priors else num_priors
    nms_inputs = [g.ints([per_class], ctx.hint("per_class")),
                  g.const([p.nms_param.nms_threshold], ctx.hint("iou")),
                  g.const([threshold], ctx.hint("score_threshold"))]
    if p.share_location:
        selected = g.op("NonMaxSuppression", [boxes, candidates] + nms_inputs,
                        ctx.hint("nms"), center_point_box=0)
    else:
        selected = _nms_per_class(ctx, boxes, candidates, nms_inputs,
                                  classes, p.background_label_id)
    if p.keep_top_k > -1:
        selected = _keep_top_k(ctx, scores, selected, p.keep_top_k)
    picked_scores = g.op("GatherND", [scores, selected], ctx.hint("score"))
    if p.share_location:
        where = g.op("Gather", [selected, g.ints([0, 2], ctx.hint("ib"))],
                     ctx.hint("image_box"), axis=1)
    else:
        where = selected
    picked_boxes = g.op("GatherND", [boxes, where], ctx.hint("picked"))
    image_label = g.op("Cast", [g.op(
        "Gather", [selected, g.ints([0, 1], ctx.hint("il"))],
        ctx.hint("image_label"), axis=1)], ctx.hint("image_label_f"), to=1)
    rows = g.op("Concat", [image_label, g.op(
        "Unsqueeze", [picked_scores, g.ints([1], ctx.hint("axis1"))],
        ctx.hint("score_col")), picked_boxes], ctx.hint("rows"), axis=1)
    detections = g.op("Unsqueeze", [rows, g.ints([0, 1], ctx.hint("axes01"))],
                      ctx.hint("detections"))
    return _empty_case(ctx, selected, detections, batch)


def _nms_per_class(ctx, boxes, candidates, nms_inputs, classes, background):
    """One NonMaxSuppression per class on that class's own boxes, the
    results relabelled and concatenated in class order (as ONNX's NMS
    orders them when the boxes are shared)."""
    g = ctx.graph
    parts = []
    for c in range(classes):
        if c == background:
            continue
        own = g.op("Gather", [boxes, g.ints([c], ctx.hint(f"c{c}"))],
                   ctx.hint(f"boxes{c}"), axis=1)
        own = g.op("Squeeze", [own, g.ints([1], ctx.hint(f"axis{c}"))],
                   ctx.hint(f"boxes{c}_"))
        score = g.op("Slice", [candidates, g.ints([c], ctx.hint(f"s{c}")),
                               g.ints([c + 1], ctx.hint(f"e{c}")),
                               g.ints([1], ctx.hint(f"a{c}"))],
                     ctx.hint(f"scores{c}"))
        kept = g.op("NonMaxSuppression", [own, score] + nms_inputs,
                    ctx.hint(f"nms{c}"), center_point_box=0)
        parts.append(g.op("Add", [kept, g.ints([0, c, 0], ctx.hint(
            f"label{c}"))], ctx.hint(f"kept{c}")))
    if len(parts) == 1:
        return parts[0]
    return g.op("Concat", parts, ctx.hint("kept_all"), axis=0)


def _keep_top_k(ctx, scores, selected, keep):
    """The ``keep`` best selected rows, back in NMS (class, score) order."""
    g = ctx.graph
    picked = g.op("GatherND", [scores, selected], ctx.hint("kept_scores"))
    count = g.op("Shape", [picked], ctx.hint("count"))
    k = g.op("Min", [count, g.ints([keep], ctx.hint("keep"))],
             ctx.hint("k_keep"))
    _, best = g.op("TopK", [picked, k], ctx.hint("keep_top_k"), outputs=2,
                   axis=0, largest=1, sorted=1)
    negative = g.op("Neg", [g.op("Cast", [best], ctx.hint("best_f"), to=1)],
                    ctx.hint("neg_index"))
    ascending, _ = g.op("TopK", [negative, k], ctx.hint("in_order"),
                        outputs=2, axis=0, largest=1, sorted=1)
    order = g.op("Cast", [g.op("Neg", [ascending], ctx.hint("index_f"))],
                 ctx.hint("order"), to=7)
    return g.op("Gather", [selected, order], ctx.hint("kept"), axis=0)


def _empty_case(ctx, selected, detections, batch):
    """The fork's rows [image, -1, …] when nothing is detected."""
    onnx = ctx.graph.onnx
    g = ctx.graph
    count = g.op("Shape", [selected], ctx.hint("found"), end=1)
    none = g.op("Equal", [count, g.ints([0], ctx.hint("zero_rows"))],
                ctx.hint("none"))
    condition = g.op("Squeeze", [none], ctx.hint("none_scalar"))
    empty = np.full((1, 1, batch, 7), -1, dtype=np.float32)
    empty[0, 0, :, 0] = np.arange(batch)
    then_out = g.fresh(ctx.hint("empty"))
    then_branch = onnx.helper.make_graph(
        [onnx.helper.make_node("Constant", [], [then_out],
                               value=onnx.numpy_helper.from_array(empty))],
        ctx.hint("nothing_found"), [],
        [onnx.helper.make_tensor_value_info(then_out, onnx.TensorProto.FLOAT,
                                            None)])
    else_out = g.fresh(ctx.hint("found_rows"))
    else_branch = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", [detections], [else_out])],
        ctx.hint("something_found"), [],
        [onnx.helper.make_tensor_value_info(else_out, onnx.TensorProto.FLOAT,
                                            None)])
    return g.op("If", [condition], ctx.name, out=ctx.out(),
                then_branch=then_branch, else_branch=else_branch)
