"""kaffe types: a layer type's family, file and parameter messages."""
import json

from kaffe.tools.cli import main


def test_table_names_family_file_and_params(capsys):
    assert main(["types", "Convolution", "SoftmaxWithLoss", "Data"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["TYPE", "FAMILY", "FILE", "PARAMETERS"]
    assert lines[1].split() == ["Convolution", "vision",
                                "kaffe/layers/vision/convolution.py",
                                "convolution_param"]
    assert lines[2].split() == ["SoftmaxWithLoss", "loss",
                                "kaffe/layers/loss/softmax_loss.py",
                                "softmax_param,", "loss_param"]
    assert lines[3].split()[:3] == ["Data", "data",
                                    "kaffe/layers/data/data.py"]
    assert "data_param" in lines[3] and "transform_param" in lines[3]


def test_all_types_as_json(capsys):
    import kaffe
    assert main(["types", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["type"] for e in entries] == kaffe.layer_type_list()
    relu = next(e for e in entries if e["type"] == "ReLU")
    assert relu == {"type": "ReLU", "family": "neuron",
                    "file": "kaffe/layers/neuron/relu.py",
                    "implementation": "kaffe.layers.neuron.relu.ReLULayer",
                    "params": ["relu_param"]}


def test_unknown_type_suggests(capsys):
    assert main(["types", "Convolutoin"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kaffe: error: TYPE is not a registered layer type")
    assert "did you mean 'Convolution'" in err
