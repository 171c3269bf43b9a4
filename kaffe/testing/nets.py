"""Small nets that several tests share."""


def simple_net_file(folder, num_output):
    """Write Caffe's test_net "simple net" (DummyData → Convolution →
    InnerProduct(num_output) → SoftmaxWithLoss, force_backward) into
    ``folder`` as simple.prototxt and return its path (pycaffe's test_net.py
    builds the same net)."""
    path = folder / "simple.prototxt"
    path.write_text("""name: 'testnet' force_backward: true
    layer { type: 'DummyData' name: 'data' top: 'data' top: 'label'
      dummy_data_param { num: 5 channels: 2 height: 3 width: 4
        num: 5 channels: 1 height: 1 width: 1
        data_filler { type: 'gaussian' std: 1 }
        data_filler { type: 'constant' } } }
    layer { type: 'Convolution' name: 'conv' bottom: 'data' top: 'conv'
      convolution_param { num_output: 11 kernel_size: 2 pad: 3
        weight_filler { type: 'gaussian' std: 1 }
        bias_filler { type: 'constant' value: 2 } }
        param { decay_mult: 1 } param { decay_mult: 0 }
        }
    layer { type: 'InnerProduct' name: 'ip' bottom: 'conv' top: 'ip_blob'
      inner_product_param { num_output: """ + str(num_output) + """
        weight_filler { type: 'gaussian' std: 2.5 }
        bias_filler { type: 'constant' value: -3 } } }
    layer { type: 'SoftmaxWithLoss' name: 'loss' bottom: 'ip_blob'
      bottom: 'label' top: 'loss' }""")
    return str(path)
