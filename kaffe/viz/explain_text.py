"""explain's text: the table of ``kaffe explain`` and its number formats.

:func:`format_text` lays a :class:`~kaffe.viz.explain.Report` out as the
table ``Report.to_text()`` prints; :func:`compact_json` is the indented JSON
of ``Report.to_json()``; the small formatters are shared with the formula
lines (:mod:`kaffe.viz.formulas`).
"""
import json
from fractions import Fraction


def dims_text(values):
    """'5×5' for (5, 5)."""
    return "×".join(str(v) for v in values)


def compact_json(value, indent=0):
    pad = "  " * (indent + 1)
    flat = json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict) and value and (len(flat) > 80 or any(
            isinstance(v, dict) or (isinstance(v, list) and any(
                isinstance(x, (dict, list)) for x in v))
            for v in value.values())):
        items = [f"{pad}{json.dumps(k)}: {compact_json(v, indent + 1)}"
                 for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
    if isinstance(value, list) and value and any(
            isinstance(v, dict) for v in value):
        items = [pad + compact_json(v, indent + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + "  " * indent + "]"
    return flat


# -- text ---------------------------------------------------------------------
def shape_text(shape):
    return "(" + ", ".join(str(d) for d in shape) + ")"


def num_text(x):
    """A float parameter as written in a prototxt: 0.0001, 0.75, 1."""
    return f"{float(x):.6g}"


def json_number(x):
    if isinstance(x, Fraction):
        return int(x) if x.denominator == 1 else float(x)
    return x


def _rf_text(r):
    if r is None:
        return "—", "—"
    size = "whole input" if r.whole_input else dims_text(
        _fmt_fraction(v) for v in r.size)
    if r.jump is None:
        jump = "—"
    elif len(set(r.jump)) == 1:
        jump = _fmt_fraction(r.jump[0])
    else:
        jump = dims_text(_fmt_fraction(j) for j in r.jump)
    return size, jump


def _fmt_fraction(x):
    if isinstance(x, Fraction) and x.denominator != 1:
        return f"{x.numerator}/{x.denominator}"
    return str(int(x))


def _bytes_text(n):
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def _count_text(n):
    for unit, scale in (("G", 10 ** 9), ("M", 10 ** 6), ("k", 10 ** 3)):
        if n >= scale:
            return f"{n:,} ({n / scale:.2f} {unit})"
    return f"{n:,}"


# Column widths of the text table: longer layer names, and lines of the
# Bottom → Top column longer than their column, push the rest of their row
# onto the next line (the columns stay aligned); a Bottom → Top that does not
# fit on one line is broken into one line per bottom, then "→ top". A
# layer's numbers stay on its first line; with several tops, each top's
# shape and field are on the line of its name.
_NAME_WIDTH = 36
_IO_WIDTH = 44
_IO_MAX_WIDTH = 56


def _io_lines(row, width):
    """The Bottom → Top cell as lines, and the line each top is on."""
    if row.top and row.top == row.bottom:
        return [f"{t} (in place)" for t in row.top], list(range(len(row.top)))
    tops = [f"{t} (in place)" if t in row.bottom else t for t in row.top]
    tops = tops or [""]
    arrow = ", ".join(row.bottom) + " → " if row.bottom else "→ "
    if len(arrow) + len(tops[0]) <= width:
        lines = [arrow + tops[0]] + [" " * len(arrow) + t for t in tops[1:]]
        return lines, list(range(len(row.top)))
    lines = [b + "," for b in row.bottom[:-1]] + row.bottom[-1:]
    first = len(lines)
    lines += ["→ " + tops[0]] + ["  " + t for t in tops[1:]]
    return lines, [first + i for i in range(len(row.top))]


def format_text(report):
    """The report as an aligned table with formula lines and totals."""
    header = ["Layer", "Type", "Bottom → Top", "Top shape", "Param shapes",
              "Params", "MACs", "RF", "Jump"]
    right = {5, 6}
    longest_blob = max((len(b) + 2 for row in report.layers
                        for b in row.bottom + row.top), default=0)
    io_width = min(_IO_MAX_WIDTH, max(_IO_WIDTH, longest_blob))
    table = []          # (cells, formula or None)
    for row in report.layers:
        ios, top_line = _io_lines(row, io_width)
        params = " ".join(shape_text(s) for s in row.param_shapes)
        if any(row.shared_params):
            params += " shared"
        shapes = [shape_text(s) for s in row.top_shapes]
        rfs = [_rf_text(r) for r in row.receptive_field]
        height = max(len(ios), 1)
        cells = [["", "", io, "", "", "", "", "", ""] for io in ios] or \
            [[""] * len(header)]
        cells[0][:2] = [row.name, row.type]
        cells[0][4:7] = [params, f"{row.params:,}", f"{row.macs:,}"]
        if len(row.top) == 1:
            top_line = [0]          # one top: the whole row on its first line
        for t, k in enumerate(top_line[:height]):
            if t < len(shapes):
                cells[k][3] = shapes[t]
            if t < len(rfs):
                cells[k][7:9] = list(rfs[t])
        table.extend((c, None) for c in cells)
        if row.formula:
            table.append((None, row.formula))
    widths = [len(h) for h in header]
    for cells, _ in table:
        if cells:
            for i, cell in enumerate(cells):
                widths[i] = max(widths[i], len(cell))
    widths[0] = min(widths[0], _NAME_WIDTH)
    widths[2] = min(widths[2], io_width)
    starts = [sum(widths[:i]) + 2 * i for i in range(len(widths))]

    def line(cells):
        done, out = [], ""
        for i, (cell, width) in enumerate(zip(cells, widths)):
            if not cell:
                continue
            if out and len(out) + 2 > starts[i]:
                done.append(out.rstrip())      # spill: the row goes on below
                out = ""
            out = out.ljust(starts[i])
            out += cell.rjust(width) if i in right else cell
        return "\n".join(done + [out.rstrip()])

    rule_width = len(line(header))
    lines = []
    phase = report.phase
    inputs = ", ".join(f"{k} {shape_text(v)}" for k, v in
                       report.inputs.items())
    title = f"Net '{report.name}'" if report.name else "Net (unnamed)"
    lines.append(f"{title} ({phase})" +
                 (f", inputs: {inputs}" if inputs else ""))
    lines.append("=" * rule_width)
    lines.append(line(header))
    lines.append("=" * rule_width)
    for cells, formula in table:
        lines.append(line(cells) if cells else "    " + formula)
    lines.append("=" * rule_width)
    t = report.totals
    per_value = f"{t.bytes_per_value * 8}-bit values"
    trainable = ("all trainable" if t.trainable_params == t.params
                 else f"{t.trainable_params:,} trainable")
    lines.append(f"Params: {_count_text(t.params)}, {trainable}; "
                 f"{_bytes_text(t.param_bytes)} as {per_value}")
    lines.append(f"MACs (multiply-accumulates) per forward pass: "
                 f"{_count_text(t.macs)}")
    lines.append(f"Activation memory: {_bytes_text(t.activation_bytes)} "
                 "(every top's data once; in-place and shared tops are free; "
                 "training adds as much again for the gradients)")
    lines.append("RF = receptive field: the input pixels one value depends "
                 "on (per axis); Jump = input pixels between neighbouring "
                 "values")
    for note in report.notes:
        lines.append("Note: " + note)
    return "\n".join(lines)
