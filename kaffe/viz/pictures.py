"""The pictures of ``kaffe viz``: filter grids, heat maps, numbers, PNG.

Filters and weights become :class:`~kaffe.viz.report_model.Picture` s on the
page's one colour scale (white 0, red positive, blue negative, green NaN);
the statistics and histograms of any array; and the small PNG encoder that
writes them all (no Pillow needed).
"""
import math
import struct
import zlib

import numpy as np

from .report_model import (_ANCHORS, GAP_COLOUR, GAP_INDEX, GROUP_COLOUR,
                           GROUP_INDEX, LEVELS, NAN_COLOUR, NAN_INDEX,
                           ZERO_INDEX, Budget, FilterGrid, GroupSpan,
                           Histogram, Picture, Stats)


def filter_grid(weights, group=1, deconv=False, budget=None):
    """Convolution weights (M, C/g, kh, kw) as M rows of C/g tiles.

    Deconvolution weights (C, M/g, kh, kw): C rows (input channels) of M/g
    tiles (the output channels each one stamps). Rows of one group are
    together; ``group_gap`` pixels separate the groups.
    """
    budget = budget or Budget()
    rows, cols, kh, kw = weights.shape
    gap = 1 if kh * kw > 1 else 0
    group_gap = 1 if group > 1 else 0
    shown_cols = min(cols, budget.max_filter_cols if kh * kw > 1
                     else 4 * budget.max_filter_cols)
    cell = (kh + gap) * (kw + gap)
    shown_rows = min(rows, budget.max_filter_rows,
                     max(1, budget.filter_pixels // (shown_cols * cell)))
    scale = robust_scale(weights)
    per_group = rows // group
    spans = []
    in_per_group = cols
    for g in range(group):
        spans.append(GroupSpan(g, (g * per_group, (g + 1) * per_group),
                               (g * in_per_group, (g + 1) * in_per_group)))
    codes = quantize(weights[:shown_rows, :shown_cols], scale)
    if cols == 1:
        # One tile per row: lay the rows out as a grid, `wrap` per line.
        gap = 1
        wrap = min(shown_rows, max(1, math.ceil(math.sqrt(shown_rows * 2))))
        lines = math.ceil(shown_rows / wrap)
        pixels = np.full((lines * (kh + gap) - gap, wrap * (kw + gap) - gap),
                         GAP_INDEX, np.uint8)
        for r in range(shown_rows):
            line, c = divmod(r, wrap)
            pixels[line * (kh + gap):line * (kh + gap) + kh,
                   c * (kw + gap):c * (kw + gap) + kw] = codes[r, 0]
        group_gap = 0
    else:
        wrap = 1
        seps = [s.rows[0] for s in spans[1:] if s.rows[0] < shown_rows]
        height = shown_rows * (kh + gap) - gap + len(seps) * group_gap
        width = shown_cols * (kw + gap) - gap
        pixels = np.full((max(height, 1), max(width, 1)), GAP_INDEX,
                         np.uint8)
        y = 0
        for r in range(shown_rows):
            if r in seps:
                pixels[y - gap:y - gap + group_gap + gap, :] = GROUP_INDEX
                y += group_gap
            for c in range(shown_cols):
                x = c * (kw + gap)
                pixels[y:y + kh, x:x + kw] = codes[r, c]
            y += kh + gap
    row_word, col_word = (("input channel", "output channel") if deconv
                          else ("filter", "input channel"))
    notes = []
    if shown_rows < rows or shown_cols < cols:
        notes.append(
            f"Showing {row_word}s 0–{shown_rows - 1} of {rows}"
            + (f" and {col_word}s 0–{shown_cols - 1} of {cols}"
               if shown_cols < cols else "") + " (size budget).")
    picture = Picture(encode_png(pixels, palette()), pixels.shape[1],
                      pixels.shape[0])
    return FilterGrid("grid", tuple(weights.shape), rows, cols, (kh, kw),
                      shown_rows, shown_cols, picture, scale, row_word,
                      col_word, gap=gap, group_gap=group_gap, wrap=wrap,
                      groups=spans if group > 1 else [], notes=notes)


def colour_filters(weights, channel_swap=None, budget=None):
    """First-layer filters on a 3-channel image: one RGB tile per filter.

    Net channel i holds image channel ``channel_swap[i]`` (kaffe.io's
    Transformer), so the tile's red is the net channel that holds red.
    Grey is 0; each filter's colours scale with the layer's largest |w|.
    """
    budget = budget or Budget()
    m, _, kh, kw = weights.shape
    swap = list(channel_swap) if channel_swap is not None else [0, 1, 2]
    rgb_from_net = [swap.index(c) for c in range(3)]
    rgb = weights[:, rgb_from_net].transpose(0, 2, 3, 1)   # M, kh, kw, 3
    scale = robust_scale(rgb, 99.5)
    cell = (kh + 1) * (kw + 1)
    shown = min(m, max(1, budget.filter_pixels // cell))
    cols = min(shown, max(1, math.ceil(math.sqrt(shown * 2))))
    rows_n = math.ceil(shown / cols)
    pixels = np.empty((rows_n * (kh + 1) - 1, cols * (kw + 1) - 1, 3),
                      np.uint8)
    pixels[:] = GAP_COLOUR
    tiles = np.clip(np.nan_to_num(0.5 + rgb / (2 * scale), nan=0.5), 0, 1)
    tiles = np.rint(tiles * 255).astype(np.uint8)
    for i in range(shown):
        r, c = divmod(i, cols)
        pixels[r * (kh + 1):r * (kh + 1) + kh,
               c * (kw + 1):c * (kw + 1) + kw] = tiles[i]
    notes = [] if shown == m else [
        f"Showing filters 0–{shown - 1} of {m} (size budget)."]
    order = ("R, G, B = net channels " + ", ".join(
        str(i) for i in rgb_from_net))
    return FilterGrid("colour", tuple(weights.shape), m, 3, (kh, kw), shown,
                      3, Picture(encode_png(pixels), pixels.shape[1],
                                    pixels.shape[0]),
                      scale, "filter", "input channel", wrap=cols,
                      channel_order=order, notes=notes)


def weight_heatmap(weights, budget=None):
    """An InnerProduct weight matrix (outputs × inputs) as a heat map.

    A matrix larger than ``budget.max_heatmap`` is downsampled by block
    means, each axis by its own factor (``factor`` rows × ``col_factor``
    columns per pixel); a matrix of at most 64 rows may be twice as wide.
    """
    budget = budget or Budget()
    rows, cols = weights.shape
    max_rows, max_cols = budget.max_heatmap
    if rows <= 64:
        max_cols *= 2
    fy = max(1, math.ceil(rows / max_rows))
    fx = max(1, math.ceil(cols / max_cols))
    small = block_mean(weights, fy, fx)
    scale = robust_scale(weights)
    codes = quantize(small, scale)
    notes = []
    if fy * fx > 1:
        notes.append(f"Downsampled: each pixel is the mean of a {fy}×{fx} "
                     f"block of weights ({rows}×{cols} → {small.shape[0]}×"
                     f"{small.shape[1]}); the colour scale is the full "
                     "matrix's.")
    return FilterGrid("heatmap", (rows, cols), rows, cols, (1, 1),
                      small.shape[0], small.shape[1],
                      Picture(encode_png(codes, palette()), codes.shape[1],
                              codes.shape[0]),
                      scale, "output", "input", gap=0, factor=fy,
                      col_factor=fx, notes=notes)



# -- numbers ------------------------------------------------------------------
def stats_and_histogram(values, bins=40):
    """(:class:`Stats`, :class:`Histogram`) of an array's values.

    Exact zeros are left out of the histogram when they are more than 20 %
    of the values (the histogram says how many).
    """
    flat = np.asarray(values, dtype=np.float64).ravel()
    finite = flat[np.isfinite(flat)]
    nans = int(np.isnan(flat).sum())
    infs = int(np.isinf(flat).sum())
    zeros = int(np.count_nonzero(finite == 0))
    if finite.size:
        stats = Stats(int(flat.size), float(finite.min()),
                      float(finite.max()), float(finite.mean()),
                      float(finite.std()), zeros / flat.size, nans, infs)
    else:
        nan = float("nan")
        stats = Stats(int(flat.size), nan, nan, nan, nan,
                      zeros / flat.size if flat.size else 0.0, nans, infs)
    left_out = 0
    binned = finite
    if flat.size and zeros / flat.size > 0.2 and zeros < finite.size:
        binned = finite[finite != 0]
        left_out = zeros
    if binned.size:
        lo, hi = float(binned.min()), float(binned.max())
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        counts, edges = np.histogram(binned, bins=bins, range=(lo, hi))
    else:
        counts, edges = np.zeros(bins, np.int64), np.linspace(0, 1, bins + 1)
    return stats, Histogram([int(c) for c in counts],
                            [float(e) for e in edges], left_out)


def robust_scale(values, percentile=99.9):
    """Where the colours saturate: the 99.9th percentile of |value| (the
    largest |value| when that is 0), 1 for all-zero values."""
    flat = np.abs(np.asarray(values, dtype=np.float64).ravel())
    flat = flat[np.isfinite(flat)]
    if not flat.size:
        return 1.0
    scale = float(np.percentile(flat, percentile))
    if scale <= 0:
        scale = float(flat.max())
    return scale if scale > 0 else 1.0


def quantize(values, scale):
    """Values → palette indices: 0 → ZERO_INDEX, ±scale → ZERO_INDEX ±
    LEVELS (clipped beyond), in between by √(|value|/scale); non-finite →
    NAN_INDEX."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    t = np.clip(np.where(finite, values, 0) / scale, -1, 1)
    t = np.sign(t) * np.sqrt(np.abs(t))
    codes = (ZERO_INDEX + np.rint(t * LEVELS)).astype(np.uint8)
    codes[~finite] = NAN_INDEX
    return codes


def value_of_index(index, scale):
    """The value a palette index stands for (inverse of :func:`quantize`)."""
    t = (index - ZERO_INDEX) / LEVELS
    return math.copysign(t * t, t) * scale


def palette():
    """The 256 RGB colours of the one-channel pictures (a list of tuples)."""
    colours = []
    for i in range(256):
        if i <= 2 * LEVELS:
            colours.append(colour_of((i - ZERO_INDEX) / LEVELS))
        elif i == NAN_INDEX:
            colours.append(NAN_COLOUR)
        elif i == GAP_INDEX:
            colours.append(GAP_COLOUR)
        else:
            colours.append(GROUP_COLOUR)
    return colours


def colour_of(t):
    """The diverging colour for t in [−1, 1] (white at 0)."""
    for (t0, c0), (t1, c1) in zip(_ANCHORS, _ANCHORS[1:]):
        if t <= t1:
            u = (t - t0) / (t1 - t0)
            return tuple(int(round(a + (b - a) * u)) for a, b in zip(c0, c1))
    return _ANCHORS[-1][1]


def block_mean(values, factor, col_factor=None):
    """Mean over factor × col_factor (default factor) blocks of the last
    two axes (the last block of each axis may be smaller)."""
    values = np.asarray(values, dtype=np.float64)
    fx = factor if col_factor is None else col_factor
    if factor <= 1 and fx <= 1:
        return values
    h, w = values.shape[-2:]
    ry, rx = np.arange(0, h, factor), np.arange(0, w, fx)
    sums = np.add.reduceat(np.add.reduceat(values, ry, axis=-2), rx, axis=-1)
    ny = np.minimum(ry + factor, h) - ry
    nx = np.minimum(rx + fx, w) - rx
    return sums / (ny[:, None] * nx[None, :])


# -- PNG ----------------------------------------------------------------------
def encode_png(pixels, palette_colours=None):
    """A minimal PNG encoder (zlib only).

    Args:
        pixels: uint8 (H, W) — palette indices when ``palette_colours`` is
            given, else grey — or (H, W, 3) RGB.
        palette_colours: up to 256 (r, g, b) tuples.

    Returns:
        the PNG file's bytes. Grey and RGB rows use the Sub filter (smaller
        for photos); palette rows none (PNG's advice).
    """
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = pixels.shape[:2]
    if pixels.ndim == 3:
        colour_type, channels = 2, pixels.shape[2]
    else:
        colour_type, channels = (3 if palette_colours is not None else 0), 1
    rows = pixels.reshape(h, w * channels)
    if colour_type == 3:
        filtered = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1)
    else:
        sub = rows.copy()
        sub[:, channels:] = rows[:, channels:] - rows[:, :-channels]
        filtered = np.concatenate([np.ones((h, 1), np.uint8), sub], axis=1)

    def chunk(kind, data):
        body = kind + data
        return (struct.pack(">I", len(data)) + body
                + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF))

    out = [b"\x89PNG\r\n\x1a\n",
           chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0,
                                      0))]
    if colour_type == 3:
        out.append(chunk(b"PLTE", bytes(v for c in palette_colours
                                        for v in c)))
    out.append(chunk(b"IDAT", zlib.compress(filtered.tobytes(), 9)))
    out.append(chunk(b"IEND", b""))
    return b"".join(out)
