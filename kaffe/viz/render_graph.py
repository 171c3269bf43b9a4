"""The net's graph as inline SVG for kaffe viz's page (laid out by
:func:`kaffe.viz.graph_layout.layout_graph`)."""
import html

from .report import shape_text


def escape(text):
    """``text`` made safe for HTML text and attribute values."""
    return html.escape(str(text), quote=True)



def graph_svg(report):
    g = report.graph
    layers = {v.index: v for v in report.layers}
    out = [f'<svg id="graph" class="graph" '
           f'viewBox="0 0 {g.width:.0f} {g.height:.0f}" '
           f'width="{g.width:.0f}" height="{g.height:.0f}" role="img" '
           'aria-label="The net as a graph of layers">'
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" '
           'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
           '<path d="M0,1 L9,5 L0,9 z" fill="#8b95a5"/></marker></defs>']
    for e in g.edges:
        out.append(f'<path class="edge" d="{_edge_path(e.points)}" '
                   f'marker-end="url(#arrow)"><title>{escape(e.blob)}</title>'
                   '</path>')
    for node in g.nodes:
        if node.dummy:
            continue
        out.append(_node_svg(node, layers))
    out.append("</svg>")
    return "".join(out)


def _edge_path(points):
    (x0, y0) = points[0]
    d = [f"M{x0:.1f},{y0:.1f}"]
    for (xa, ya), (xb, yb) in zip(points, points[1:]):
        if xa == xb:
            d.append(f"L{xb:.1f},{yb:.1f}")
        else:
            mid = (ya + yb) / 2
            d.append(f"C{xa:.1f},{mid:.1f} {xb:.1f},{mid:.1f} "
                     f"{xb:.1f},{yb:.1f}")
    return " ".join(d)


def _clip(text, n):
    return text if len(text) <= n else text[:n - 1] + "…"


def _node_svg(node, layers):
    first = layers[node.layers[0]]
    last = layers[node.layers[-1]]
    x, y, w, h = node.x, node.y, node.width, node.height
    lines = []
    ty = y + 17
    lines.append(f'<text x="{x + 12:.1f}" y="{ty:.1f}" class="n-name">'
                 f'{escape(_clip(first.name, 31))}</text>')
    ty += 15
    second = first.type + (f" · {first.summary}" if first.summary else "")
    lines.append(f'<text x="{x + 12:.1f}" y="{ty:.1f}" class="n-type">'
                 f'{escape(_clip(second, 38))}</text>')
    extra = node.layers[1:]
    for k in range(0, len(extra), 3):
        ty += 15
        spans = []
        for j, idx in enumerate(extra[k:k + 3]):
            v = layers[idx]
            sep = "+ " if j == 0 else " · "
            spans.append(f'<tspan class="sep">{sep}</tspan><tspan '
                         f'class="n-inplace fam-{v.family}" data-layer="{idx}"'
                         f'><title>{escape(v.name)} ({escape(v.type)}, in place)'
                         f'</title>{escape(_clip(v.type, 14))}</tspan>')
        lines.append(f'<text x="{x + 12:.1f}" y="{ty:.1f}">{"".join(spans)}'
                     '</text>')
    for top in last.tops or []:
        ty += 15
        label = shape_text(top.shape)
        if len(last.tops) > 1:
            label = f"{top.name}: {label}"
        lines.append(f'<text x="{x + 12:.1f}" y="{ty:.1f}" class="n-shape">'
                     f'{escape(_clip(label, 36))}</text>')
    title = " → ".join(v.name for v in (layers[i] for i in node.layers))
    return (f'<g class="gnode fam-{first.family}" data-layer="{first.index}"'
            f' tabindex="0" role="link" aria-label="{escape(first.name)}">'
            f'<title>{escape(title)}</title>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
            'rx="7" class="n-box"/>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="5" height="{h:.1f}" '
            'rx="2" class="n-stripe"/>' + "".join(lines) + "</g>")
