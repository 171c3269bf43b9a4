"""Training curves from a Caffe or kaffe training log.

:func:`parse_log` reads the log as Caffe's ``tools/extra/parse_log.py`` does
(its regular expressions, its start time and year rollover from
``extract_seconds.py``, its rows); :func:`csv_text` and :func:`write_csv_files`
write the ``<log>.train`` / ``<log>.test`` tables byte for byte as
parse_log.py's csv writer; :func:`plot` draws loss, test outputs and learning
rate against iterations or seconds with matplotlib.

The log lines (glog prefix ``I1125 21:03:18.381027 12345 solver.py:665] ``)::

    Solving LeNet                                     <- the start time
    Iteration 500, Testing net (#0)
        Test net output #0: accuracy = 0.9877
        Test net output #1: loss = 0.0412 (* 1 = 0.0412 loss)
    Iteration 500 (61.1 iter/s, 1.63s/100 iters), loss = 0.0051
        Train net output #0: loss = 0.0051 (* 1 = 0.0051 loss)
    Iteration 500, lr = 0.0099

parse_log.py's rows keep its quirks, so that the tables are the ones Caffe
users know: a row's LearningRate is the last ``lr =`` seen when the row began
(the previous display's, as Caffe logs the rate after the outputs); the first
row takes the second row's rate; a row is kept once it has as many columns as
the first row (or when the next iteration's outputs begin); the outputs of all
test nets go into one row per test iteration, a later net's output replacing
an earlier one of the same name. Where parse_log.py would stop with a
traceback (a blank or non-glog line after the first iteration, an output value
such as ``-nan`` that its pattern cuts to ``-``) the line is skipped.

The :class:`Curve` list kept beside the rows is what :func:`plot` draws: one
curve per output of each test net (``#0``, ``#1`` …), the learning rate at the
iteration it was logged for, and which outputs are losses (the
``(* w = … loss)`` suffix Caffe prints for an output with a loss weight).
"""
import csv
import datetime
import io
import logging
import math
import os
import re
from dataclasses import dataclass, field

from ..core.errors import KaffeError
from ..optional import require

log = logging.getLogger("kaffe")

# parse_log.py's regular expressions, as they are.
ITERATION = re.compile(r"Iteration (\d+)")
TRAIN_OUTPUT = re.compile(r"Train net output #(\d+): (\S+) = ([\.\deE+-]+)")
TEST_OUTPUT = re.compile(r"Test net output #(\d+): (\S+) = ([\.\deE+-]+)")
LEARNING_RATE = re.compile(r"lr = ([-+]?[0-9]*\.?[0-9]+([eE]?[-+]?[0-9]+)?)")
# Ours, for the curves: which test net the next outputs belong to, and the
# suffix of a loss-weighted output.
TESTING_NET = re.compile(r"Testing net \(#(\d+)\)")
LOSS_SUFFIX = re.compile(r"\(\* \S+ = \S+ loss\)")

X_AXES = ("iterations", "seconds")
YLABELS = {"Loss": "loss", "Learning rate": "learning rate"}
LOG_HINT = ("give the log that `kaffe train` or `caffe train` wrote to stderr "
            "(e.g. `kaffe train --solver solver.prototxt 2> train.log`)")


@dataclass
class Curve:
    """One line of the plot.

    Attributes:
        phase: "train", "test" or "lr".
        net: the test net's index (``Testing net (#1)`` -> 1); 0 otherwise.
        name: the output blob ("loss", "accuracy"), or "LearningRate".
        is_loss: whether the output was logged with a loss weight.
        points: (iteration, seconds since the start, value), in log order;
            a value logged again for the same iteration replaces the last.
    """
    phase: str
    net: int
    name: str
    is_loss: bool = False
    points: list = field(default_factory=list)

    def add(self, iteration, seconds, value):
        if self.points and self.points[-1][0] == iteration:
            self.points[-1] = (iteration, seconds, value)
        else:
            self.points.append((iteration, seconds, value))


@dataclass
class TrainingLog:
    """A parsed training log.

    Attributes:
        path: the log file.
        start: the time of the ``Solving`` line (in the log's year).
        train, test: parse_log.py's rows: dicts with NumIters, Seconds,
            LearningRate (floats) and one float per output, in column order.
        curves: the :class:`Curve` list, in order of first appearance.
        test_nets: how many test nets the log shows.
    """
    path: str
    start: datetime.datetime
    train: list
    test: list
    curves: list
    test_nets: int = 0


def glog_datetime(line, year):
    """The time of a glog line (``I0210 13:39:22.381027 …``) as
    extract_seconds.py reads it, or None if the line has no such prefix."""
    try:
        words = line.strip().split()
        month = int(words[0][1:3])
        day = int(words[0][3:])
        stamp = words[1]
        pos = stamp.rfind(".")
        hour, minute, second = [int(x) for x in stamp[:pos].split(":")][:3]
        microsecond = int(stamp[pos + 1:])
        return datetime.datetime(year, month, day, hour, minute, second,
                                 microsecond)
    except (ValueError, IndexError):
        return None


def parse_log(path, year=None):
    """Parse a Caffe or kaffe training log (Caffe's parse_log.py).

    Args:
        path: the log file.
        year: the year of its first line (glog lines carry none); default, as
            extract_seconds.py, the year of the file's ctime. A month lower
            than the previous line's starts the next year.

    Returns:
        A :class:`TrainingLog`.

    Raises:
        KaffeError: the file cannot be read, is empty, has no ``Solving``
            line, or shows no training iterations.
    """
    path = os.fspath(path)
    try:
        if year is None:
            year = datetime.datetime.fromtimestamp(os.path.getctime(path)).year
        f = open(path, encoding="utf-8", errors="replace")
    except OSError as e:
        raise KaffeError(f"cannot read the training log: {e.strerror or e}",
                         file=path, fix=LOG_HINT) from None
    with f:
        start, lineno = None, 0
        for lineno, line in enumerate(f, 1):
            if "Solving" in line:
                start = glog_datetime(line, year)
                if start is None:
                    raise KaffeError(
                        "the 'Solving' line has no glog time prefix",
                        file=path, line=lineno, received=line.strip(),
                        expected="a line such as 'I1125 21:03:18.381027 "
                                 "12345 solver.cpp:204] Solving LeNet'",
                        fix="parse the log as glog wrote it, not its "
                            "messages alone")
                break
        if lineno == 0:
            raise KaffeError("the training log is empty", file=path,
                             fix=LOG_HINT)
        if start is None:
            raise KaffeError(
                "is not a training log: it has no 'Solving <net>' line, from "
                "which parse_log.py takes the start time", file=path,
                fix=LOG_HINT)
        parsed = _parse_lines(f, start, year)
    train, test, curves, test_nets = parsed
    if not curves:
        raise KaffeError(
            "no training iterations found: no 'Train net output', 'Test net "
            "output' or 'lr =' line after the first 'Iteration N' line",
            file=path,
            fix="let training run past its first display (solver 'display' "
                "> 0), or " + LOG_HINT)
    _fix_initial_nan_learning_rate(train)
    _fix_initial_nan_learning_rate(test)
    return TrainingLog(path, start, train, test, curves, test_nets)


def _parse_lines(lines, start, year):
    """parse_log.py's loop over the lines after 'Solving'."""
    iteration = -1.0
    learning_rate = float("nan")
    last_time = start
    train, test = [], []
    train_row = test_row = None
    curves = {}
    test_net, test_nets = 0, 0
    for line in lines:
        match = ITERATION.search(line)
        if match:
            iteration = float(match.group(1))
        if iteration == -1:
            continue     # nothing counts before the first iteration
        time = glog_datetime(line, year)
        if time is None:
            continue
        if time.month < last_time.month:     # the log went into a new year
            year += 1
            time = glog_datetime(line, year)
            if time is None:
                continue
        last_time = time
        seconds = (time - start).total_seconds()

        match = LEARNING_RATE.search(line)
        if match:
            learning_rate = float(match.group(1))
            _curve(curves, "lr", 0, "LearningRate").add(
                iteration, seconds, learning_rate)
        match = TESTING_NET.search(line)
        if match:
            test_net = int(match.group(1))
            test_nets = max(test_nets, test_net + 1)
        train_row = _row_output(TRAIN_OUTPUT, line, train, train_row,
                                iteration, seconds, learning_rate,
                                curves, "train", 0)
        test_row = _row_output(TEST_OUTPUT, line, test, test_row,
                               iteration, seconds, learning_rate,
                               curves, "test", test_net)
    if curves and any(c.phase == "test" for c in curves.values()):
        test_nets = max(test_nets, 1)
    return train, test, list(curves.values()), test_nets


def _row_output(regex, line, rows, row, iteration, seconds, learning_rate,
                curves, phase, net):
    """parse_log.py's parse_line_for_net_output; returns the open row."""
    match = regex.search(line)
    value = None
    if match:
        try:
            value = float(match.group(3))
        except ValueError:    # '-nan' cut to '-': parse_log.py fails here
            value = None
    if value is not None:
        name = match.group(2)
        if row is None or row["NumIters"] != iteration:
            if row is not None:
                rows.append(row)
            row = {"NumIters": iteration, "Seconds": seconds,
                   "LearningRate": learning_rate}
        row[name] = value
        curve = _curve(curves, phase, net, name)
        curve.is_loss = curve.is_loss or bool(LOSS_SUFFIX.search(line))
        curve.add(iteration, seconds, value)
    if row is not None and rows and len(row) == len(rows[0]):
        rows.append(row)    # the row is as full as the first one
        row = None
    return row


def _curve(curves, phase, net, name):
    key = (phase, net, name)
    if key not in curves:
        curves[key] = Curve(phase, net, name)
    return curves[key]


def _fix_initial_nan_learning_rate(rows):
    """parse_log.py: the first row takes the second row's rate (Caffe logs
    the rate only after the first outputs)."""
    if len(rows) > 1:
        rows[0]["LearningRate"] = rows[1]["LearningRate"]


# -- the CSV tables -----------------------------------------------------------
def csv_text(rows, delimiter=","):
    """The table parse_log.py's write_csv writes for ``rows``: the first row's
    keys as the header, Excel dialect (CRLF line ends, minimal quoting),
    floats as Python's repr ('100.0', '0.0051', 'nan')."""
    if not rows:
        return ""
    fieldnames = list(rows[0])
    extra = sorted({k for row in rows for k in row} - set(fieldnames))
    if extra:
        log.warning("kaffe plot: columns %s are not in the first row; left "
                    "out of the table (parse_log.py stops there)",
                    ", ".join(extra))
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=fieldnames, dialect="excel",
                            delimiter=delimiter, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_csv_files(training_log, output_dir=None):
    """Write ``<log>.train`` and ``<log>.test`` into ``output_dir`` (default:
    beside the log), as parse_log.py; a table without rows is not written.
    Returns the paths written."""
    from ..proto.io import atomic_write
    path = training_log.path
    if output_dir is None:
        output_dir = os.path.dirname(os.path.abspath(path))
    written = []
    for suffix, rows in ((".train", training_log.train),
                         (".test", training_log.test)):
        target = os.path.join(output_dir, os.path.basename(path) + suffix)
        if not rows:
            log.info("Not writing %s; no lines to write", target)
            continue
        atomic_write(target, csv_text(rows))
        written.append(target)
    return written


# -- the figure ---------------------------------------------------------------
def plot(training_log, out, x="iterations"):
    """Draw :func:`figure` into ``out``, written atomically; its extension is
    the format (png, svg, pdf …). Returns the figure."""
    out = os.fspath(out)
    fig = figure(training_log, x)
    fmt = os.path.splitext(out)[1][1:].lower()
    supported = fig.canvas.get_supported_filetypes()
    if fmt not in supported:
        raise KaffeError(
            "needs an extension naming a picture format matplotlib writes",
            field="output file", received=out,
            expected=", ".join("." + k for k in sorted(supported)))
    from ..proto.io import atomic_write
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=100)
    atomic_write(out, buf.getvalue())
    return fig


def figure(training_log, x="iterations"):
    """The curves of ``training_log`` as a matplotlib Figure (no pyplot).

    One column of axes sharing the x axis, one per panel that has curves:
    "Loss" (the loss-weighted outputs, train and test), "Test outputs" (the
    others: accuracy …; "Outputs" when the train net has some too) and
    "Learning rate" (log scale when it spans a decade, as does the loss).
    ``x`` is "iterations" or "seconds" (since the ``Solving`` line).
    """
    if x not in X_AXES:
        raise KaffeError("is not an x axis", field="x", received=x,
                         expected=" or ".join(X_AXES))
    figure_class = _matplotlib_figure()
    # train curves first (the log shows the first test before them)
    curves = sorted(training_log.curves, key=lambda c: c.phase != "train")
    outputs = [c for c in curves if c.phase != "lr" and not c.is_loss]
    panels = [
        ("Loss", [c for c in curves if c.phase != "lr" and c.is_loss]),
        ("Test outputs" if all(c.phase == "test" for c in outputs)
         else "Outputs", outputs),
        ("Learning rate", [c for c in curves if c.phase == "lr"]),
    ]
    panels = [(title, group) for title, group in panels if group]
    fig = figure_class(figsize=(9, 1.2 + 2.6 * len(panels)),
                       layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    column = 0 if x == "iterations" else 1
    for ax, (title, group) in zip(axes, panels):
        for curve in group:
            points = sorted(curve.points, key=lambda p: p[column])
            style = ({"marker": "o", "markersize": 3, "linestyle": "--"}
                     if curve.phase == "test" else {"linewidth": 1.2})
            ax.plot([p[column] for p in points], [p[2] for p in points],
                    label=_label(curve, training_log.test_nets), **style)
        ax.set_title(title, fontsize="medium", loc="left")
        ax.set_ylabel(YLABELS.get(title, "value"))
        ax.grid(True, alpha=0.3)
        if title in YLABELS and _spans_decades(group):
            ax.set_yscale("log")     # a loss or a step-decayed rate
        if title != "Learning rate" or len(group) > 1:
            ax.legend(loc="best", fontsize="small")
    axes[-1].set_xlabel("iterations" if x == "iterations" else
                        "seconds since 'Solving'")
    fig.suptitle(f"Training curves: {os.path.basename(training_log.path)}")
    return fig


def _label(curve, test_nets):
    if curve.phase == "lr":
        return "learning rate"
    if curve.phase == "test" and test_nets > 1:
        return f"test #{curve.net} {curve.name}"
    return f"{curve.phase} {curve.name}"


def _spans_decades(group):
    values = [p[2] for curve in group for p in curve.points
              if math.isfinite(p[2])]
    return bool(values) and min(values) > 0 and max(values) / min(values) >= 10


def _matplotlib_figure():
    """matplotlib's Figure class (no pyplot: no global state, no GUI)."""
    return require("matplotlib.figure", "drawing training curves").Figure
