"""kaffe viz's HTML: a :class:`~kaffe.viz.report.VizReport` as one page.

:func:`render` fills ``templates/report.html`` with the page's parts and
inlines ``report.css`` and ``report.js`` (read with importlib.resources).
Pictures are ``data:`` URIs and histograms inline SVG, so the file needs
nothing else: no network, no CDN, no Graphviz. The script reads the
geometry it needs (fields, windows, tile layouts) from a JSON block, the
pictures from the page itself.
"""
import base64
import html
import json
import math
from importlib import resources

from .render_graph import escape as _e
from .render_graph import graph_svg
from .report import (GAP_INDEX, LEVELS, NAN_COLOUR, NAN_INDEX, ZERO_INDEX,
                     colour_of, fraction_text, palette, shape_text)
from .training import layer_training_block, training_card

# One line on what a layer type computes, where explain has no formula.
WHAT = {
    "ReLU": "y = max(0, x) (with negative_slope ν: y = x for x > 0, ν·x "
            "otherwise), element by element",
    "PReLU": "y = x for x > 0, a_c·x otherwise, with a learned slope a_c "
             "per channel",
    "ELU": "y = x for x > 0, α·(eˣ − 1) otherwise",
    "Sigmoid": "y = 1 / (1 + e⁻ˣ), element by element",
    "TanH": "y = tanh(x), element by element",
    "AbsVal": "y = |x|", "BNLL": "y = log(1 + eˣ)",
    "Power": "y = (shift + scale·x)^power", "Exp": "y = base^(shift + "
    "scale·x)", "Log": "y = log_base(shift + scale·x)",
    "Threshold": "y = 1 if x > threshold else 0",
    "Dropout": "TRAIN: zero each value with probability p and scale the "
               "rest by 1/(1 − p); TEST: y = x",
    "BatchNorm": "y = (x − μ_c) / √(σ²_c + ε), per channel c; with "
                 "use_global_stats (TEST) μ and σ² are the stored running "
                 "averages divided by the moving-average factor",
    "Scale": "y = γ_c · x (+ β_c), a learned factor (and bias) per channel",
    "Bias": "y = x + β_c, a learned bias per channel",
    "MVN": "y = (x − mean) (/ std), over each channel's map (or all "
           "channels with across_channels)",
    "Softmax": "y_i = e^(x_i) / Σ_j e^(x_j) over the channels: positive "
               "values that sum to 1",
    "Split": "copies its bottom to each top (Caffe inserts these where a "
             "blob feeds several layers)",
    "Slice": "cuts the bottom into pieces along an axis",
    "Input": "the net's input: whatever is written into its top",
    "Reshape": "the same values with a new shape",
    "ArgMax": "the index (and value) of the largest entries",
    "Accuracy": "the fraction of items whose label is among the top_k "
                "scores",
    "SoftmaxWithLoss": "softmax over channels, then −log of the label's "
                       "probability, averaged",
}

_FAMILY_NAMES = {
    "conv": "convolution", "pool": "pooling", "ip": "fully connected",
    "neuron": "activation", "norm": "normalisation", "merge": "merge / copy",
    "data": "input", "out": "output / loss", "other": "other",
}


def render(report):
    """The report as one self-contained HTML document (a str)."""
    template = _resource("report.html")
    parts = {
        "title": html.escape(f"{report.title} — kaffe viz"),
        "style": _resource("report.css"),
        "script": _resource("report.js"),
        "sidebar": _sidebar(report),
        "header": _header(report),
        "overview": _overview(report) + training_card(report.training),
        "sections": "\n".join(_section(report, v) for v in report.layers
                              if not v.hidden),
        "footer": _footer(),
        "data": _script_json(_data(report)),
    }
    out = template
    for key, value in parts.items():
        out = out.replace("{{" + key + "}}", value)
    return out


def _resource(name):
    return resources.files("kaffe.viz").joinpath("templates", name) \
        .read_text(encoding="utf-8")


def _script_json(value):
    # "</" cannot end the <script> element early once escaped.
    return json.dumps(value, separators=(",", ":"), allow_nan=False) \
        .replace("</", "<\\/")


def data_uri(picture):
    return f"data:{picture.mime};base64," + base64.b64encode(
        picture.png).decode("ascii")


def num(x):
    """A value for people: 4 significant digits, NaN/∞ spelled out."""
    if x is None:
        return "—"
    if isinstance(x, float):
        if math.isnan(x):
            return "NaN"
        if math.isinf(x):
            return "∞" if x > 0 else "−∞"
    if x == 0:
        return "0"
    if abs(x) >= 1e5 or abs(x) < 1e-3:
        return f"{x:.3e}".replace("e-0", "e−").replace("e+0", "e").replace(
            "e-", "e−").replace("e+", "e")
    return f"{x:.4g}".replace("-", "−")


def _count(n):
    for unit, scale in (("G", 10 ** 9), ("M", 10 ** 6), ("k", 10 ** 3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:,}"


def _bytes(n):
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


# -- the sidebar, the header and the overview ---------------------------------
def _sidebar(report):
    follower = {i for node in report.graph.nodes for i in node.layers[1:]}
    items = []
    for v in report.layers:
        if v.hidden:
            continue
        cls = ' class="inplace"' if v.index in follower else ""
        items.append(
            f'<li{cls}><a href="#L{v.index}" data-layer="{v.index}" '
            f'title="{_e(v.name)} ({_e(v.type)})">'
            f'<span class="dot fam-{v.family}"></span>'
            f'<span class="nm">{_e(v.name)}</span>'
            f'<span class="ty">{_e(v.type)}</span></a></li>')
    return (
        '<div class="brand"><a href="#top">kaffe <b>viz</b></a></div>'
        '<label class="filter"><input id="layer-filter" type="search" '
        'placeholder="Filter layers  ( / )" autocomplete="off" '
        'aria-label="Filter layers by name or type"></label>'
        f'<nav aria-label="Layers"><ol id="layer-list">{"".join(items)}'
        '</ol></nav>'
        '<div class="keys">Keys: <kbd>j</kbd>/<kbd>k</kbd> next/previous '
        'layer · <kbd>[</kbd>/<kbd>]</kbd> pages · <kbd>/</kbd> filter · '
        '<kbd>g</kbd> graph · <kbd>Esc</kbd> close</div>')


def _header(report):
    ex = report.explain
    t = ex.totals
    inputs = ", ".join(f"<code>{_e(k)}</code> {_e(shape_text(v))}"
                       for k, v in ex.inputs.items()) or "none"
    runs = ""
    if len(report.runs) > 1:
        options = "".join(
            f'<button type="button" class="run-btn{" on" if i == 0 else ""}"'
            f' data-run="{i}" aria-pressed="{"true" if i == 0 else "false"}"'
            f' title="{_e(r.label)}">'
            + (f'<img src="{data_uri(r.picture)}" alt="">'
               if r.picture else "")
            + f'<span>{_e(r.label)}</span></button>'
            for i, r in enumerate(report.runs))
        runs = (f'<div class="runs" role="group" aria-label="Input image">'
                f'<span class="lbl">Input:</span>{options}</div>')
    weights = (f'weights <code>{_e(report.weights)}</code>' if report.weights
               else '<span class="warn">no weights (initial values)</span>')
    facts = [
        ("Phase", _e(ex.phase)), ("Inputs", inputs),
        ("Layers", f"{sum(1 for v in report.layers if not v.hidden)}"),
        ("Parameters", f"{t.params:,} ({_count(t.params)})"),
        ("MACs / forward", f"{t.macs:,} ({_count(t.macs)})"),
        ("Activations", _bytes(t.activation_bytes)),
    ]
    fact_html = "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>"
                        for k, v in facts)
    return (
        '<header id="top" class="page-head">'
        f'<h1>{_e(report.title)}</h1>'
        f'<p class="src"><code>{_e(report.source)}</code> · {weights}</p>'
        f'<dl class="facts-strip">{fact_html}</dl>{runs}</header>')


def _overview(report):
    run_blocks = []
    for i, run in enumerate(report.runs):
        picture = ""
        if run.picture is not None:
            small = run.picture.width < 128
            picture = (
                f'<div class="pic input-pic"><img id="input-{i}" '
                f'class="{"pixelated" if small else ""}" '
                f'src="{data_uri(run.picture)}" '
                f'width="{run.picture.width}" height="{run.picture.height}" '
                f'alt="input {_e(run.label)}"></div>')
        notes = "".join(f"<p class=\"note\">{_e(n)}</p>" for n in run.notes)
        notes += _outputs_html(run)
        caption = (f'<code>{_e(run.blob)}</code> as the net sees it '
                   f'({_e(run.size[1]) if run.size else ""}×'
                   f'{_e(run.size[0]) if run.size else ""}, min–max scaled '
                   'for display)' if run.picture else "")
        run_blocks.append(
            f'<div class="run" data-run="{i}"{" hidden" if i else ""}>'
            f'<h3>{"Synthetic input" if run.synthetic else _e(run.label)}'
            f'</h3>{picture}<p class="cap">{caption}</p>{notes}</div>')
    notes = "".join(f"<li>{_e(n)}</li>" for n in report.notes)
    legend = _legend_bar(None)
    return (
        '<section id="overview" class="overview">'
        '<div class="card graph-card"><div class="card-head">'
        '<h2>The net</h2><div class="zoom">'
        '<button type="button" data-zoom="-1" aria-label="Zoom out">−'
        '</button><button type="button" data-zoom="0">fit</button>'
        '<button type="button" data-zoom="1" aria-label="Zoom in">+</button>'
        '</div></div>'
        '<p class="hint">Each box is a layer (with the in-place layers that '
        'follow it) and the shape of the blob it writes. Click a layer to '
        'open it.</p>'
        f'<div class="graph-scroll" id="graph-scroll">{graph_svg(report)}'
        f'</div>{_family_legend()}</div>'
        '<div class="side-col">'
        f'<div class="card input-card">{"".join(run_blocks)}</div>'
        '<div class="card how"><h2>How to read this page</h2><ul>'
        '<li>Every layer has a section: what it computes (kaffe explain\'s '
        'arithmetic), its parameters, and its output for the input.</li>'
        '<li>Convolution filters are drawn as a grid: <b>one row per '
        'filter</b>, one tile per input channel it reads — a filter is as '
        'thick as its input.</li>'
        '<li><b>Click any pixel of a feature map</b> to see the input '
        'region it depends on (its receptive field) and the window of the '
        'previous layer it was computed from.</li>'
        f'<li>Colours: {legend}</li></ul></div>'
        + (f'<div class="card notes"><h2>Notes</h2><ul>{notes}</ul></div>'
           if notes else "")
        + '</div></section>')


def _outputs_html(run):
    """The net's outputs for this input: all values, or the largest five."""
    out = []
    for name, values, top in run.outputs:
        if not values:
            continue
        head = (f"<code>{_e(name)}</code>" + (" — largest values"
                                               if top else ""))
        finite = [v for _, v in values if math.isfinite(v)]
        best = max(finite) if finite else None
        rows = "".join(
            f'<tr{" class=best" if v == best else ""}><td class="k">{i}'
            f'</td><td>{num(v)}</td></tr>' for i, v in values)
        out.append(f'<div class="outs"><h4>Output {head}</h4><table>'
                   f'{rows}</table></div>')
    return "".join(out)


def _family_legend():
    items = "".join(f'<span><i class="dot fam-{k}"></i>{v}</span>'
                    for k, v in _FAMILY_NAMES.items() if k != "other")
    return f'<div class="fam-legend">{items}</div>'


def _legend_bar(scale):
    stops = ", ".join(
        "rgb({},{},{}) {:.0f}%".format(*colour_of(t), (t + 1) * 50)
        for t in (-1, -0.6, -0.3, 0, 0.3, 0.6, 1))
    nan = "rgb({},{},{})".format(*NAN_COLOUR)
    if scale is None:
        labels = ('<span>−s</span><span>0</span><span>+s</span>')
        text = ('white is 0, <span class="pos">red</span> positive, '
                '<span class="neg">blue</span> negative, saturating at ±s '
                '(each picture gives its s: the 99.9th percentile of |value|'
                '); the colour follows √|value|, so ±s/4 is half-way; '
                f'<i class="sw" style="background:{nan}"></i> NaN/Inf.')
        return (f'<span class="cbar small"><span class="grad" '
                f'style="background:linear-gradient(90deg,{stops})"></span>'
                f'<span class="ticks">{labels}</span></span> {text}')
    labels = (f'<span>−{num(scale)}</span><span>−{num(scale / 4)}</span>'
              f'<span>0</span><span>+{num(scale / 4)}</span>'
              f'<span>+{num(scale)}</span>')
    return (f'<div class="cbar"><span class="grad" style="background:'
            f'linear-gradient(90deg,{stops})"></span>'
            f'<span class="ticks">{labels}</span></div>')


# -- a layer's section --------------------------------------------------------
def _section(report, v):
    row = v.row
    layers = {x.index: x for x in report.layers}
    head = (f'<h2><span class="badge fam-{v.family}">{_e(v.type)}</span>'
            f'<span class="lname">{_e(v.name)}</span>'
            + (f'<span class="summary">{_e(v.summary)}</span>'
               if v.summary else "")
            + f'<a class="anchor" href="#L{v.index}" aria-label="link">#</a>'
            '</h2>')
    io = _io_line(v, layers)
    formula = row.formula or (f"{v.name}: {WHAT[v.type]}" if v.type in WHAT
                              else "")
    formula_html = (f'<p class="formula"><span class="lbl">computes</span>'
                    f'{_e(formula)}</p>' if formula else "")
    blocks = [head, io, formula_html, _facts(v)]
    if v.filters is not None:
        blocks.append(_filters_block(v))
    if v.params:
        blocks.append(_params_block(v))
    blocks.append(_tops_block(v))
    blocks.append(layer_training_block(report.training, v.name))
    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in v.notes)
    return (f'<section class="layer" id="L{v.index}" data-index="{v.index}">'
            + "".join(blocks) + notes
            + '<div class="inspector-slot"></div></section>')


def _io_line(v, layers):
    def bottom(k, name):
        src = v.bottom_sources[k] if k < len(v.bottom_sources) else None
        if src is None:
            return f"<code>{_e(name)}</code>"
        layer = layers[src[0]]
        via = "" if layer.name == name else f' <span class="via">(from ' \
            f'{_e(layer.name)})</span>'
        return f'<a href="#L{layer.index}"><code>{_e(name)}</code></a>{via}'
    bottoms = ", ".join(bottom(k, b) for k, b in enumerate(v.row.bottom))
    in_place = v.row.top and v.row.top == v.row.bottom
    tops = ", ".join(
        f"<code>{_e(t.name)}</code> <span class=\"shape\">"
        f"{_e(shape_text(t.shape))}</span>" for t in v.tops)
    if in_place:
        tops += ' <span class="via">(in place: overwrites its bottom)</span>'
    arrow = f'{bottoms} <span class="arrow">→</span> ' if bottoms else \
        '<span class="arrow">→</span> '
    return f'<p class="io">{arrow}{tops}</p>'


def _facts(v):
    row = v.row
    cells = []
    if row.param_shapes:
        shapes = " ".join(_e(shape_text(s)) for s in row.param_shapes)
        if any(row.shared_params):
            shapes += " (shared)"
        cells.append(("Parameters", f"{row.params:,} <span class=\"sub\">"
                      f"{shapes}</span>"))
    if row.macs:
        cells.append(("MACs", f"{row.macs:,} <span class=\"sub\">"
                      f"{_count(row.macs)}</span>"))
    for t in v.tops:
        f = t.field
        if f is None:
            continue
        name = f" of {_e(t.name)}" if len(v.tops) > 1 else ""
        if f.jump is None:
            size = "whole input" if f.whole else "×".join(
                fraction_text(s) for s in f.size) + " (layout gone)"
            cells.append((f"Receptive field{name}", size))
            continue
        size = "×".join(str(s) for s in f.size)
        if f.whole:
            size += " (covers the input)"
        jump = "×".join(fraction_text(j) for j in f.jump) if len(
            set(f.jump)) > 1 else fraction_text(f.jump[0])
        start = ", ".join(num(s) for s in f.start) if f.start else "—"
        cells.append((f"Receptive field{name}",
                      f"{size} <span class=\"sub\">of <code>{_e(f.input)}"
                      f"</code>, jump {jump}, value (0, 0) sees from "
                      f"({start})</span>"))
    if not cells:
        return ""
    return '<dl class="facts">' + "".join(
        f"<div><dt>{k}</dt><dd>{val}</dd></div>" for k, val in cells) + \
        "</dl>"


def _filters_block(v):
    f = v.filters
    uri = data_uri(f.picture)
    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in f.notes)
    width, height = f.picture.width, f.picture.height
    if f.kind == "heatmap":
        # Rows stay at least ~10 px tall (a 10 × 500 matrix is a strip).
        zx = max(1, min(8, 860 // max(1, width)))
        zy = max(zx, min(10, 360 // max(1, height)))
        size = f"width:{width * zx}px;height:{height * zy}px"
    else:
        narrow = f.kind == "grid" and f.wrap == 1 and f.shown_cols <= 8
        zoom = _zoom_for(width, f.tile,
                         target=30 if f.kind == "colour" or narrow else 14)
        size = f"width:{width * zoom}px"
    img = (f'<div class="pic"><img class="filters pixelated" '
           f'data-layer="{v.index}" src="{uri}" loading="lazy" '
           f'width="{width}" height="{height}" style="{size}" '
           f'alt="filters of {_e(v.name)}">{_group_labels(f)}</div>')
    bottom = _e(v.row.bottom[0]) if v.row.bottom else "the input"
    if f.kind == "colour":
        title = f"Filters: {f.rows} colour tiles"
        text = (f"Each tile is one filter, {f.param_shape[1]}×{f.tile[0]}×"
                f"{f.tile[1]}: its three input-channel slices drawn as one "
                f"colour image ({_e(f.channel_order)}); grey is 0, each "
                f"colour saturates at ±{num(f.scale)} (the 99.5th percentile "
                "of |w|).")
    elif f.kind == "heatmap":
        title = f"Weights: {f.rows} outputs × {f.cols} inputs"
        text = (f"Row i holds the {f.cols} weights of output i, one per "
                f"input value of <code>{bottom}</code> (flattened); "
                "colours as the legend, saturating at "
                f"±{num(f.scale)}.")
    else:
        cg = f.param_shape[1]
        kk = "×".join(str(k) for k in f.tile)
        if f.row_word == "filter":
            title = (f"Filters: {f.rows} rows × {f.cols} tiles of {kk}")
            text = (f"Each row is one filter, {cg}×{kk}: one {kk} tile per "
                    f"input channel of <code>{bottom}</code>. Output channel"
                    f" r = Σ over its {cg} tiles of (tile ⊛ that channel) "
                    f"+ bias r.")
            if f.wrap > 1:
                text += (f" Here each filter is a single tile, so the "
                         f"{f.shown_rows} filters are laid out {f.wrap} per "
                         "line.")
        else:
            title = (f"Weights: {f.rows} rows × {f.cols} tiles of {kk}")
            text = (f"Row i is input channel i of <code>{bottom}</code>: "
                    f"the {kk} stamp it adds, times its value, to each of "
                    f"the {f.cols} output channels of its group.")
        text += f" Colours saturate at ±{num(f.scale)}."
    groups = ""
    if f.groups:
        items = []
        for gs in f.groups:
            items.append(
                f"<li><b>group {gs.index}</b>: {f.row_word}s "
                f"{gs.rows[0]}–{gs.rows[1] - 1} read "
                + (f"input channels {gs.channels[0]}–{gs.channels[1] - 1}"
                   if f.row_word == "filter" else
                   f"output channels {gs.channels[0]}–{gs.channels[1] - 1}")
                + "</li>")
        if len(items) > 8:
            items = items[:3] + ["<li>…</li>"] + items[-2:]
        groups = (f'<div class="groups"><p>Grouped ({len(f.groups)} groups)'
                  f': tile j of a row is input channel j <i>of its group</i>'
                  f' — dark lines separate the groups.</p><ul>'
                  f'{"".join(items)}</ul></div>')
    axis = ""
    if f.kind == "grid" and f.wrap == 1:
        axis = (f'<div class="axis-x">→ {f.col_word} 0 … {f.shown_cols - 1}'
                f' · ↓ {f.row_word} 0 … {f.shown_rows - 1}</div>')
    elif f.kind == "heatmap":
        axis = (f'<div class="axis-x">→ input 0 … {f.cols - 1} · ↓ output '
                f'0 … {f.rows - 1}</div>')
    return (f'<div class="block filters-block"><h3>{title}</h3>'
            f'<p class="explain">{text}</p>{axis}{img}'
            f'<p class="hover-read" aria-live="polite">&nbsp;</p>{groups}'
            f'{notes}</div>')


def _group_labels(f):
    """Labels beside the rows of each group of a grouped filter grid."""
    if not f.groups or f.kind != "grid" or f.wrap != 1 or \
            len(f.groups) > 16:
        return ""
    kh, gap = f.tile[0], f.gap
    height = f.picture.height

    def y(row):             # first picture row of filter row `row`
        seps = sum(1 for g in f.groups[1:] if 0 < g.rows[0] <= row)
        return row * (kh + gap) + seps * f.group_gap

    out = []
    for g in f.groups:
        if g.rows[0] >= f.shown_rows:
            break
        last = min(g.rows[1], f.shown_rows) - 1
        top, bottom = y(g.rows[0]), y(last) + kh
        word = "ch" if f.row_word == "filter" else "out"
        out.append(
            f'<div class="glabel" style="top:{top / height * 100:.2f}%;'
            f'height:{(bottom - top) / height * 100:.2f}%"><span>group '
            f'{g.index} · {word} {g.channels[0]}–{g.channels[1] - 1}</span>'
            '</div>')
    return "".join(out)


def _zoom_for(width, tile, target=14):
    """How many screen pixels per picture pixel: tiles at least ~``target``
    px (at most 8 times their size), pictures at most ~860 px wide."""
    zoom = min(8, max(1, math.ceil(target / max(1, min(tile)))))
    zoom = min(zoom, max(1, 860 // max(1, width)))
    while zoom > 1 and width * zoom > 860:
        zoom -= 1
    return max(1, zoom)


def _params_block(v):
    rows = []
    for p in v.params:
        s = p.stats
        rows.append(
            f'<div class="param"><div class="param-head"><b>{_e(p.name)}</b>'
            f' <span class="shape">{_e(shape_text(p.shape))}</span></div>'
            f'{_stats_table(s)}{_histogram_svg(p.histogram, s)}</div>')
    return (f'<details class="block params-block"'
            f'{" open" if v.family in ("conv", "ip") else ""}>'
            f'<summary><h3>Parameter values</h3></summary>'
            f'<div class="params">{"".join(rows)}</div></details>')


def _stats_table(s):
    bad = s.nan_count or s.inf_count
    cells = [("min", num(s.min)), ("max", num(s.max)), ("mean", num(s.mean)),
             ("std", num(s.std)), ("zeros", f"{s.zero_fraction * 100:.1f}%"),
             ("NaN", f"{s.nan_count:,}"), ("Inf", f"{s.inf_count:,}")]
    body = "".join(
        f'<div class="{"bad" if k in ("NaN", "Inf") and bad else ""}">'
        f'<dt>{k}</dt><dd>{val}</dd></div>' for k, val in cells)
    warn = (f'<p class="warn">⚠ {s.nan_count:,} NaN and {s.inf_count:,} Inf'
            ' values (green in the pictures)</p>' if bad else "")
    return f'<dl class="stats">{body}</dl>{warn}'


def _histogram_svg(hist, stats, width=300, height=84):
    counts = hist.counts
    if not counts or not max(counts):
        return '<p class="sub">no finite values to bin</p>'
    peak = max(counts)
    lo, hi = hist.edges[0], hist.edges[-1]
    n = len(counts)
    plot_h = height - 20
    bw = width / n
    # One path per sign (blue negative, red positive, grey across 0).
    paths = {"neg": [], "pos": [], "mid": []}
    for i, c in enumerate(counts):
        if not c:
            continue
        h = max(1.0, c / peak * plot_h)
        a, b = hist.edges[i], hist.edges[i + 1]
        kind = "neg" if b <= 0 else "pos" if a >= 0 else "mid"
        paths[kind].append(f"M{i * bw + 0.5:.1f} {plot_h:.1f}v{-h:.1f}"
                           f"h{max(bw - 1, 0.8):.1f}v{h:.1f}z")
    bars = [f'<path class="b-{k}" d="{"".join(d)}"/>'
            for k, d in paths.items() if d]
    zero = ""
    if lo < 0 < hi:
        zx = (0 - lo) / (hi - lo) * width
        zero = (f'<line x1="{zx:.1f}" x2="{zx:.1f}" y1="0" y2="{plot_h}" '
                'class="zero"/>')
    axis = (f'<line x1="0" x2="{width}" y1="{plot_h + 0.5}" '
            f'y2="{plot_h + 0.5}" class="axis"/>'
            f'<text x="0" y="{height - 4}" class="tick">{_e(num(lo))}</text>'
            f'<text x="{width}" y="{height - 4}" class="tick" '
            f'text-anchor="end">{_e(num(hi))}</text>')
    if lo < 0 < hi:
        axis += (f'<text x="{(0 - lo) / (hi - lo) * width:.1f}" '
                 f'y="{height - 4}" class="tick" text-anchor="middle">0'
                 '</text>')
    cap = ""
    if hist.zeros_left_out:
        cap = (f'<p class="sub">{hist.zeros_left_out:,} exact zeros '
               f'({stats.zero_fraction * 100:.1f}%) not drawn, so the other '
               'bars stay readable.</p>')
    label = (f"histogram: {sum(counts):,} values in {n} bins from "
             f"{num(lo)} to {num(hi)}, the tallest {peak:,}")
    return (f'<figure class="hist"><svg viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" '
            f'aria-label="{_e(label)}"><title>{_e(label)}</title>{zero}'
            f'{"".join(bars)}{axis}</svg>{cap}</figure>')


def _tops_block(v):
    out = []
    for t_index, top in enumerate(v.tops):
        if not top.maps:
            continue
        first = top.maps[0]
        if first.kind == "maps":
            c, (h, w) = first.channels, first.map_size
            title = f"Output <code>{_e(top.name)}</code>: {c} channel" + (
                "s" if c != 1 else "") + f" of {h}×{w}"
        elif first.kind == "vector":
            title = (f"Output <code>{_e(top.name)}</code>: {first.channels} "
                     "values")
        else:
            title = f"Output <code>{_e(top.name)}</code>: one value"
        runs = "".join(_run_maps(v, t_index, r, view)
                       for r, view in enumerate(top.maps))
        out.append(f'<div class="block maps-block"><h3>{title}</h3>{runs}'
                   '</div>')
    return "".join(out)


def _run_maps(v, t_index, run, view):
    hidden = " hidden" if run else ""
    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in view.notes)
    if view.kind == "scalar":
        value = view.values[0][1] if view.values else float("nan")
        return (f'<div class="run" data-run="{run}"{hidden}>'
                f'<p class="scalar">{num(value)}</p>{notes}</div>')
    pictures = []
    for p, page in enumerate(view.pages):
        src_attr = "src" if (run == 0 and p == 0) else "data-src"
        zoom = _zoom_for(page.width, view.tile, target=44)
        if view.kind == "vector":
            zoom = max(1, min(18, 860 // max(1, page.width)))
        pictures.append(
            f'<img class="maps pixelated" id="map-{v.index}-{t_index}-{run}-'
            f'{p}" data-layer="{v.index}" data-top="{t_index}" '
            f'data-run="{run}" data-page="{p}" {src_attr}="{data_uri(page)}"'
            f' loading="lazy" width="{page.width}" height="{page.height}" '
            f'style="width:{page.width * zoom}px"'
            f'{" hidden" if p else ""} alt="{_e(view.blob)} page {p + 1}">')
    pager = ""
    if len(view.pages) > 1:
        pager = (f'<div class="pager" data-pages="{len(view.pages)}">'
                 '<button type="button" data-step="-1" aria-label="previous '
                 'page">‹</button><span class="pg">'
                 f'{_page_label(view, 0)}</span><button type="button" '
                 'data-step="1" aria-label="next page">›</button></div>')
    values = ""
    if view.values and view.kind == "vector":
        values = _values_bars(v, view)
    explain = ""
    if view.kind == "maps":
        explain = ('<p class="explain">One tile per channel (row by row), '
                   'all on one colour scale. Click a pixel to see where it '
                   'comes from.</p>')
    else:
        explain = ('<p class="explain">One cell per value, '
                   f'{view.cols} per row. Click a cell to read it.</p>')
    return (f'<div class="run" data-run="{run}"{hidden}>{explain}{pager}'
            f'<div class="pic maps-pic">{"".join(pictures)}</div>'
            '<p class="hover-read" aria-live="polite">&nbsp;</p>'
            f'<div class="map-side"><div class="legend-stats">'
            f'{_legend_bar(view.scale)}{_stats_table(view.stats)}</div>'
            f'{_histogram_svg(view.histogram, view.stats)}</div>'
            f'{values}{notes}</div>')


def _page_label(view, page):
    first = page * view.per_page
    last = min(view.shown, first + view.per_page) - 1
    return (f"page {page + 1} / {len(view.pages)} · channels "
            f"{first}–{last}")


def _values_bars(v, view):
    values = view.values
    finite = [abs(x) for _, x in values if math.isfinite(x)]
    peak = max(finite, default=1.0) or 1.0
    prob = v.type == "Softmax"
    rows = []
    for i, x in values:
        width = 0 if not math.isfinite(x) else abs(x) / peak * 100
        cls = "neg" if x < 0 else "pos"
        rows.append(f'<div class="vbar"><span class="k">{i}</span>'
                    f'<span class="bar"><i class="{cls}" '
                    f'style="width:{width:.1f}%"></i></span>'
                    f'<span class="v">{num(x)}</span></div>')
    title = ("Largest values" if view.values_are_top else
             "Probabilities" if prob else "Values")
    return (f'<div class="values"><h4>{title}</h4>{"".join(rows)}</div>')


def _footer():
    return ('<p>Made by <code>kaffe viz</code>: one self-contained file, no '
            'network needed. The numbers come from kaffe\'s own forward '
            'pass; shapes, MACs and receptive fields from <code>kaffe '
            'explain</code>.</p>')


# -- the data for the script --------------------------------------------------
def _data(report):
    layers = {}
    for v in report.layers:
        if v.hidden:
            continue
        tops = []
        for top in v.tops:
            f = top.field
            field = None
            if f is not None:
                field = {"input": f.input, "size": [int(s) for s in f.size],
                         "jump": list(f.jump) if f.jump else None,
                         "start": list(f.start) if f.start else None,
                         "whole": f.whole, "extent": list(f.extent)}
            maps = [{"kind": m.kind, "channels": m.channels,
                     "shown": m.shown, "map": list(m.map_size),
                     "tile": list(m.tile), "factor": m.factor,
                     "cols": m.cols, "perPage": m.per_page, "gap": m.gap,
                     "scale": m.scale, "pages": len(m.pages)}
                    for m in top.maps]
            tops.append({"name": top.name, "field": field, "maps": maps})
        w = v.window
        window = None
        if w is not None:
            window = {"kind": w.kind, "channels": w.channels,
                      "sources": [list(s) if s else None for s in w.sources],
                      "kernel": list(w.kernel), "stride": list(w.stride),
                      "pad": list(w.pad), "dilation": list(w.dilation),
                      "deconv": w.deconv, "groupChannels": w.group_channels,
                      "outPerGroup": w.out_per_group, "half": w.half,
                      "concat": list(w.concat_sizes),
                      "bottoms": list(v.row.bottom)}
        filters = None
        f = v.filters
        if f is not None:
            filters = {"kind": f.kind, "rows": f.rows, "cols": f.cols,
                       "tile": list(f.tile), "gap": f.gap,
                       "groupGap": f.group_gap, "wrap": f.wrap,
                       "shownRows": f.shown_rows, "shownCols": f.shown_cols,
                       "rowWord": f.row_word, "colWord": f.col_word,
                       "factor": f.factor, "colFactor": f.col_factor,
                       "scale": f.scale,
                       "groups": [[g.rows[0], g.rows[1], g.channels[0],
                                   g.channels[1]] for g in f.groups]}
        layers[str(v.index)] = {"name": v.name, "type": v.type,
                                "tops": tops, "window": window,
                                "filters": filters}
    runs = [{"label": r.label, "synthetic": r.synthetic, "blob": r.blob,
             "size": list(r.size), "picture": r.picture is not None}
            for r in report.runs]
    return {"layers": layers, "runs": runs, "imageInput": report.image_input,
            "palette": [list(c) for c in palette()],
            "zeroIndex": ZERO_INDEX, "levels": LEVELS, "nanIndex": NAN_INDEX,
            "gapIndex": GAP_INDEX}
