"""type: "Python" — user layers derived from caffe.Layer (pycaffe's
test_python_layer.py and test_python_layer_with_param_str.py), and the
refusals that keep a prototxt from calling arbitrary functions."""
import sys
import textwrap

import numpy as np
import pytest

import kaffe as caffe
from kaffe.core.errors import KaffeConfigError
from kaffe.layers.common.python_layer import BlobVec

MODULE = "kaffe_test_user_layers"

LAYERS_SOURCE = '''
import numpy as np
import kaffe as caffe

CALLS = []


class SimpleLayer(caffe.Layer):
    """Multiplies by ten."""

    def setup(self, bottom, top):
        pass

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        top[0].data[...] = 10 * bottom[0].data

    def backward(self, top, propagate_down, bottom):
        bottom[0].diff[...] = 10 * top[0].diff


class SimpleParamLayer(caffe.Layer):
    """Multiplies by the number in param_str."""

    def setup(self, bottom, top):
        try:
            self.value = float(self.param_str)
        except ValueError:
            raise ValueError("Parameter string must be a legible float")

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        top[0].data[...] = self.value * bottom[0].data

    def backward(self, top, propagate_down, bottom):
        bottom[0].diff[...] = self.value * top[0].diff


class ExceptionLayer(caffe.Layer):
    def setup(self, bottom, top):
        raise RuntimeError("from setup")


class ParameterLayer(caffe.Layer):
    def setup(self, bottom, top):
        self.blobs.add_blob(1)
        self.blobs[0].data[0] = 0

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        pass

    def backward(self, top, propagate_down, bottom):
        self.blobs[0].diff[0] = 1


class PhaseLayer(caffe.Layer):
    def setup(self, bottom, top):
        pass

    def reshape(self, bottom, top):
        top[0].reshape()

    def forward(self, bottom, top):
        top[0].data[()] = self.phase


class HalfSumSquares(caffe.Layer):
    """A loss: 0.5 * sum(x ** 2) into a scalar top."""

    def reshape(self, bottom, top):
        top[0].reshape()

    def forward(self, bottom, top):
        top[0].data[()] = 0.5 * (bottom[0].data ** 2).sum()

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = top[0].diff * bottom[0].data


class Recorder(caffe.Layer):
    """Records what pycaffe promises to a layer, and reshape calls."""

    def setup(self, bottom, top):
        CALLS.append(("setup", self.type, self.layer_param.name,
                      self.param_str, self.phase))

    def reshape(self, bottom, top):
        CALLS.append(("reshape", tuple(bottom[0].shape)))
        top[0].reshape(*bottom[0].shape)

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data


class PycaffeInit(caffe.Layer):
    """A pycaffe-style constructor taking the LayerParameter only."""

    def __init__(self, param):
        super().__init__(param)
        self.from_init = param.name

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].shape)

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data


class NotALayer:
    def __init__(self, *args):
        CALLS.append("NotALayer instantiated")


def a_function(*args, **kwargs):
    CALLS.append("a_function called")


an_instance = SimpleLayer
a_number = 3
'''

BROKEN_SOURCE = "import kaffe_no_such_dependency\n"


@pytest.fixture(scope="module")
def user_module(tmp_path_factory):
    directory = tmp_path_factory.mktemp("user_layers")
    (directory / f"{MODULE}.py").write_text(LAYERS_SOURCE)
    (directory / f"{MODULE}_broken.py").write_text(BROKEN_SOURCE)
    sys.path.insert(0, str(directory))
    import importlib
    importlib.invalidate_caches()
    module = importlib.import_module(MODULE)
    yield module
    sys.path.remove(str(directory))
    sys.modules.pop(MODULE, None)


@pytest.fixture
def calls(user_module):
    user_module.CALLS.clear()
    return user_module.CALLS


def write_net(tmp_path, text, name="net.prototxt"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def python_net(tmp_path, layer="SimpleLayer"):
    return write_net(tmp_path, f"""\
        name: 'pythonnet' force_backward: true
        input: 'data' input_shape {{ dim: 10 dim: 9 dim: 8 }}
        layer {{ type: 'Python' name: 'one' bottom: 'data' top: 'one'
          python_param {{ module: '{MODULE}' layer: '{layer}' }} }}
        layer {{ type: 'Python' name: 'two' bottom: 'one' top: 'two'
          python_param {{ module: '{MODULE}' layer: '{layer}' }} }}
        layer {{ type: 'Python' name: 'three' bottom: 'two' top: 'three'
          python_param {{ module: '{MODULE}' layer: '{layer}' }} }}
        """)


def single_layer_net(tmp_path, module, layer, extra=""):
    return write_net(tmp_path, f"""\
        name: 'pythonnet'
        input: 'data' input_shape {{ dim: 2 dim: 3 }}
        layer {{ type: 'ReLU' name: 'relu' bottom: 'data' top: 'relu' }}
        layer {{ type: 'Python' name: 'user' bottom: 'relu' top: 'out'
          python_param {{ module: '{module}' layer: '{layer}' {extra} }} }}
        """)


def test_python_is_a_registered_type():
    assert "Python" in caffe.layer_type_list()
    assert caffe.Layer is caffe.core.layer.Layer


def test_forward(tmp_path, user_module):
    net = caffe.Net(python_net(tmp_path), caffe.TRAIN)
    net.blobs["data"].data[...] = 8
    net.forward()
    assert (net.blobs["three"].data == 10 ** 3 * 8).all()


def test_backward(tmp_path, user_module):
    net = caffe.Net(python_net(tmp_path), caffe.TRAIN)
    net.blobs["three"].diff[...] = 7
    net.backward()
    assert (net.blobs["data"].diff == 10 ** 3 * 7).all()


def test_reshape(tmp_path, user_module):
    net = caffe.Net(python_net(tmp_path), caffe.TRAIN)
    net.blobs["data"].reshape(4, 4, 4, 4)
    net.forward()
    for blob in net.blobs.values():
        assert blob.data.shape == (4, 4, 4, 4)


def test_layers_are_the_users_instances(tmp_path, user_module):
    net = caffe.Net(python_net(tmp_path), caffe.TRAIN)
    layer = net.layer_dict["two"]
    assert type(layer) is user_module.SimpleLayer
    assert isinstance(layer, caffe.Layer)
    assert layer.type == "Python"
    assert layer.layer_param.python_param.layer == "SimpleLayer"
    assert isinstance(layer.blobs, BlobVec)


def test_exception_in_setup_propagates(tmp_path, user_module):
    with pytest.raises(RuntimeError, match="from setup"):
        caffe.Net(single_layer_net(tmp_path, MODULE, "ExceptionLayer"),
                  caffe.TEST)


def test_param_str(tmp_path, user_module):
    path = write_net(tmp_path, f"""\
        name: 'pythonnet' force_backward: true
        input: 'data' input_shape {{ dim: 10 dim: 9 dim: 8 }}
        layer {{ type: 'Python' name: 'mul10' bottom: 'data' top: 'mul10'
          python_param {{ module: '{MODULE}'
                layer: 'SimpleParamLayer' param_str: '10' }} }}
        layer {{ type: 'Python' name: 'mul2' bottom: 'mul10' top: 'mul2'
          python_param {{ module: '{MODULE}'
                layer: 'SimpleParamLayer' param_str: '2' }} }}
        """)
    net = caffe.Net(path, caffe.TRAIN)
    net.blobs["data"].data[...] = 8
    net.forward()
    assert (net.blobs["mul2"].data == 2 * 10 * 8).all()
    net.blobs["mul2"].diff[...] = 7
    net.backward()
    assert (net.blobs["data"].diff == 2 * 10 * 7).all()


def test_param_str_phase_type_before_setup_and_reshape_every_forward(
        tmp_path, calls):
    path = single_layer_net(tmp_path, MODULE, "Recorder", "param_str: 'hello'")
    net = caffe.Net(path, caffe.TRAIN)
    assert calls[0] == ("setup", "Python", "user", "hello", caffe.TRAIN)
    reshapes = sum(1 for c in calls if c[0] == "reshape")
    net.forward()
    net.forward()
    assert sum(1 for c in calls if c[0] == "reshape") == reshapes + 2
    net.blobs["data"].reshape(5, 3)
    net.forward()
    assert calls[-1] == ("reshape", (5, 3))
    assert net.blobs["out"].shape == (5, 3)


def test_parameter_blobs_train_save_load_share(tmp_path, user_module):
    path = write_net(tmp_path, f"""\
        name: 'pythonnet' force_backward: true
        input: 'data' input_shape {{ dim: 10 dim: 9 dim: 8 }}
        layer {{ type: 'Python' name: 'layer' bottom: 'data' top: 'top'
          python_param {{ module: '{MODULE}' layer: 'ParameterLayer' }} }}
        """)
    net = caffe.Net(path, caffe.TRAIN)
    net.forward()
    net.backward()
    layer = net.layers[list(net._layer_names).index("layer")]
    assert layer.blobs[0].data[0] == 0
    assert layer.blobs[0].diff[0] == 1
    assert list(net.params) == ["layer"]
    layer.blobs[0].data[0] += layer.blobs[0].diff[0]
    assert layer.blobs[0].data[0] == 1

    weights = str(tmp_path / "w.caffemodel")
    net.save(weights)
    layer.blobs[0].data[0] = -1
    net.copy_from(weights)
    assert layer.blobs[0].data[0] == 1

    net2 = caffe.Net(path, caffe.TRAIN)
    net2.share_with(net)
    layer2 = net2.layers[list(net2._layer_names).index("layer")]
    assert layer2.blobs[0].data[0] == 1
    layer.blobs[0].data[0] = 5
    assert layer2.blobs[0].data[0] == 5


def test_phase(tmp_path, user_module):
    path = write_net(tmp_path, f"""\
        name: 'pythonnet' force_backward: true
        layer {{ type: 'Python' name: 'layer' top: 'phase'
          python_param {{ module: '{MODULE}' layer: 'PhaseLayer' }} }}
        """)
    for phase in (caffe.TRAIN, caffe.TEST):
        net = caffe.Net(path, phase)
        assert net.forward()["phase"] == phase


def test_loss_weight_on_a_python_layer(tmp_path, user_module):
    path = write_net(tmp_path, f"""\
        name: 'pythonloss'
        input: 'data' input_shape {{ dim: 2 dim: 3 }}
        layer {{ type: 'InnerProduct' name: 'ip' bottom: 'data' top: 'ip'
          inner_product_param {{ num_output: 2
            weight_filler {{ type: 'gaussian' std: 1 }} }} }}
        layer {{ type: 'Python' name: 'loss' bottom: 'ip' top: 'loss'
          loss_weight: 2
          python_param {{ module: '{MODULE}' layer: 'HalfSumSquares' }} }}
        """)
    net = caffe.Net(path, caffe.TRAIN)
    assert net.blob_loss_weights["loss"] == 2
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    net.blobs["data"].data[...] = x
    loss = net.forward_backward()
    y = net.blobs["ip"].data
    assert loss == pytest.approx(2 * 0.5 * (y ** 2).sum(), rel=1e-5)
    np.testing.assert_allclose(net.blobs["ip"].diff, 2 * y, rtol=1e-5)
    w = net.params["ip"][0].data
    np.testing.assert_allclose(net.params["ip"][0].diff, (2 * y).T @ x,
                               rtol=1e-4, atol=1e-5)
    assert net.params["ip"][1].diff == pytest.approx((2 * y).sum(0), rel=1e-4)
    assert w.shape == (2, 3)


def test_pycaffe_style_init(tmp_path, user_module):
    net = caffe.Net(single_layer_net(tmp_path, MODULE, "PycaffeInit"),
                    caffe.TEST)
    layer = net.layer_dict["user"]
    assert layer.from_init == "user"
    assert layer.type == "Python"
    assert net.forward(data=np.ones((2, 3)))["out"].sum() == 6


def test_blobvec_add_blob():
    blobs = BlobVec(dtype=np.float64)
    blobs.add_blob(2, 3)
    blobs.add_blob()
    assert blobs[0].shape == (2, 3) and blobs[0].dtype == np.float64
    assert blobs[1].shape == ()
    assert (blobs[0].data == 0).all()


# -- refusals ------------------------------------------------------------------
def refusal(tmp_path, module, layer):
    path = single_layer_net(tmp_path, module, layer)
    with pytest.raises(KaffeConfigError) as info:
        caffe.Net(path, caffe.TEST)
    message = str(info.value)
    assert "net.prototxt:4:" in message          # file and line of the layer
    assert "layer 'user' (Python)" in message
    return message


def test_refuses_a_function_without_calling_it(tmp_path, calls):
    message = refusal(tmp_path, MODULE, "a_function")
    assert "python_param.layer" in message
    assert f"{MODULE}.a_function is a function" in message
    assert "caffe.Layer" in message and "Fix:" in message
    assert calls == []


def test_refuses_a_class_that_is_not_a_layer(tmp_path, calls):
    message = refusal(tmp_path, MODULE, "NotALayer")
    assert "does not derive from kaffe.Layer" in message
    assert calls == []


def test_refuses_os_system(tmp_path, monkeypatch):
    import os
    called = []
    monkeypatch.setattr(os, "system", lambda *a: called.append(a))
    message = refusal(tmp_path, "os", "system")
    assert "os.system" in message and "a function" in message
    assert called == []


def test_refuses_a_builtin(tmp_path):
    message = refusal(tmp_path, "builtins", "print")
    assert "builtins.print is a built-in function" in message


def test_refuses_values_and_layer_itself(tmp_path, user_module):
    assert "a value of type int" in refusal(tmp_path, MODULE, "a_number")
    assert "kaffe.Layer itself" in refusal(tmp_path, "kaffe", "Layer")


def test_missing_module(tmp_path):
    message = refusal(tmp_path, "kaffe_no_such_module", "Anything")
    assert "python_param.module" in message
    assert "cannot be found" in message and "sys.path" in message


def test_missing_attribute_suggests_layer_classes(tmp_path, user_module):
    message = refusal(tmp_path, MODULE, "SimpleLayr")
    assert "does not define" in message
    assert "did you mean 'SimpleLayer'" in message


def test_empty_python_param(tmp_path):
    path = write_net(tmp_path, """\
        input: 'data' input_shape { dim: 1 }
        layer { type: 'Python' name: 'user' bottom: 'data' top: 'out' }
        """)
    with pytest.raises(KaffeConfigError, match="python_param.module must name"):
        caffe.Net(path, caffe.TEST)


def test_a_broken_import_inside_the_module_propagates(tmp_path, user_module):
    path = single_layer_net(tmp_path, f"{MODULE}_broken", "Anything")
    with pytest.raises(ModuleNotFoundError, match="kaffe_no_such_dependency"):
        caffe.Net(path, caffe.TEST)
