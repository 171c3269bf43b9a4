"""The training loop: its log lines, testing, loss smoothing, actions,
callbacks, seeds, fine-tuning weights and how the nets are put together."""
import datetime
import os
import re

import numpy as np
import pytest

import kaffe
from kaffe import solvers
from kaffe.core.errors import KaffeConfigError
from kaffe.tools.logging_setup import GlogFormatter

f32 = np.float32

# The tiny net with a weighted loss and a second, 2-element output "extra"
# that nobody consumes: outputs are extra (#0, #1) then loss (#2).
OUTPUTS_NET = """name: "outputs"
layer { name: "data" type: "SolverTestBatches" top: "data" top: "target"
        top: "extra"
        dummy_data_param { shape { dim: 4 dim: 3 } shape { dim: 4 dim: 2 }
                           shape { dim: 2 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param { num_output: 2
          weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "ip" bottom: "target"
        top: "loss" loss_weight: 0.5 }
"""

# parse_log.py's regular expressions (tools/extra/parse_log.py).
ITERATION = re.compile(r"Iteration (\d+)")
TRAIN_OUTPUT = re.compile(r"Train net output #(\d+): (\S+) = ([\.\deE+-]+)")
TEST_OUTPUT = re.compile(r"Test net output #(\d+): (\S+) = ([\.\deE+-]+)")
LEARNING_RATE = re.compile(r"lr = ([-+]?[0-9]*\.?[0-9]+([eE]?[-+]?[0-9]+)?)")


def g(x):
    return "%g" % float(x)


def messages(log):
    return [r.getMessage() for r in log.records]


def glog_lines(log):
    formatter = GlogFormatter()
    return [formatter.format(r) for r in log.records]


def parse_log(lines):
    """parse_log.py's parse_log, minus the CSV: (train rows, test rows)."""
    year = datetime.date.today().year

    def when(line):
        fields = line.split()
        month, day = int(fields[0][1:3]), int(fields[0][3:])
        clock, micro = fields[1].rsplit(".", 1)
        h, m, s = (int(x) for x in clock.split(":"))
        return datetime.datetime(year, month, day, h, m, s, int(micro))

    start = next(when(l) for l in lines if "Solving" in l)
    iteration, rate = -1, float("nan")
    rows = {"train": [], "test": []}
    for line in lines:
        match = ITERATION.search(line)
        if match:
            iteration = float(match.group(1))
        if iteration == -1:
            continue
        seconds = (when(line) - start).total_seconds()
        match = LEARNING_RATE.search(line)
        if match:
            rate = float(match.group(1))
        for kind, regex in (("train", TRAIN_OUTPUT), ("test", TEST_OUTPUT)):
            match = regex.search(line)
            if match:
                table = rows[kind]
                if not table or table[-1]["NumIters"] != iteration:
                    table.append({"NumIters": iteration, "Seconds": seconds,
                                  "LearningRate": rate})
                table[-1][match.group(2)] = float(match.group(3))
    return rows["train"], rows["test"]


@pytest.fixture
def outputs_solver(workdir, write_solver):
    (workdir / "outputs.prototxt").write_text(OUTPUTS_NET)

    def make(extra="", display=2):
        return solvers.get_solver(write_solver(
            'net: "outputs.prototxt" base_lr: 0.01 lr_policy: "fixed" '
            f'max_iter: 4 display: {display} test_interval: 2 test_iter: 2 '
            f'test_compute_loss: true snapshot_after_train: false {extra}'))
    return make


def test_solve_log_lines(outputs_solver, kaffe_log):
    solver = outputs_solver()
    losses = []
    fb = solver.net.forward_backward
    solver.net.forward_backward = lambda: losses.append(fb()) or losses[-1]
    outputs = {}
    solver.add_callback(lambda: None, lambda: outputs.setdefault(
        solver.iter, (solver.net.blobs["extra"].data.copy(),
                      solver.net.blobs["loss"].data.reshape(-1)[0].copy())))
    solver.solve()
    text = messages(kaffe_log)
    start = text.index("Solving outputs")
    assert text[start + 1] == "Learning Rate Policy: fixed"
    train = [m for m in text if re.match(r"Iteration \d+ \(", m)]
    assert len(train) == 2
    pattern = (r"Iteration (\d+) \((\S+) iter/s, (\S+)s/2 iters\), "
               r"loss = (\S+)$")
    for line, it in zip(train, (0, 2)):
        match = re.match(pattern, line)
        assert match and int(match.group(1)) == it
        assert match.group(4) == g(f32(losses[it]))
        float(match.group(2)), float(match.group(3))
    i = text.index(train[1])
    extra, raw_loss = outputs[2]
    assert text[i + 1:i + 5] == [
        f"    Train net output #0: extra = {g(extra[0])}",
        f"    Train net output #1: extra = {g(extra[1])}",
        f"    Train net output #2: loss = {g(raw_loss)} "
        f"(* 0.5 = {g(f32(0.5) * raw_loss)} loss)",
        "Iteration 2, lr = 0.01"]
    tests = [m for m in text if "Testing net" in m]
    assert tests == [f"Iteration {i}, Testing net (#0)" for i in (0, 2, 4)]
    assert re.match(r"Iteration 4, loss = \S+$", text[-7])
    assert text[-1] == "Optimization Done."
    assert text.count("Test loss: " + text[-5].split(": ")[1]) >= 1


def test_log_parses_with_parse_log(outputs_solver, kaffe_log):
    solver = outputs_solver()
    solver.solve()
    lines = glog_lines(kaffe_log)
    train, test = parse_log(lines)
    assert [row["NumIters"] for row in train] == [0, 2]
    assert [row["NumIters"] for row in test] == [0, 2, 4]
    assert set(train[0]) == {"NumIters", "Seconds", "LearningRate", "extra",
                             "loss"}
    assert train[1]["LearningRate"] == 0.01
    # parse_log.sh's awk columns: $9 of an lr line, $11 of a test output
    lr_line = next(l for l in lines if ", lr = " in l)
    assert lr_line.split()[8] == "0.01"
    test_line = next(l for l in lines if "Test net output #0" in l)
    assert test_line.split()[10] == TEST_OUTPUT.search(test_line).group(3)
    assert test_line.split()[8] == "extra"
    # extract_seconds.py finds the start on the "Solving" line
    assert sum("] Solving " in l for l in lines) == 1


def test_test_net_means_and_shared_weights(outputs_solver, kaffe_log,
                                           workdir):
    solver = outputs_solver("test_initialization: false")
    solver.step(3)     # no test at 0; one at 2 (batches 0-1 of the test net)
    net = solver.test_nets[0]
    assert net.phase == kaffe.TEST
    for name in ("ip",):
        assert np.shares_memory(net.params[name][0].data,
                                solver.net.params[name][0].data)
    oracle = kaffe.Net("outputs.prototxt", kaffe.TEST)
    oracle.params["ip"][0].data[...] = solver.net.params["ip"][0].data
    oracle.params["ip"][1].data[...] = solver.net.params["ip"][1].data
    oracle.layer_dict["data"].count = 2      # batches 2-3: the next test
    kaffe_log.clear()
    solver.test(0)
    sums = np.zeros(3, f32)
    loss = f32(0)
    for _ in range(2):
        loss += f32(oracle._forward(0, len(oracle.layers) - 1))
        sums += np.concatenate([oracle.blobs["extra"].data.ravel(),
                                oracle.blobs["loss"].data.ravel()])
    means = sums / f32(2)
    assert messages(kaffe_log) == [
        "Iteration 3, Testing net (#0)",
        f"Test loss: {g(loss / f32(2))}",
        f"    Test net output #0: extra = {g(means[0])}",
        f"    Test net output #1: extra = {g(means[1])}",
        f"    Test net output #2: loss = {g(means[2])} "
        f"(* 0.5 = {g(f32(0.5) * means[2])} loss)"]


def test_display_zero_means_never(outputs_solver, kaffe_log):
    solver = outputs_solver(display=0)
    solver.solve()
    text = messages(kaffe_log)
    assert not [m for m in text if re.match(r"Iteration \d+ \(", m)]
    assert not [m for m in text if "lr = " in m or "Train net" in m]
    assert not [m for m in text if re.match(r"Iteration \d+, loss", m)]


def smoothed(losses, average_loss):
    """UpdateSmoothedLoss over one step() call, in float32."""
    window, value, out = [], f32(0), []
    for i, loss in enumerate(losses):
        if len(window) < average_loss:
            window.append(loss)
            value = (value * f32(len(window) - 1) + loss) / f32(len(window))
        else:
            idx = i % average_loss
            value += (loss - window[idx]) / f32(average_loss)
            window[idx] = loss
        out.append(value)
    return out


@pytest.mark.parametrize("iter_size", [1, 2])
def test_average_loss(write_solver, kaffe_log, iter_size):
    solver = solvers.get_solver(write_solver(
        'net: "net.prototxt" base_lr: 0.05 lr_policy: "fixed" display: 1 '
        f'average_loss: 3 iter_size: {iter_size}'))
    raw = []
    fb = solver.net.forward_backward
    solver.net.forward_backward = lambda: raw.append(fb()) or raw[-1]
    solver.step(7)
    per_iter = []
    for i in range(7):
        loss = f32(0)
        for value in raw[i * iter_size:(i + 1) * iter_size]:
            loss += f32(value)
        per_iter.append(loss / f32(iter_size))
    expected = smoothed(per_iter, 3)
    assert solver.smoothed_loss == float(expected[-1])
    shown = [m.rsplit("loss = ", 1)[1] for m in messages(kaffe_log)
             if re.match(r"Iteration \d+ \(", m)]
    assert shown == [g(v) for v in expected]


def test_stop_request_stops_and_snapshots(write_solver, kaffe_log):
    solver = solvers.get_solver(write_solver(
        'net: "net.prototxt" base_lr: 0.05 lr_policy: "fixed" max_iter: 10'))
    solver.add_callback(lambda: None, lambda: solver.request_action(
        solvers.STOP) if solver.iter == 2 else None)
    solver.solve()
    assert solver.iter == 3
    assert solver.requested_early_exit
    assert os.path.exists("solver_iter_3.solverstate")
    text = messages(kaffe_log)
    assert text[-1] == "Optimization stopped early."
    assert "Optimization Done." not in text


def test_snapshot_request_snapshots_and_goes_on(write_solver):
    solver = solvers.get_solver(write_solver(
        'net: "net.prototxt" base_lr: 0.05 lr_policy: "fixed" max_iter: 4 '
        'snapshot_after_train: false'))
    solver.add_callback(lambda: None, lambda: solver.request_action(
        "snapshot") if solver.iter == 1 else None)
    solver.solve()
    assert solver.iter == 4
    assert sorted(p for p in os.listdir() if "_iter_" in p) == [
        "solver_iter_2.caffemodel", "solver_iter_2.solverstate"]


def test_stop_during_test(write_solver, kaffe_log):
    solver = solvers.get_solver(write_solver(
        'net: "net.prototxt" base_lr: 0.05 lr_policy: "fixed" max_iter: 4 '
        'test_iter: 3 test_interval: 2 snapshot_after_train: false'))
    answers = [solvers.SNAPSHOT, solvers.STOP]
    solver.set_action_function(
        lambda: answers.pop(0) if answers else solvers.NONE)
    solver.solve()
    assert solver.iter == 0
    text = messages(kaffe_log)
    assert "Test interrupted." in text
    assert "Optimization stopped early." in text
    assert os.path.exists("solver_iter_0.caffemodel")   # the SNAPSHOT


def test_bad_action_is_refused(write_solver):
    solver = solvers.get_solver(write_solver(
        'net: "net.prototxt" base_lr: 0.05 lr_policy: "fixed"'))
    with pytest.raises(KaffeConfigError, match="not a solver action"):
        solver.request_action("pause")


def test_callbacks_order_and_gradients(write_solver, oracle_net):
    solver = solvers.get_solver(write_solver(
        'net: "net.prototxt" base_lr: 0.05 lr_policy: "fixed" iter_size: 2 '
        'test_iter: 1 test_interval: 2'))
    events = []
    test_all = solver.test_all
    solver.test_all = lambda: events.append(("test", solver.iter)) or \
        test_all()
    oracle = oracle_net()
    grads = []

    def on_gradients_ready():
        events.append(("gradients", solver.iter))
        grads.append([b.diff.copy() for b in solver.net.learnable_params])
    solver.add_callback(lambda: events.append(("start", solver.iter)),
                        on_gradients_ready)
    weights = [b.data.copy() for b in solver.net.learnable_params]
    solver.step(3)
    assert events == [("test", 0), ("start", 0), ("gradients", 0),
                      ("start", 1), ("gradients", 1),
                      ("test", 2), ("start", 2), ("gradients", 2)]
    # At on_gradients_ready the diffs are the sum of the iter_size passes.
    for blob, w in zip(oracle.learnable_params, weights):
        blob.data[...] = w
    oracle.forward_backward()
    oracle.forward_backward()
    for got, blob in zip(grads[0], oracle.learnable_params):
        np.testing.assert_array_equal(got, blob.diff)


def test_callback_object(write_solver):
    solver = solvers.get_solver(write_solver(
        'net: "net.prototxt" base_lr: 0.05 lr_policy: "fixed"'))

    class Counter:
        starts = ready = 0

        def on_start(self):
            self.starts += 1

        def on_gradients_ready(self):
            self.ready += 1
    counter = Counter()
    solver.add_callback(counter)
    solver.step(2)
    assert (counter.starts, counter.ready) == (2, 2)


def test_random_seed_makes_runs_repeatable(write_solver):
    def run(seed):
        solver = solvers.get_solver(write_solver(
            'net: "net.prototxt" base_lr: 0.05 lr_policy: "fixed" '
            f'random_seed: {seed}'))
        first = solver.net.params["ip1"][0].data.copy()
        solver.step(2)
        return first, solver.net.params["ip2"][0].data.copy()
    a, b, c = run(5), run(5), run(6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_weights_finetune_list(write_solver, kaffe_log):
    base = ('net: "net.prototxt" base_lr: 0.05 lr_policy: "fixed" '
            'test_iter: 1 test_interval: 10 ')
    donor = solvers.get_solver(write_solver(base + "random_seed: 1"))
    donor.net.save("first.caffemodel")
    donor.step(2)
    donor.net.save("second.caffemodel")
    solver = solvers.get_solver(write_solver(
        base + 'random_seed: 2 weights: "first.caffemodel , '
        'second.caffemodel"'))
    for net in [solver.net] + solver.test_nets:
        for name in ("ip1", "ip2"):
            for got, want in zip(net.params[name], donor.net.params[name]):
                np.testing.assert_array_equal(got.data, want.data)
    text = messages(kaffe_log)
    assert text.count("Finetuning from first.caffemodel") == 2
    assert text.count("Finetuning from second.caffemodel") == 2


def test_test_net_sources_and_states(workdir, write_solver, kaffe_log):
    staged = (workdir / "net.prototxt").read_text() + (
        'layer { name: "probe" type: "Silence" bottom: "ip1" '
        'include { stage: "probe" } }\n')
    (workdir / "staged.prototxt").write_text(staged)
    solver = solvers.get_solver(write_solver(
        'net: "staged.prototxt" test_net: "net.prototxt" '
        'test_net_param { name: "inline" layer { name: "data" '
        'type: "SolverTestBatches" top: "x" dummy_data_param { shape '
        '{ dim: 1 } } } } test_iter: 1 test_iter: 1 test_iter: 1 '
        'test_interval: 5 base_lr: 0.1 lr_policy: "fixed" '
        'train_state { stage: "probe" } test_state { } test_state { } '
        'test_state { stage: "probe" level: 1 }'))
    assert solver.net.phase == kaffe.TRAIN
    assert "probe" in solver.net.layer_dict
    assert [n.name for n in solver.test_nets] == ["inline", "tiny", "tiny"]
    assert [n.phase for n in solver.test_nets] == [kaffe.TEST] * 3
    assert "probe" not in solver.test_nets[1].layer_dict
    assert "probe" in solver.test_nets[2].layer_dict
    text = messages(kaffe_log)
    assert "Creating training net from net file: staged.prototxt" in text
    assert [m for m in text if m.startswith("Creating test net")] == [
        "Creating test net (#0) specified by test_net_param",
        "Creating test net (#1) specified by test_net file: net.prototxt",
        "Creating test net (#2) specified by net file: staged.prototxt"]


def test_net_param_inline(workdir):
    from kaffe.proto import caffe_pb2
    from kaffe.proto.io import parse_text
    net = parse_text((workdir / "net.prototxt").read_text(),
                     caffe_pb2.NetParameter())
    param = caffe_pb2.SolverParameter(base_lr=0.1, lr_policy="fixed",
                                      type="Nesterov", momentum=0.5)
    param.train_net_param.CopyFrom(net)
    solver = solvers.get_solver(param)
    assert isinstance(solver, solvers.NesterovSolver)
    solver.step(1)
    assert solver.iter == 1 and solver.test_nets == []


def test_pycaffe_surface(write_solver, workdir):
    path = write_solver('net: "net.prototxt" base_lr: 0.1 lr_policy: "fixed" '
                        'max_iter: 3 display: 1')
    for cls in (solvers.SGDSolver, solvers.NesterovSolver,
                solvers.AdaGradSolver, solvers.RMSPropSolver,
                solvers.AdaDeltaSolver, solvers.AdamSolver):
        solver = cls(path)
        assert isinstance(solver, solvers.SGDSolver)
        assert solver.type == cls.__name__[:-len("Solver")]
    solver = solvers.SGDSolver(path)
    assert (solver.param.max_iter, solver.param.display) == (3, 1)
    with pytest.raises(AttributeError):
        solver.iter = 5
    solver.net.clear_param_diffs()
    solver.net.forward_backward()
    solver.apply_update()          # one update by hand, as pycaffe allows
    assert solver.iter == 1
    other = kaffe.Net("net.prototxt", kaffe.TEST)
    solver.share_weights(other)
    assert np.shares_memory(other.params["ip2"][0].data,
                            solver.net.params["ip2"][0].data)
    solver.solve()
    assert solver.iter == 3
    assert kaffe.solvers.get_solver(path).type == "SGD"


def test_solver_type_enum_is_upgraded(write_solver):
    solver = solvers.get_solver(write_solver(
        'net: "net.prototxt" base_lr: 0.1 lr_policy: "fixed" '
        'solver_type: ADAM'))
    assert isinstance(solver, solvers.AdamSolver)
    assert solver.param.type == "Adam"
    assert not solver.param.HasField("solver_type")
