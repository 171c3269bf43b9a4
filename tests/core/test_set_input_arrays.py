import numpy as np
import pytest

import kaffe
from kaffe.core.errors import KaffeConfigError
from kaffe.proto import caffe_pb2
from kaffe.proto.io import parse_text

MEMORY = """
layer { name: "mem" type: "MemoryData" top: "data" top: "label"
        memory_data_param { batch_size: 2 channels: 1 height: 2 width: 3 } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param { num_output: 1 weight_filler { type: "constant" value: 1 } } }
"""


def test_set_input_arrays_feeds_memory_data():
    net = kaffe.Net(parse_text(MEMORY, caffe_pb2.NetParameter()), kaffe.TEST)
    data = np.arange(24, dtype=np.float32).reshape(4, 1, 2, 3)
    net.set_input_arrays(data, np.arange(4, dtype=np.float32))
    out = net.forward()
    np.testing.assert_allclose(out["ip"].ravel(), [15, 51])
    out = net.forward()
    np.testing.assert_allclose(out["ip"].ravel(), [87, 123])


def test_set_input_arrays_needs_memory_data_first():
    net = kaffe.Net(parse_text(
        'layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 } } }',
        caffe_pb2.NetParameter()), kaffe.TEST)
    with pytest.raises(KaffeConfigError, match="MemoryData"):
        net.set_input_arrays(np.zeros((1, 1, 1, 1), np.float32), np.zeros(1, np.float32))
