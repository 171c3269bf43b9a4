"""``kaffe explain``: the layer-by-layer arithmetic of a net.

The report itself is built in :mod:`kaffe.viz.explain`; this module is the
command-line face of it.
"""
import argparse
import logging

HELP = "layer-by-layer shapes, parameters, MACs and receptive fields of a net"
DESCRIPTION = """\
Build the net of a prototxt (without opening any data source) and print,
for every layer: its bottoms and tops, the shapes of its tops, its parameter
shapes and count, its multiply-accumulates, the receptive field and jump of
its tops, and for Convolution, Deconvolution, Pooling, InnerProduct and LRN
the arithmetic behind the output shape with the layer's own numbers."""
EPILOG = """\
examples:
  kaffe explain examples/mnist/lenet.prototxt
  kaffe explain lenet_train_test.prototxt --phase TRAIN --shape data=64,1,28,28
  kaffe explain deploy.prototxt --shape data=1,3,224,224 --json"""

# The net's INFO log (Creating Layer …) is noise here unless -v asks for it.
LOG_LEVEL = logging.WARNING


def parse_shape(text):
    """'data=64,1,28,28' -> ('data', (64, 1, 28, 28)) (argparse type)."""
    name, sep, dims = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise argparse.ArgumentTypeError(
            f"expected BLOB=N,C,H,W (e.g. data=64,1,28,28), got '{text}'")
    try:
        shape = tuple(int(d) for d in dims.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"the dimensions of '{name}' must be integers separated by "
            f"commas (e.g. {name}=64,1,28,28), got '{dims}'") from None
    if any(d <= 0 for d in shape):
        raise argparse.ArgumentTypeError(
            f"the dimensions of '{name}' must be positive, got '{dims}'")
    return name, shape


def _stages(text):
    return [stage for stage in text.split(",") if stage]


def add_arguments(parser):
    parser.add_argument("net", metavar="NET.prototxt",
                        help="the net definition")
    parser.add_argument("--phase", type=str.upper, choices=("TRAIN", "TEST"),
                        default="TEST",
                        help="which layers to include (default TEST)")
    parser.add_argument("--level", type=int, default=0,
                        help="the net state's level (default 0)")
    parser.add_argument("--stage", type=_stages, default=[],
                        metavar="STAGE[,STAGE...]",
                        help="the net state's stages, comma-separated")
    parser.add_argument("--weights", metavar="W.caffemodel",
                        help="load these weights (checks that they fit)")
    parser.add_argument("--json", action="store_true",
                        help="print the report as JSON (schema: "
                             "kaffe.viz.explain docstring)")
    parser.add_argument("--shape", metavar="BLOB=N,C,H,W", type=parse_shape,
                        action="append", default=[],
                        help="shape of an input or data-layer top; "
                             "repeatable; overrides Input shapes")


def collect_shapes(pairs):
    """{blob: shape} from repeated --shape options; one shape per blob."""
    from ..core.errors import KaffeConfigError
    shapes = {}
    for name, shape in pairs:
        if name in shapes and shapes[name] != shape:
            raise KaffeConfigError(
                f"is given twice for blob '{name}'", field="--shape",
                received=f"{shapes[name]} and {shape}",
                fix="pass one --shape per blob")
        shapes[name] = shape
    return shapes


def run(args):
    from ..viz.explain import explain
    shapes = collect_shapes(args.shape)
    report = explain(args.net, phase=args.phase, weights=args.weights,
                     shapes=shapes, level=args.level, stages=args.stage)
    print(report.to_json() if args.json else report.to_text())
    return 0
