"""Where fields are written in a protobuf text file: the one position reader.

Protobuf's text parser gives a message, not the lines its parts came from.
kaffe's errors name file:line, so nets (the line of the n-th ``layer {``) and
solvers (the line of each top-level field) are located by this small
scanner of the text format — it tracks comments, quoted strings and brace
depth, and reports top-level fields. It does not parse values: the text was
already parsed by protobuf.
"""
import re

_TOKEN = re.compile(r"""
    (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
               [fF]?)
  | (?P<ident>[A-Za-z_][\w.]*)
  | (?P<open>[{<])
  | (?P<close>[}>])
  | (?P<colon>:)
  | (?P<newline>\n)
  | (?P<other>\S)
""", re.VERBOSE)


def top_level_field_lines(text):
    """{field: [1-based lines]} of every field set at the top level of
    protobuf ``text`` (``name: value``, ``name {``, ``name: {``, ``name <``),
    in order; comments and quoted strings are skipped."""
    lines = {}
    depth = 0
    line = 1
    pending = None
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind == "newline":
            line += 1
        elif kind == "comment":
            pass
        elif kind in ("colon", "open"):
            if depth == 0 and pending is not None:
                lines.setdefault(pending[0], []).append(pending[1])
            pending = None
            if kind == "open":
                depth += 1
        elif kind == "close":
            depth -= 1
            pending = None
        elif kind == "ident":
            pending = (match.group(), line)
        else:
            pending = None
            if kind == "string":
                line += match.group().count("\n")
    return lines


def top_level_block_lines(text, names):
    """1-based lines where top-level fields called one of ``names`` start
    (a net's ``layer {`` / V1 ``layers {`` blocks), in file order."""
    fields = top_level_field_lines(text)
    return sorted(line for name in names for line in fields.get(name, ()))
