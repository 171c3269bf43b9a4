"""Training dynamics in kaffe viz's page: what ``kaffe train --stats DIR``
recorded, drawn per layer over the iterations.

:func:`load_training` reads the directory (through :mod:`kaffe.doctor`) and
runs the doctor's checks on it; :func:`training_card` draws the loss and
the findings for the top of the page; :func:`layer_training_block` draws a
layer's curves for its section: its outputs' std and |mean|, the norm of
the gradient it passes down, and for a learnable layer its weight norm,
gradient norm and the update/weight ratio. All inline SVG, no script.
"""
import html
import math
from dataclasses import dataclass, field

_STYLE = """<style>
.tr-grid { display: flex; flex-wrap: wrap; gap: 10px 18px; margin: 6px 0; }
.tr-chart { margin: 0; }
.tr-chart figcaption { font-size: 11.5px; color: var(--ink-3, #666); }
.tr-chart svg { display: block; background: var(--bg-2, #fafafa);
  border: 1px solid var(--line, #ddd); border-radius: 4px; }
.tr-chart polyline { fill: none; stroke: #2f6fdf; stroke-width: 1.5; }
.tr-chart .tr-2 { stroke: #d0642a; }
.tr-chart text { font-size: 9.5px; fill: var(--ink-3, #666);
  font-family: var(--mono, monospace); }
.tr-find { margin: 4px 0; font-size: 13px; }
.tr-find .sev-error { color: #b3261e; font-weight: 700; }
.tr-find .sev-warning { color: #a25b00; font-weight: 700; }
.tr-find .sev-info { color: #555; font-weight: 700; }
</style>"""


@dataclass
class TrainingStats:
    """The series of a recorded run, ready to draw.

    Attributes:
        directory: where it was read from.
        every: the sampling interval in iterations.
        losses: [(iteration, loss)] of every iteration.
        layers: layer name -> {series name -> [(iteration, value)]}.
        findings: the doctor's findings on the run, ordered.
    """
    directory: str
    every: int
    losses: list
    layers: dict = field(default_factory=dict)
    findings: list = field(default_factory=list)


def load_training(directory):
    """A :class:`TrainingStats` from a ``kaffe train --stats`` directory."""
    from ..doctor import diagnose_stats
    findings, run = diagnose_stats(directory)
    stats = TrainingStats(directory=str(directory),
                          every=int(run.meta.get("every", 1)), losses=[],
                          findings=findings)
    names = {layer["name"]: layer for layer in run.layers}
    for record in run.records:
        it = record["iter"]
        stats.losses.extend(tuple(x) for x in record.get("losses", []))
        for name, tops in record.get("tops", {}).items():
            for top, s in tops.items():
                _add(stats, name, f"{top}: std", it, s["std"])
                _add(stats, name, f"{top}: |mean|", it, s["absmean"])
        for name, layer in names.items():
            for bottom in layer["bottoms"]:
                d = record.get("diffs", {}).get(bottom)
                if d is not None and name in record.get("tops", {}):
                    _add(stats, name, f"gradient to {bottom}: norm", it,
                         d["norm"])
        for name, p in record.get("params", {}).items():
            _add(stats, name, "weights: norm", it, p["weight_norm"])
            _add(stats, name, "weights: gradient norm", it, p["grad_norm"])
            if "update_norm" in p and p["weight_norm"]:
                _add(stats, name, "update / weights", it,
                     p["update_norm"] / p["weight_norm"])
    return stats


def _add(stats, layer, series, it, value):
    stats.layers.setdefault(layer, {}).setdefault(series, []).append(
        (it, value))


def training_card(stats):
    """The loss over the iterations and the doctor's findings, as a card
    for the top of the page."""
    if stats is None:
        return ""
    items = []
    for f in stats.findings:
        where = f" — layer {_e(f.layer)}" if f.layer else ""
        items.append(f'<li class="tr-find"><span class="sev-{f.severity}">'
                     f'{_e(f.severity)}</span> <code>{_e(f.kind)}</code>'
                     f'{where}: {_e(f.message)}. <i>Fix:</i> {_e(f.fix)}.'
                     '</li>')
    found = (f'<ul>{"".join(items)}</ul>' if items else
             '<p>kaffe doctor finds nothing wrong in this run.</p>')
    return (f'{_STYLE}<section id="training" class="card training">'
            f'<h2>Training ({_e(stats.directory)}, sampled every '
            f'{stats.every} iterations)</h2>'
            f'<div class="tr-grid">{chart("loss", stats.losses, 480, 120)}'
            f'</div><h3>kaffe doctor</h3>{found}</section>')


def layer_training_block(stats, layer):
    """The curves of ``layer`` (empty if the run did not record it)."""
    if stats is None or layer not in stats.layers:
        return ""
    charts = "".join(chart(name, points)
                     for name, points in stats.layers[layer].items())
    return (f'<div class="training-block"><h3>Over training</h3>'
            f'<div class="tr-grid">{charts}</div></div>')


def chart(title, points, width=220, height=70):
    """A small line chart of (x, y) points; log y when the values are
    positive and span more than two decades. Non-finite values are gaps."""
    finite = [(x, y) for x, y in points if _finite(y)]
    if not finite:
        return (f'<figure class="tr-chart"><figcaption>{_e(title)}: no '
                'finite values</figcaption></figure>')
    ys = [y for _, y in finite]
    log = min(ys) > 0 and max(ys) / min(ys) > 100
    f = (lambda v: math.log10(v)) if log else (lambda v: v)
    lo, hi = f(min(ys)), f(max(ys))
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    x0, x1 = points[0][0], points[-1][0]
    span = (x1 - x0) or 1
    pad = 4
    lines, current = [], []
    for x, y in points:
        if not _finite(y):
            if current:
                lines.append(current)
            current = []
            continue
        px = pad + (x - x0) / span * (width - 2 * pad)
        py = pad + (1 - (f(y) - lo) / (hi - lo)) * (height - 2 * pad - 10)
        current.append(f"{px:.1f},{py:.1f}")
    if current:
        lines.append(current)
    polylines = "".join(f'<polyline points="{" ".join(c)}"/>'
                        for c in lines if len(c) > 1)
    dots = "".join(
        f'<circle cx="{c[0].split(",")[0]}" cy="{c[0].split(",")[1]}" '
        'r="1.5" fill="#2f6fdf"/>' for c in lines if len(c) == 1)
    scale = " (log)" if log else ""
    label = (f"{title}{scale}: from {_num(ys[0])} to {_num(ys[-1])}, "
             f"min {_num(min(ys))}, max {_num(max(ys))}, iterations "
             f"{x0}–{x1}")
    return (f'<figure class="tr-chart"><svg viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" '
            f'aria-label="{_e(label)}"><title>{_e(label)}</title>'
            f'{polylines}{dots}'
            f'<text x="{pad}" y="{height - 3}">{x0}</text>'
            f'<text x="{width - pad}" y="{height - 3}" text-anchor="end">'
            f'{x1}</text><text x="{width - pad}" y="10" text-anchor="end">'
            f'{_e(_num(max(ys)))}</text></svg>'
            f'<figcaption>{_e(title)}{scale}</figcaption></figure>')


def _finite(v):
    return isinstance(v, (int, float)) and math.isfinite(v)


def _num(v):
    return f"{v:.3g}"


def _e(text):
    return html.escape(str(text), quote=True)
