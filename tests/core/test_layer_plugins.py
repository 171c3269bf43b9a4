"""Layers from other packages: the kaffe.layers entry point group and
kaffe.register_layer (docs/graph.md, "Layers from other packages")."""
import logging
import sys
import textwrap

import numpy as np
import pytest

import kaffe
from kaffe.core import registry
from kaffe.errors import KaffeConfigError
from kaffe.proto import caffe_pb2
from kaffe.proto.io import parse_text
from kaffe.tools.types import type_info

PACKAGE = '''
import kaffe


class DoubleLayer(kaffe.Layer):
    """top = 2 · bottom (registered by the entry point's name)."""
    exact_num_bottom_blobs = 1
    exact_num_top_blobs = 1

    def reshape(self, bottom, top):
        top[0].reshape(bottom[0].shape)

    def forward(self, bottom, top):
        top[0].data[...] = 2 * bottom[0].data

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = 2 * top[0].diff
'''

MORE = '''
import kaffe


@kaffe.register_layer("PluginTriple")
class TripleLayer(kaffe.Layer):
    exact_num_bottom_blobs = 1
    exact_num_top_blobs = 1

    def reshape(self, bottom, top):
        top[0].reshape(bottom[0].shape)

    def forward(self, bottom, top):
        top[0].data[...] = 3 * bottom[0].data

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = 3 * top[0].diff
'''


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    """A tiny installed distribution, kaffe-plugin-demo, with three entries
    in the kaffe.layers group: a class, a module, and a broken one."""
    package = tmp_path / "kaffe_plugin_demo"
    package.mkdir()
    (package / "__init__.py").write_text(PACKAGE)
    (package / "more.py").write_text(MORE)
    info = tmp_path / "kaffe_plugin_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: kaffe-plugin-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [kaffe.layers]
        PluginDouble = kaffe_plugin_demo:DoubleLayer
        kaffe_plugin_demo_more = kaffe_plugin_demo.more
        PluginBroken = kaffe_plugin_demo.missing:Nothing
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    # Registrations made here do not outlive the test.
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_loaded_entry_points",
                        set(registry._loaded_entry_points))
    yield tmp_path
    for name in ("kaffe_plugin_demo", "kaffe_plugin_demo.more"):
        sys.modules.pop(name, None)


def test_entry_points_register_layers_a_net_can_use(plugin_path, caplog):
    with caplog.at_level(logging.WARNING, logger="kaffe"):
        loaded = registry.load_layer_plugins()
    assert "PluginDouble" in loaded and "kaffe_plugin_demo_more" in loaded
    assert "PluginBroken" not in loaded
    assert "Cannot load layer plugin 'PluginBroken" in caplog.text
    assert {"PluginDouble", "PluginTriple"} <= set(kaffe.layer_type_list())
    # Loading again finds nothing new.
    assert registry.load_layer_plugins() == []
    param = parse_text("""
        layer { name: "x" type: "Input" top: "x"
                input_param { shape { dim: 2 dim: 3 } } }
        layer { name: "d" type: "PluginDouble" bottom: "x" top: "d" }
        layer { name: "t" type: "PluginTriple" bottom: "d" top: "t" }
        force_backward: true""", caffe_pb2.NetParameter())
    net = kaffe.Net(param)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = net.forward(x=x)
    np.testing.assert_array_equal(out["t"], 6 * x)
    net.blobs["t"].diff[...] = 1
    np.testing.assert_array_equal(net.backward()["x"], np.full((2, 3), 6.0))
    assert net.node("d").type == "PluginDouble"


def test_kaffe_types_shows_where_a_plugin_layer_lives(plugin_path):
    registry.load_layer_plugins()
    info = type_info("PluginDouble")
    assert info.family == "kaffe_plugin_demo"
    assert info.file == str(plugin_path / "kaffe_plugin_demo" / "__init__.py")
    assert info.implementation == "kaffe_plugin_demo.DoubleLayer"


def test_register_layer_by_call_and_its_errors(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    class Negate(kaffe.Layer):
        def reshape(self, bottom, top):
            top[0].reshape(bottom[0].shape)

    assert kaffe.register_layer("PluginNegate", Negate) is Negate
    assert Negate.type == "PluginNegate"
    assert registry.layer_class("PluginNegate") is Negate
    with pytest.raises(KaffeConfigError, match="registered twice"):
        kaffe.register_layer("ReLU", Negate)

    class NotALayer:
        pass

    with pytest.raises(KaffeConfigError, match="subclass of kaffe.Layer"):
        kaffe.register_layer("PluginWrong", NotALayer)
