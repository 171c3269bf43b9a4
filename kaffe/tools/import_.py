"""``kaffe import``: an ONNX model as a Caffe prototxt and caffemodel.

The conversion itself is :func:`kaffe.onnx.load`; this module is its
command-line face.
"""
import logging

HELP = "convert an ONNX model to a Caffe prototxt + caffemodel (and check it)"
DESCRIPTION = """\
Convert MODEL.onnx to a Caffe net definition and weights. Constant shape
subgraphs (as torch.onnx.export writes them) are evaluated; every other node
becomes Caffe layers that compute exactly what it computes, or the command
stops with an error naming the node.

--check builds the written files with kaffe, runs them and onnxruntime on
the same random input and compares every blob both have; the exit status
is 1 if any relative error exceeds 1e-4."""
EPILOG = """\
examples:
  kaffe import model.onnx -o net.prototxt net.caffemodel --check
  kaffe import model.onnx -o net.prototxt net.caffemodel --shape x=1,3,224,224"""

LOG_LEVEL = logging.WARNING


def add_arguments(parser):
    from .explain import parse_shape
    parser.add_argument("model", metavar="MODEL.onnx",
                        help="the ONNX model to convert")
    parser.add_argument("-o", "--output", nargs=2, required=True,
                        metavar=("NET.prototxt", "NET.caffemodel"),
                        help="the two files to write")
    parser.add_argument("--shape", metavar="INPUT=N,C,H,W", type=parse_shape,
                        action="append", default=[],
                        help="fix the shape of an input with symbolic "
                             "dimensions (a symbolic batch alone becomes 1)")
    parser.add_argument("--check", action="store_true",
                        help="compare kaffe on the written files with "
                             "onnxruntime on the model")


def run(args):
    from ..core.net import Net
    from ..onnx import check_import, load, save
    from ..proto import caffe_pb2
    from .explain import collect_shapes
    prototxt, caffemodel = args.output
    result = load(args.model, collect_shapes(args.shape))
    save(result, prototxt, caffemodel)
    for note in result.notes:
        print(f"note: {note}")
    print(f"wrote {prototxt} ({len(result.net.layer)} layers) and "
          f"{caffemodel}; outputs {', '.join(result.outputs)}")
    if not args.check:
        return 0
    net = Net(prototxt, caffe_pb2.TEST, weights=caffemodel)
    report = check_import(args.model, net, result)
    print(report.to_text())
    return 0 if report.ok else 1
