"""Feature maps: the forward pass of ``kaffe viz`` and the pictures of its tops.

Each top's channels share the page's pixel budget (:func:`plan_maps`); the
net runs once per input with an after-forward hook that draws every top as
it is computed (:func:`draw_maps`).
"""
import math
from dataclasses import dataclass, field

import numpy as np

from .pictures import (block_mean, encode_png, palette, quantize, robust_scale,
                       stats_and_histogram)
from .report_model import (GAP_INDEX, InputRun, MapView, Picture,
                           paren_shape_text)


# -- feature maps -------------------------------------------------------------
@dataclass
class _Plan:
    """How one top is drawn (fixed before the forward passes)."""
    kind: str
    channels: int = 0
    shown: int = 0
    factor: int = 1
    tile: tuple = ()
    cols: int = 0
    per_page: int = 0
    notes: list = field(default_factory=list)


def map_plans(net, layers, budget, runs):
    """{(layer index, top index): _Plan}, sharing budget.map_pixels.

    Max–min fair shares: the pixels are split evenly, and a top that needs
    less than its share (all its channels at up to max_map_side) gives the
    rest to the others.
    """
    tops = []
    for view in layers:
        if view.hidden:
            continue
        for t, top in enumerate(view.tops):
            shape = net.blobs[top.name].shape
            full = plan_maps(shape, float("inf"), budget)
            tops.append((view.index, t, shape, full.shown * _tile_area(full)))
    pixels_left = budget.map_pixels / max(1, runs)
    shares = {}
    by_need = sorted(tops, key=lambda x: x[3])
    for i, (index, t, _, need) in enumerate(by_need):
        share = max(0.0, pixels_left) / (len(by_need) - i)
        shares[index, t] = min(need, share) if need <= share else share
        pixels_left -= shares[index, t]
    return {(index, t): plan_maps(shape, shares[index, t], budget)
            for index, t, shape, _ in tops}


def _tile_area(plan):
    if plan.kind != "maps":
        return 1 if plan.kind == "vector" else 0
    return (plan.tile[0] + 1) * (plan.tile[1] + 1)


def plan_maps(shape, share, budget):
    """How to draw a top of ``shape`` (batch 1) within ``share`` pixels.

    Maps larger than ``max_map_side`` are downsampled; when not every
    channel fits, the maps are downsampled further (down to tiles of
    ``min_map_side``) before channels are left out.
    """
    shape = tuple(shape)
    spatial = shape[2:] if len(shape) >= 3 else ()
    if len(shape) == 4 and shape[2] * shape[3] > 1:
        c, h, w = shape[1:]
        c_cap = min(c, budget.max_channels)
        factor = max(1, math.ceil(max(h, w) / budget.max_map_side))
        floor_side = min(math.ceil(max(h, w) / factor), budget.min_map_side)
        notes = []
        while True:
            th, tw = math.ceil(h / factor), math.ceil(w / factor)
            fits = int(min(share, 1e15) // ((th + 1) * (tw + 1)))
            smaller = math.ceil(max(h, w) / (factor + 1))
            if fits >= c_cap or smaller < floor_side or \
                    math.ceil(max(h, w) / (factor + 1)) == max(th, tw):
                break
            factor += 1
        shown = max(min(c, budget.min_channels), min(c_cap, fits))
        if factor > 1:
            notes.append(f"Downsampled ×{factor}: each pixel is the mean of "
                         f"a {factor}×{factor} block ({h}×{w} → {th}×{tw}); "
                         "a click still maps to the full-size positions.")
        if shown < c:
            notes.append(f"Showing channels 0–{shown - 1} of {c} (size "
                         "budget).")
        per_page = 64 if th * tw >= 144 else 256
        per_page = min(per_page, shown)
        cols = max(1, math.ceil(math.sqrt(per_page * tw / th *
                                          (1.0 if th * tw >= 144 else 1.5))))
        cols = min(cols, per_page)
        return _Plan("maps", c, shown, factor, (th, tw), cols, per_page,
                     notes)
    count = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    if len(shape) <= 1 or (count == 1 and not spatial):
        return _Plan("scalar", 1, 1)
    shown = min(count, budget.max_vector)
    notes = []
    if len(shape) > 2 and not (len(shape) == 4 and shape[2] * shape[3] == 1):
        notes.append(f"Shown flattened: {paren_shape_text(shape[1:])} → {count} "
                     "values.")
    if shown < count:
        notes.append(f"Showing values 0–{shown - 1} of {count} (size "
                     "budget).")
    cols = min(shown, 64 if shown > 256 else 32 if shown > 32 else shown)
    return _Plan("vector", count, shown, 1, (1, 1), cols, shown, notes)


def forward_and_draw(net, values, layers, plans, preprocess, image_input,
                     label, synthetic, notes, budget):
    """Run the net once; fill every top's MapView for this run."""
    for name, value in values.items():
        net.blobs[name].data[...] = value[None] if \
            net.blobs[name].data.ndim == value.ndim + 1 else value
    by_index = {v.index: v for v in layers}
    planned = {(v.index, t): tuple(net.blobs[top.name].shape)
               for v in layers for t, top in enumerate(v.tops)}

    def capture(i):
        view = by_index[i]
        if view.hidden:
            return
        for t, top in enumerate(view.tops):
            data = np.asarray(net.blobs[top.name].data)
            plan = plans[i, t]
            if data.shape != planned[i, t]:
                # A top whose size only the forward decides (DetectionOutput):
                # drawn with the pixels planned for it.
                plan = plan_maps(data.shape, plan.shown * _tile_area(plan),
                                 budget)
            top.maps.append(draw_maps(top.name, data[0] if data.ndim else
                                      data, plan))

    net.after_forward(capture)
    try:
        # Overflow and 0/0 become Inf and NaN in the pictures and the
        # statistics (and a note saying where they start), not warnings.
        with np.errstate(all="ignore"):
            net.forward()
    finally:
        net.remove_hook(capture)
    picture, size = None, ()
    if image_input is not None:
        data = np.asarray(net.blobs[image_input].data[0])
        picture = input_picture(data, preprocess.channel_swap)
        size = data.shape[1:]
    outputs = []
    for name in net.outputs:
        data = np.asarray(net.blobs[name].data, dtype=np.float64)
        values, top = _vector_values(data[0].ravel() if data.ndim else
                                     data.ravel())
        outputs.append((name, values, top))
    return InputRun(label=label, synthetic=synthetic, blob=image_input or "",
                    picture=picture, size=tuple(size), notes=notes,
                    outputs=outputs)


def draw_maps(blob, data, plan):
    """A :class:`MapView` of one batch item's ``data`` drawn as ``plan``."""
    data = np.asarray(data, dtype=np.float64)
    stats, histogram = stats_and_histogram(data)
    scale = robust_scale(data)
    view = MapView(blob=blob, shape=(1,) + tuple(data.shape), kind=plan.kind,
                   channels=plan.channels, shown=plan.shown,
                   map_size=tuple(data.shape[1:3]) if plan.kind == "maps"
                   else (), tile=plan.tile, factor=plan.factor,
                   cols=plan.cols, per_page=plan.per_page, scale=scale,
                   stats=stats, histogram=histogram, notes=list(plan.notes))
    if plan.kind == "scalar":
        view.values = [(0, float(data.ravel()[0]) if data.size else
                        float("nan"))]
        return view
    if plan.kind == "vector":
        flat = data.ravel()
        view.values, view.values_are_top = _vector_values(flat)
        codes = quantize(flat[:plan.shown], scale)
        rows = math.ceil(plan.shown / plan.cols)
        strip = np.full(rows * plan.cols, GAP_INDEX, np.uint8)
        strip[:plan.shown] = codes
        strip = strip.reshape(rows, plan.cols)
        view.pages = [Picture(encode_png(strip, palette()), plan.cols, rows)]
        view.gap = 0
        return view
    maps = block_mean(data[:plan.shown], plan.factor)
    th, tw = plan.tile
    codes = quantize(maps, scale)
    for start in range(0, plan.shown, plan.per_page):
        chunk = codes[start:start + plan.per_page]
        n = len(chunk)
        cols = min(plan.cols, n)
        rows = math.ceil(n / cols)
        page = np.full((rows * (th + 1) - 1, cols * (tw + 1) - 1), GAP_INDEX,
                       np.uint8)
        for i in range(n):
            r, c = divmod(i, cols)
            page[r * (th + 1):r * (th + 1) + th,
                 c * (tw + 1):c * (tw + 1) + tw] = chunk[i]
        view.pages.append(Picture(encode_png(page, palette()), page.shape[1],
                                  page.shape[0]))
    return view


def _vector_values(flat):
    finite = np.where(np.isfinite(flat), flat, -np.inf)
    if flat.size <= 10:
        return [(i, float(v)) for i, v in enumerate(flat)], False
    order = np.argsort(-finite, kind="stable")[:5]
    return [(int(i), float(flat[i])) for i in order], True


def input_picture(data, channel_swap=None):
    """The input blob (C, H, W) as the net sees it, min–max scaled to 8 bits:
    colour for 3 channels (net channels swapped back to R, G, B), else the
    first channel in grey."""
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 3:
        return None
    if data.shape[0] == 3:
        swap = list(channel_swap) if channel_swap is not None else [0, 1, 2]
        image = data[[swap.index(c) for c in range(3)]].transpose(1, 2, 0)
    else:
        image = data[0]
    finite = image[np.isfinite(image)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else \
        (0.0, 1.0)
    span = hi - lo or 1.0
    pixels = np.rint(np.clip(np.nan_to_num((image - lo) / span), 0, 1) * 255)
    pixels = pixels.astype(np.uint8)
    return Picture(encode_png(pixels), pixels.shape[1], pixels.shape[0])
