"""``kaffe plot``: training logs parsed as Caffe's tools/extra/parse_log.py
does, its CSV tables byte for byte, and the figure.

The expected rows and tables below are worked out by hand from parse_log.py's
rules (see kaffe/viz/plot.py's docstring): seconds since the ``Solving`` line,
a row's LearningRate is the last ``lr =`` seen when the row began, the first
row takes the second's rate, a row is kept once as full as the first.
"""
import datetime
import os
import struct
import sys

import pytest

from kaffe.core.errors import KaffeError
from kaffe.tools import cli
from kaffe.viz import plot

# An excerpt of a real `kaffe train` run of LeNet (examples/mnist), cut to
# max_iter 400 (its end: snapshot, final loss, last test) and followed by
# the shell's `time` output, as in the log it comes from.
KAFFE_LOG = """\
I1125 23:06:59.697167 25141 solver.py:275] Initializing solver from parameters: 
test_iter: 100
test_interval: 400
display: 100
max_iter: 400
I1125 23:06:59.720719 25141 train.py:83] Starting Optimization
I1125 23:06:59.720762 25141 solver.py:583] Solving LeNet
I1125 23:06:59.720781 25141 solver.py:584] Learning Rate Policy: inv
I1125 23:06:59.721168 25141 solver.py:781] Iteration 0, Testing net (#0)
I1125 23:07:00.718620 25141 data.py:80] Restarting data prefetching from start.
I1125 23:07:00.773171 25141 solver.py:687]     Test net output #0: accuracy = 0.0982
I1125 23:07:00.773321 25141 solver.py:687]     Test net output #1: loss = 2.36854 (* 1 = 2.36854 loss)
I1125 23:07:00.791173 25141 solver.py:665] Iteration 0 (0 iter/s, 1.07031s/100 iters), loss = 2.35247
I1125 23:07:00.791341 25141 solver.py:687]     Train net output #0: loss = 2.35247 (* 1 = 2.35247 loss)
I1125 23:07:00.791414 25141 solver.py:703] Iteration 0, lr = 0.01
I1125 23:07:02.451027 25141 solver.py:665] Iteration 100 (60.2463 iter/s, 1.65985s/100 iters), loss = 0.199134
I1125 23:07:02.451204 25141 solver.py:687]     Train net output #0: loss = 0.199134 (* 1 = 0.199134 loss)
I1125 23:07:02.451261 25141 solver.py:703] Iteration 100, lr = 0.00992565
I1125 23:07:04.140145 25141 solver.py:665] Iteration 200 (59.2026 iter/s, 1.68912s/100 iters), loss = 0.133682
I1125 23:07:04.140452 25141 solver.py:687]     Train net output #0: loss = 0.133682 (* 1 = 0.133682 loss)
I1125 23:07:04.140513 25141 solver.py:703] Iteration 200, lr = 0.00985258
I1125 23:07:05.765387 25141 solver.py:665] Iteration 300 (61.5292 iter/s, 1.62525s/100 iters), loss = 0.172787
I1125 23:07:05.765551 25141 solver.py:687]     Train net output #0: loss = 0.172787 (* 1 = 0.172787 loss)
I1125 23:07:05.765600 25141 solver.py:703] Iteration 300, lr = 0.00978075
I1125 23:07:07.436135 25141 solver.py:843] Snapshotting to binary proto file examples/mnist/lenet_iter_400.caffemodel
I1125 23:07:07.450000 25141 solver.py:846] Snapshotting solver state to binary proto file examples/mnist/lenet_iter_400.solverstate
I1125 23:07:07.461000 25141 solver.py:601] Iteration 400, loss = 0.0610316
I1125 23:07:07.461200 25141 solver.py:781] Iteration 400, Testing net (#0)
I1125 23:07:08.400000 25141 data.py:80] Restarting data prefetching from start.
I1125 23:07:08.457000 25141 solver.py:687]     Test net output #0: accuracy = 0.9651
I1125 23:07:08.457150 25141 solver.py:687]     Test net output #1: loss = 0.108413 (* 1 = 0.108413 loss)
I1125 23:07:08.457200 25141 solver.py:605] Optimization Done.
I1125 23:07:08.457300 25141 train.py:86] Optimization Done.

real	0m9.100s
"""

# Caffe 1.0 (caffe.cpp, solver.cpp, sgd_solver.cpp), two test nets, a step
# policy, a value in exponent notation, and training across New Year's Eve
# (2016 -> 2017): January's lines are in the next year.
CAFFE_LOG = """\
I1231 23:59:50.000000  4242 caffe.cpp:218] Using GPUs 0
I1231 23:59:50.100000  4242 solver.cpp:44] Initializing solver from parameters:
test_iter: 10
test_iter: 10
I1231 23:59:58.500000  4242 caffe.cpp:248] Starting Optimization
I1231 23:59:58.500100  4242 solver.cpp:272] Solving CaffeNet
I1231 23:59:58.500200  4242 solver.cpp:273] Learning Rate Policy: step
I1231 23:59:58.510000  4242 solver.cpp:330] Iteration 0, Testing net (#0)
I1231 23:59:59.250000  4242 solver.cpp:397]     Test net output #0: accuracy = 0.001
I1231 23:59:59.250001  4242 solver.cpp:397]     Test net output #1: loss = 6.9088 (* 1 = 6.9088 loss)
I1231 23:59:59.260000  4242 solver.cpp:330] Iteration 0, Testing net (#1)
I1231 23:59:59.900000  4242 solver.cpp:397]     Test net output #0: accuracy = 0.002
I1231 23:59:59.900001  4242 solver.cpp:397]     Test net output #1: loss = 6.9077 (* 1 = 6.9077 loss)
I1231 23:59:59.950000  4242 solver.cpp:218] Iteration 0 (0 iter/s, 1.45s/20 iters), loss = 6.91
I1231 23:59:59.950001  4242 solver.cpp:237]     Train net output #0: loss = 6.91 (* 1 = 6.91 loss)
I1231 23:59:59.950002  4242 sgd_solver.cpp:105] Iteration 0, lr = 0.01
I0101 00:00:10.250000  4242 solver.cpp:218] Iteration 20 (1.94175 iter/s, 10.3s/20 iters), loss = 6.85
I0101 00:00:10.250001  4242 solver.cpp:237]     Train net output #0: loss = 6.85 (* 1 = 6.85 loss)
I0101 00:00:10.250002  4242 sgd_solver.cpp:105] Iteration 20, lr = 0.01
I0101 00:00:20.500000  4242 solver.cpp:330] Iteration 40, Testing net (#0)
I0101 00:00:21.000000  4242 solver.cpp:397]     Test net output #0: accuracy = 0.0125
I0101 00:00:21.000001  4242 solver.cpp:397]     Test net output #1: loss = 6.5 (* 1 = 6.5 loss)
I0101 00:00:21.500000  4242 solver.cpp:330] Iteration 40, Testing net (#1)
I0101 00:00:21.900000  4242 solver.cpp:397]     Test net output #0: accuracy = 0.015
I0101 00:00:21.900001  4242 solver.cpp:397]     Test net output #1: loss = 6.45 (* 1 = 6.45 loss)
I0101 00:00:22.000000  4242 solver.cpp:218] Iteration 40 (1.95122 iter/s, 10.25s/20 iters), loss = 6.7
I0101 00:00:22.000001  4242 solver.cpp:237]     Train net output #0: loss = 6.7 (* 1 = 6.7 loss)
I0101 00:00:22.000002  4242 sgd_solver.cpp:105] Iteration 40, lr = 0.001
I0101 00:00:32.125000  4242 solver.cpp:218] Iteration 60 (1.97531 iter/s, 10.125s/20 iters), loss = 0.62
I0101 00:00:32.125001  4242 solver.cpp:237]     Train net output #0: loss = 6.2e-01 (* 1 = 0.62 loss)
I0101 00:00:32.125002  4242 sgd_solver.cpp:105] Iteration 60, lr = 1e-03
"""

NAN = float("nan")

# (NumIters, Seconds, LearningRate, outputs …) as parse_log.py makes them.
KAFFE_TRAIN = [
    # 23:07:00.791341 - 23:06:59.720762; rate NaN, then the second row's
    {"NumIters": 0.0, "Seconds": 1.070579, "LearningRate": 0.01,
     "loss": 2.35247},
    {"NumIters": 100.0, "Seconds": 2.730442, "LearningRate": 0.01,
     "loss": 0.199134},
    {"NumIters": 200.0, "Seconds": 4.41969, "LearningRate": 0.00992565,
     "loss": 0.133682},
    {"NumIters": 300.0, "Seconds": 6.044789, "LearningRate": 0.00985258,
     "loss": 0.172787},
]
KAFFE_TEST = [
    {"NumIters": 0.0, "Seconds": 1.052409, "LearningRate": 0.00978075,
     "accuracy": 0.0982, "loss": 2.36854},
    # 23:07:08.457000 - 23:06:59.720762; the rate of "Iteration 300, lr"
    {"NumIters": 400.0, "Seconds": 8.736238, "LearningRate": 0.00978075,
     "accuracy": 0.9651, "loss": 0.108413},
]
KAFFE_TRAIN_CSV = (
    "NumIters,Seconds,LearningRate,loss\r\n"
    "0.0,1.070579,0.01,2.35247\r\n"
    "100.0,2.730442,0.01,0.199134\r\n"
    "200.0,4.41969,0.00992565,0.133682\r\n"
    "300.0,6.044789,0.00985258,0.172787\r\n")
KAFFE_TEST_CSV = (
    "NumIters,Seconds,LearningRate,accuracy,loss\r\n"
    "0.0,1.052409,0.00978075,0.0982,2.36854\r\n"
    "400.0,8.736238,0.00978075,0.9651,0.108413\r\n")

# Start 2016-12-31 23:59:58.500100; 2017-01-01 00:00:10.250001 is 11.749901 s
# later.
CAFFE_TRAIN = [
    {"NumIters": 0.0, "Seconds": 1.449901, "LearningRate": 0.01,
     "loss": 6.91},
    {"NumIters": 20.0, "Seconds": 11.749901, "LearningRate": 0.01,
     "loss": 6.85},
    {"NumIters": 40.0, "Seconds": 23.499901, "LearningRate": 0.01,
     "loss": 6.7},
    {"NumIters": 60.0, "Seconds": 33.624901, "LearningRate": 0.001,
     "loss": 0.62},
]
# Iteration 0: the first row is still open when net #1 reports, so #1's
# values replace #0's in it; iteration 40: #0's row is full and kept, and #1
# starts a second row with the same NumIters.
CAFFE_TEST = [
    {"NumIters": 0.0, "Seconds": 0.7499, "LearningRate": 0.01,
     "accuracy": 0.002, "loss": 6.9077},
    {"NumIters": 40.0, "Seconds": 22.4999, "LearningRate": 0.01,
     "accuracy": 0.0125, "loss": 6.5},
    {"NumIters": 40.0, "Seconds": 23.3999, "LearningRate": 0.01,
     "accuracy": 0.015, "loss": 6.45},
]
CAFFE_TRAIN_CSV = (
    "NumIters,Seconds,LearningRate,loss\r\n"
    "0.0,1.449901,0.01,6.91\r\n"
    "20.0,11.749901,0.01,6.85\r\n"
    "40.0,23.499901,0.01,6.7\r\n"
    "60.0,33.624901,0.001,0.62\r\n")
CAFFE_TEST_CSV = (
    "NumIters,Seconds,LearningRate,accuracy,loss\r\n"
    "0.0,0.7499,0.01,0.002,6.9077\r\n"
    "40.0,22.4999,0.01,0.0125,6.5\r\n"
    "40.0,23.3999,0.01,0.015,6.45\r\n")


def write_log(tmp_path, text, name="train.log"):
    path = tmp_path / name
    path.write_text(text)
    return path


def run(argv, capsys):
    status = cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def curve(training_log, phase, net, name):
    [found] = [c for c in training_log.curves
               if (c.phase, c.net, c.name) == (phase, net, name)]
    return found


# -- parsing -------------------------------------------------------------------
def test_glog_datetime_reads_the_prefix_as_extract_seconds():
    line = ("I0210 13:39:22.381027 25210 solver.cpp:204] Iteration 100, "
            "lr = 0.00992565")
    assert plot.glog_datetime(line, 2015) == datetime.datetime(
        2015, 2, 10, 13, 39, 22, 381027)
    for not_glog in ("", "\n", "real\t0m9.100s", "test_iter: 100",
                     "I0230 13:39:22.000000 1 x.cpp:1] Feb 30"):
        assert plot.glog_datetime(not_glog, 2015) is None


def test_kaffe_log_rows(tmp_path):
    parsed = plot.parse_log(write_log(tmp_path, KAFFE_LOG), year=2025)
    assert parsed.start == datetime.datetime(2025, 11, 25, 23, 6, 59, 720762)
    assert parsed.train == KAFFE_TRAIN
    assert parsed.test == KAFFE_TEST
    assert [list(row) for row in parsed.train] == \
        [["NumIters", "Seconds", "LearningRate", "loss"]] * 4
    assert parsed.test_nets == 1


def test_kaffe_log_curves(tmp_path):
    parsed = plot.parse_log(write_log(tmp_path, KAFFE_LOG), year=2025)
    assert [(c.phase, c.net, c.name, c.is_loss) for c in parsed.curves] == [
        ("test", 0, "accuracy", False), ("test", 0, "loss", True),
        ("train", 0, "loss", True), ("lr", 0, "LearningRate", False)]
    # the rate at the iteration it was logged for, not the rows' lagged one
    assert curve(parsed, "lr", 0, "LearningRate").points == [
        (0.0, 1.070652, 0.01), (100.0, 2.730499, 0.00992565),
        (200.0, 4.419751, 0.00985258), (300.0, 6.044838, 0.00978075)]
    assert curve(parsed, "test", 0, "accuracy").points == [
        (0.0, 1.052409, 0.0982), (400.0, 8.736238, 0.9651)]
    assert [p[2] for p in curve(parsed, "train", 0, "loss").points] == [
        2.35247, 0.199134, 0.133682, 0.172787]


def test_caffe_log_two_test_nets_and_new_year(tmp_path):
    parsed = plot.parse_log(write_log(tmp_path, CAFFE_LOG, "caffe.INFO"),
                            year=2016)
    assert parsed.start == datetime.datetime(2016, 12, 31, 23, 59, 58, 500100)
    assert parsed.train == CAFFE_TRAIN
    assert parsed.test == CAFFE_TEST
    assert parsed.test_nets == 2
    assert curve(parsed, "test", 0, "accuracy").points == [
        (0.0, 0.7499, 0.001), (40.0, 22.4999, 0.0125)]
    assert curve(parsed, "test", 1, "accuracy").points == [
        (0.0, 1.3999, 0.002), (40.0, 23.3999, 0.015)]
    assert curve(parsed, "test", 1, "loss").is_loss
    assert [p[2] for p in curve(parsed, "lr", 0, "LearningRate").points] == [
        0.01, 0.01, 0.001, 0.001]


def test_default_year_is_the_files(tmp_path):
    path = write_log(tmp_path, KAFFE_LOG)
    year = datetime.datetime.fromtimestamp(os.path.getctime(path)).year
    assert plot.parse_log(path).start.year == year


def test_a_single_display_makes_no_rows(tmp_path):
    text = KAFFE_LOG.split("I1125 23:07:00.791414")[0]   # no "lr =" at all
    parsed = plot.parse_log(write_log(tmp_path, text), year=2025)
    # one train row, never followed by another: parse_log.py keeps none
    assert parsed.train == []
    assert len(parsed.test) == 0
    assert curve(parsed, "train", 0, "loss").points == [
        (0.0, 1.070579, 2.35247)]


def test_unparsable_values_and_lines_are_skipped(tmp_path):
    text = KAFFE_LOG.replace(
        "Train net output #0: loss = 0.133682 (* 1 = 0.133682 loss)",
        "Train net output #0: loss = -nan (* 1 = -nan loss)")
    parsed = plot.parse_log(write_log(tmp_path, text), year=2025)
    assert [row["NumIters"] for row in parsed.train] == [0.0, 100.0, 300.0]
    assert [p[0] for p in curve(parsed, "train", 0, "loss").points] == [
        0.0, 100.0, 300.0]


def test_lines_before_solving_do_not_count(tmp_path):
    early = ("I1125 23:06:58.000000 25141 solver.py:665] Iteration 7 (1 "
             "iter/s, 1s/1 iters), loss = 9\n"
             "I1125 23:06:58.000001 25141 solver.py:687]     Train net "
             "output #0: loss = 9 (* 1 = 9 loss)\n")
    parsed = plot.parse_log(write_log(tmp_path, early + KAFFE_LOG), year=2025)
    assert parsed.train == KAFFE_TRAIN


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("I1125 23:06:59.697167 25141 train.py:72] Use CPU.\n", "Solving"),
    ("Solving LeNet\n", "glog time prefix"),
    ("I1125 23:06:59.720762 25141 solver.py:583] Solving LeNet\n"
     "I1125 23:06:59.721168 25141 solver.py:584] Learning Rate Policy: inv\n",
     "no training iterations"),
])
def test_not_a_training_log(tmp_path, text, message):
    with pytest.raises(KaffeError, match=message) as info:
        plot.parse_log(write_log(tmp_path, text), year=2025)
    assert "train.log" in str(info.value)


def test_missing_log(tmp_path):
    with pytest.raises(KaffeError, match="cannot read the training log"):
        plot.parse_log(tmp_path / "nope.log")


# -- the CSV tables --------------------------------------------------------------
@pytest.mark.parametrize("text, name, year, train_csv, test_csv", [
    (KAFFE_LOG, "train.log", 2025, KAFFE_TRAIN_CSV, KAFFE_TEST_CSV),
    (CAFFE_LOG, "caffe.INFO", 2016, CAFFE_TRAIN_CSV, CAFFE_TEST_CSV),
])
def test_csv_files_are_parse_logs(tmp_path, text, name, year, train_csv,
                                  test_csv):
    parsed = plot.parse_log(write_log(tmp_path, text, name), year=year)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    written = plot.write_csv_files(parsed, out_dir)
    assert written == [str(out_dir / (name + ".train")),
                       str(out_dir / (name + ".test"))]
    assert (out_dir / (name + ".train")).read_bytes() == train_csv.encode()
    assert (out_dir / (name + ".test")).read_bytes() == test_csv.encode()


def test_csv_formats_nan_and_skips_empty_tables(tmp_path):
    assert plot.csv_text([{"NumIters": 0.0, "Seconds": 0.5,
                           "LearningRate": NAN, "loss": 1e-05}]) == (
        "NumIters,Seconds,LearningRate,loss\r\n0.0,0.5,nan,1e-05\r\n")
    assert plot.csv_text([]) == ""
    text = KAFFE_LOG.replace("Testing net", "Skipping net").replace(
        "Test net output", "Test output")
    parsed = plot.parse_log(write_log(tmp_path, text), year=2025)
    assert plot.write_csv_files(parsed) == [str(tmp_path / "train.log.train")]
    assert not (tmp_path / "train.log.test").exists()


# -- the figure ----------------------------------------------------------------
def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_figure_panels(tmp_path):
    pytest.importorskip("matplotlib")
    parsed = plot.parse_log(write_log(tmp_path, KAFFE_LOG), year=2025)
    fig = plot.plot(parsed, tmp_path / "curves.png")
    assert png_size(tmp_path / "curves.png") == (900, 900)
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles == ["Loss", "Test outputs", "Learning rate"]
    loss, outputs, rate = fig.axes
    assert [line.get_label() for line in loss.get_lines()] == [
        "train loss", "test loss"]
    assert [line.get_label() for line in outputs.get_lines()] == [
        "test accuracy"]
    assert list(rate.get_lines()[0].get_xdata()) == [0, 100, 200, 300]
    assert loss.get_yscale() == "log" and rate.get_yscale() == "linear"
    assert rate.get_xlabel() == "iterations"


def test_figure_two_test_nets_against_seconds(tmp_path):
    pytest.importorskip("matplotlib")
    parsed = plot.parse_log(write_log(tmp_path, CAFFE_LOG), year=2016)
    fig = plot.figure(parsed, x="seconds")
    assert len(fig.axes) == 3
    assert [line.get_label() for line in fig.axes[1].get_lines()] == [
        "test #0 accuracy", "test #1 accuracy"]
    assert list(fig.axes[1].get_lines()[1].get_xdata()) == [1.3999, 23.3999]
    assert fig.axes[-1].get_xlabel() == "seconds since 'Solving'"


def test_figure_without_tests_has_two_panels(tmp_path):
    pytest.importorskip("matplotlib")
    text = "".join(line for line in KAFFE_LOG.splitlines(keepends=True)
                   if "Test" not in line)
    parsed = plot.parse_log(write_log(tmp_path, text), year=2025)
    fig = plot.figure(parsed)
    assert [ax.get_title(loc="left") for ax in fig.axes] == [
        "Loss", "Learning rate"]


def test_figure_errors(tmp_path):
    pytest.importorskip("matplotlib")
    parsed = plot.parse_log(write_log(tmp_path, KAFFE_LOG), year=2025)
    with pytest.raises(KaffeError, match="x axis"):
        plot.figure(parsed, x="epochs")
    with pytest.raises(KaffeError, match=r"\.png"):
        plot.plot(parsed, tmp_path / "curves.txt")
    assert not (tmp_path / "curves.txt").exists()


# -- the command line ------------------------------------------------------------
def test_plot_is_a_command():
    assert cli.COMMANDS["plot"] == "plot"


def test_cli_default_output_and_csv(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    log_path = write_log(tmp_path, KAFFE_LOG)
    status, out, err = run(["plot", str(log_path), "--csv"], capsys)
    assert status == 0, err
    png_size(tmp_path / "train.log.png")
    assert (tmp_path / "train.log.train").read_bytes().startswith(
        b"NumIters,Seconds,LearningRate,loss\r\n0.0,1.070579,")
    assert (tmp_path / "train.log.test").exists()
    assert "Drew 3 plots against iterations to" in out
    assert "train.log.png" in out


def test_cli_output_and_seconds(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    log_path = write_log(tmp_path, CAFFE_LOG, "caffe.INFO")
    svg = tmp_path / "figs" / "curves.svg"
    svg.parent.mkdir()
    status, out, err = run(["plot", str(log_path), "-o", str(svg),
                            "--x", "seconds"], capsys)
    assert status == 0, err
    assert b"<svg" in svg.read_bytes()[:1000]
    assert not (tmp_path / "caffe.INFO.train").exists()   # no --csv
    assert [p.name for p in svg.parent.iterdir()] == ["curves.svg"]


@pytest.mark.parametrize("text, message", [
    (None, "cannot read the training log"),
    ("", "is empty"),
    ("just some text\n", "no 'Solving <net>' line"),
    ("I1125 23:06:59.720762 25141 solver.py:583] Solving LeNet\n",
     "no training iterations found"),
])
def test_cli_errors_exit_2(tmp_path, capsys, text, message):
    log_path = tmp_path / "train.log"
    if text is not None:
        log_path.write_text(text)
    status, out, err = run(["plot", str(log_path)], capsys)
    assert status == 2
    assert err.startswith("kaffe: error: ") and message in err
    assert "Traceback" not in err
    assert not (tmp_path / "train.log.png").exists()


def test_cli_bad_arguments(tmp_path, capsys):
    log_path = write_log(tmp_path, KAFFE_LOG)
    status, _, err = run(["plot", str(log_path), "--x", "epochs"], capsys)
    assert status == 2 and "usage:" in err
    pytest.importorskip("matplotlib")
    status, _, err = run(["plot", str(log_path), "-o",
                          str(tmp_path / "curves")], capsys)
    assert status == 2 and "extension" in err


def test_cli_without_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    log_path = write_log(tmp_path, KAFFE_LOG)
    status, _, err = run(["plot", str(log_path), "--csv"], capsys)
    assert status == 2
    assert "matplotlib" in err and "kaffe[viz]" in err
    assert "train.log.train and train.log.test were written" in err
    assert (tmp_path / "train.log.train").read_bytes() == \
        KAFFE_TRAIN_CSV.encode()
    assert not (tmp_path / "train.log.png").exists()


def test_help(capsys):
    status, out, _ = run(["plot", "--help"], capsys)
    assert status == 0
    assert "parse_log.py" in out and "--csv" in out and "--x" in out
