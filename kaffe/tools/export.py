"""``kaffe export``: a Caffe net and its weights as an ONNX model.

The conversion itself is :func:`kaffe.onnx.export`; this module is its
command-line face (with the deploy conversion of train nets and the check).
"""
import logging

from .explain import collect_shapes, parse_shape

HELP = "write a net and its weights as an ONNX model (and check it)"
DESCRIPTION = """\
Convert NET.prototxt + WEIGHTS.caffemodel to ONNX with Caffe's exact
semantics. A train/val net is turned into its deploy form first: data layers
become inputs (give their shapes with --shape), Dropout disappears, loss and
accuracy layers are left out (each with a note). A layer ONNX cannot express
is an error naming the layer and its type.

--check runs onnxruntime on the written model with a random input (or
--image) and compares every net output and every intermediate blob still in
the graph with kaffe's forward pass, printing the largest absolute and
relative error per blob; the exit status is 1 if any relative error exceeds
1e-4."""
EPILOG = """\
examples:
  kaffe export deploy.prototxt weights.caffemodel -o model.onnx --check
  kaffe export train_val.prototxt w.caffemodel -o m.onnx --shape data=1,3,224,224
  kaffe export deploy.prototxt w.caffemodel -o m.onnx --dynamic-batch --fold"""

# The net's INFO log (Creating Layer …) is noise here unless -v asks for it.
LOG_LEVEL = logging.WARNING


def add_arguments(parser):
    from ..onnx.export import DEFAULT_OPSET
    parser.add_argument("net", metavar="NET.prototxt",
                        help="the net definition (deploy or train/val)")
    parser.add_argument("weights", metavar="WEIGHTS.caffemodel",
                        help="the trained weights")
    parser.add_argument("-o", "--output", required=True,
                        metavar="MODEL.onnx", help="the ONNX file to write")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                        help=f"ONNX opset to write (default {DEFAULT_OPSET})")
    parser.add_argument("--shape", metavar="BLOB=N,C,H,W", type=parse_shape,
                        action="append", default=[],
                        help="shape of an input or data-layer top; "
                             "repeatable; overrides Input shapes")
    parser.add_argument("--dynamic-batch", action="store_true",
                        help="make the batch dimension symbolic")
    parser.add_argument("--fold", action="store_true",
                        help="fold BatchNorm/Scale/Bias into the convolution "
                             "or inner product before them")
    parser.add_argument("--check", action="store_true",
                        help="compare onnxruntime with kaffe blob by blob")
    parser.add_argument("--image", metavar="IMG",
                        help="with --check: feed this image (resized, BGR, "
                             "0-255) instead of random numbers")


def run(args):
    from ..errors import KaffeConfigError
    from ..onnx import check_export, deploy_net, export
    if args.image and not args.check:
        raise KaffeConfigError("only applies with --check", field="--image",
                               fix="add --check")
    net, notes = deploy_net(args.net, args.weights,
                            collect_shapes(args.shape))
    result = export(net, args.output, opset=args.opset,
                    dynamic_batch=args.dynamic_batch, fold=args.fold)
    for note in notes + result.notes:
        print(f"note: {note}")
    print(f"wrote {args.output}: {len(result.model.graph.node)} nodes, "
          f"opset {args.opset}, inputs {', '.join(result.inputs)}, outputs "
          f"{', '.join(result.outputs)}")
    if not args.check:
        return 0
    inputs = None
    if args.image:
        from ..onnx.check import image_input, random_inputs
        shapes = net.blob_shapes()
        first, *rest = result.inputs
        inputs = random_inputs({b: shapes[b] for b in rest})
        inputs[first] = image_input(args.image, shapes[first])
    report = check_export(net, result, inputs)
    print(report.to_text())
    return 0 if report.ok else 1
