"""Solver definitions Caffe refuses: KaffeConfigError naming file:line."""
import pytest

from kaffe import solvers
from kaffe.core.errors import KaffeConfigError, KaffeFormatError
from kaffe.proto import caffe_pb2

OK = 'base_lr: 0.1\nlr_policy: "fixed"\n'


def error_for(write_solver, text, cls=KaffeConfigError):
    path = write_solver(text)
    with pytest.raises(cls) as e:
        solvers.get_solver(path)
    return e.value


def test_no_train_net(write_solver):
    e = error_for(write_solver, OK)
    assert e.file == "solver.prototxt"
    assert "specifies no train net" in str(e)
    assert "net, net_param, train_net, train_net_param" in str(e)


def test_two_train_nets(write_solver):
    e = error_for(write_solver, OK + 'net: "net.prototxt"\n'
                  'train_net: "net.prototxt"\n')
    assert (e.file, e.line) == ("solver.prototxt", 4)
    assert "more than once" in str(e) and "net, train_net" in str(e)


def test_test_iter_count_mismatch(write_solver):
    e = error_for(write_solver, OK + 'train_net: "net.prototxt"\n'
                  'test_net: "net.prototxt"\ntest_net: "net.prototxt"\n'
                  'test_iter: 5\ntest_interval: 10\n')
    assert (e.line, e.field) == (6, "test_iter")
    assert "once for each test net" in str(e)
    assert "0 test_net_param and 2 test_net" in str(e)


def test_generic_net_allows_more_test_iters_than_test_nets(write_solver):
    solver = solvers.get_solver(write_solver(
        OK + 'net: "net.prototxt"\ntest_iter: 1\ntest_iter: 2\n'
        'test_interval: 3\n'))
    assert len(solver.test_nets) == 2


def test_test_interval_needed_with_test_nets(write_solver):
    e = error_for(write_solver, OK + 'net: "net.prototxt"\ntest_iter: 3\n')
    assert (e.field, e.line) == ("test_interval", 4)


def test_test_state_count(write_solver):
    e = error_for(write_solver, OK + 'net: "net.prototxt"\ntest_iter: 3\n'
                  'test_interval: 3\ntest_state { }\ntest_state { }\n')
    assert (e.field, e.line) == ("test_state", 6)


@pytest.mark.parametrize("type_name, fix", [
    ("sgd", "did you mean 'SGD'?"),
    ("Adamm", "did you mean 'Adam'?"),
    ("LBFGS", "use one of AdaDelta, AdaGrad, Adam, Nesterov, RMSProp, SGD"),
])
def test_unknown_type(write_solver, type_name, fix):
    e = error_for(write_solver, OK + f'net: "net.prototxt"\n'
                  f'type: "{type_name}"\n')
    assert (e.file, e.line, e.field) == ("solver.prototxt", 4, "type")
    assert fix in str(e)


def test_bad_lr_policy_names_its_line(write_solver):
    e = error_for(write_solver, 'net: "net.prototxt"\nbase_lr: 0.1\n'
                  '# the schedule\nlr_policy: "stpe"\n')
    assert (e.line, e.field) == (4, "lr_policy")
    assert "did you mean 'step'?" in str(e)
    assert str(e).startswith("solver.prototxt:4: lr_policy is not a known")


def test_step_without_stepsize(write_solver):
    e = error_for(write_solver, 'net: "net.prototxt"\nbase_lr: 0.1\n'
                  'lr_policy: "step"\ngamma: 0.1\n')
    assert (e.field, e.line) == ("stepsize", 3)


@pytest.mark.parametrize("type_name", ["AdaGrad", "RMSProp"])
def test_momentum_refused(write_solver, type_name):
    e = error_for(write_solver, OK + 'net: "net.prototxt"\n'
                  f'type: "{type_name}"\nmomentum: 0.9\n')
    assert (e.field, e.line) == ("momentum", 5)
    assert f"cannot be used with {type_name}" in str(e)


def test_rms_decay_range(write_solver):
    e = error_for(write_solver, OK + 'net: "net.prototxt"\n'
                  'type: "RMSProp"\nrms_decay: 1.0\n')
    assert (e.field, e.line) == ("rms_decay", 5)


def test_regularization_type(write_solver):
    e = error_for(write_solver, OK + 'net: "net.prototxt"\n'
                  'weight_decay: 0.1\nregularization_type: "l1"\n')
    assert (e.field, e.line) == ("regularization_type", 5)
    assert "did you mean 'L1'?" in str(e)
    # As in Caffe, the type only matters when something is decayed.
    solvers.get_solver(write_solver(
        OK + 'net: "net.prototxt"\nregularization_type: "L3"\n'))


def test_average_loss(write_solver):
    e = error_for(write_solver, OK + 'net: "net.prototxt"\naverage_loss: 0\n')
    assert (e.field, e.line) == ("average_loss", 4)


def test_missing_net_file(write_solver):
    e = error_for(write_solver, OK + 'net: "nets/train.prototxt"\n')
    assert (e.field, e.line) == ("net", 3)
    assert "current directory" in str(e)


def test_missing_test_net_file_names_its_line(write_solver):
    e = error_for(write_solver, OK + 'train_net: "net.prototxt"\n'
                  'test_net: "net.prototxt"\ntest_net: "gone.prototxt"\n'
                  'test_iter: 1\ntest_iter: 1\ntest_interval: 1\n')
    assert (e.field, e.line) == ("test_net", 5)


def test_syntax_error(write_solver):
    e = error_for(write_solver, OK + 'net: "net.prototxt"\nbase_lrr: 0.1\n',
                  KaffeFormatError)
    assert (e.file, e.line) == ("solver.prototxt", 4)
    assert "did you mean base_lr?" in str(e)


def test_solver_type_and_type_both_given(write_solver):
    error_for(write_solver, OK + 'net: "net.prototxt"\nsolver_type: ADAM\n'
              'type: "Adam"\n', KaffeFormatError)


def test_errors_without_a_file_have_no_location(workdir):
    param = caffe_pb2.SolverParameter(base_lr=0.1, lr_policy="fixed",
                                      type="Nesterov")
    with pytest.raises(KaffeConfigError) as e:
        solvers.get_solver(param)
    assert e.value.file is None and e.value.line is None
    assert str(e.value).startswith("the solver specifies no train net")


def test_changed_param_keeps_its_source(write_solver):
    """`caffe train` style: read, change (train_state, weights), then build."""
    param, source = solvers.load_solver(write_solver(
        'net: "net.prototxt"\nbase_lr: 0.1\nlr_policy: "steps"\n'))
    param.train_state.level = 2
    with pytest.raises(KaffeConfigError) as e:
        solvers.get_solver(param, source=source)
    assert (e.value.file, e.value.line) == ("solver.prototxt", 3)
    param.lr_policy = "step"
    param.stepsize = 1
    assert solvers.get_solver(param, source=source).net.name == "tiny"


def test_solver_base_class_has_no_rule(write_solver):
    with pytest.raises(TypeError, match="no update rule"):
        solvers.Solver(write_solver('net: "net.prototxt"'))
