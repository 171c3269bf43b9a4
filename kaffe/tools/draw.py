"""``kaffe draw``: a picture of a net (Caffe's python/draw_net.py).

The graph itself is written by :mod:`kaffe.draw`; this module is its
command-line face.
"""
import logging
import sys

HELP = "draw a net as a graph (SVG/PNG/PDF with Graphviz, or DOT text)"
DESCRIPTION = """\
Draw the layers and blobs of a prototxt as a graph, as Caffe's draw_net.py:
layers as coloured boxes with their type and kernel/stride/pad, blobs as grey
octagons, and on each edge out of a layer the shape of the blob it makes
(found by building the net without opening any data source, as kaffe explain
does; left out when the net cannot be built, or with --no_shapes).

The output format is the extension of OUT. .dot (or .gv) writes the DOT text
and needs nothing else; .svg, .png, .pdf and the other Graphviz formats need
Graphviz's `dot` program. Without it, kaffe draw writes the DOT text next to
OUT (OUT with the extension .dot) and says how to render it."""
EPILOG = """\
examples:
  kaffe draw examples/mnist/lenet_train_test.prototxt lenet.svg
  kaffe draw lenet_train_test.prototxt lenet.png --phase TRAIN --rankdir TB
  kaffe draw deploy.prototxt net.dot --shape data=1,3,224,224 --display_lrm"""

# Building the net for the shapes logs every layer; that is noise here.
LOG_LEVEL = logging.WARNING

log = logging.getLogger("kaffe")


def add_arguments(parser):
    from .explain import parse_shape
    parser.add_argument("net", metavar="NET.prototxt",
                        help="the net definition")
    parser.add_argument("out", metavar="OUT.{svg,png,pdf,dot}",
                        help="the picture to write; its extension is the "
                             "format")
    parser.add_argument("--rankdir", type=str.upper, default="LR",
                        choices=("LR", "TB", "BT", "RL"),
                        help="layout direction: LR (left to right, the "
                             "default), TB (top to bottom), BT or RL")
    parser.add_argument("--phase", type=str.upper, default="ALL",
                        choices=("TRAIN", "TEST", "ALL"),
                        help="draw the layers of this phase only (default "
                             "ALL: every layer)")
    parser.add_argument("--display_lrm", "--display-lrm", action="store_true",
                        help="show the lr_mult of Convolution, Deconvolution "
                             "and InnerProduct layers")
    parser.add_argument("--shape", metavar="BLOB=N,C,H,W", type=parse_shape,
                        action="append", default=[],
                        help="shape of a data-layer top whose source cannot "
                             "be opened here (as kaffe explain); repeatable")
    parser.add_argument("--no_shapes", "--no-shapes", action="store_true",
                        help="do not build the net; no shapes on the edges")


def run(args):
    import os

    from .. import draw
    from ..core.errors import KaffeConfigError
    from ..proto.io import atomic_write, load_net

    fmt = draw.output_format(args.out)
    param, _ = load_net(args.net)
    phase = None if args.phase == "ALL" else args.phase
    shapes = {}
    if not args.no_shapes:
        from .explain import collect_shapes
        given = collect_shapes(args.shape)
        shapes, notes = draw.blob_shapes_of(args.net, phase, given)
        if given and not shapes:
            raise KaffeConfigError(
                "could not be applied: the net could not be built with them",
                field="--shape", received="; ".join(notes),
                fix="check the blob names and dimensions, or drop --shape")
        for note in notes:
            log.warning("kaffe draw: no blob shapes for %s", note)
    text = draw.get_dot_graph(param, args.rankdir, phase=phase,
                              display_lrm=args.display_lrm,
                              blob_shapes=shapes)
    if fmt in draw.TEXT_FORMATS:
        atomic_write(args.out, text)
        print(f"Wrote the graph of {args.net} to {args.out} (DOT text)")
        return 0
    if not draw.graphviz_available():
        dot_path = os.path.splitext(args.out)[0] + ".dot"
        atomic_write(dot_path, text)
        print(f"kaffe draw: Graphviz's dot program is not installed, so "
              f"{args.out} was not drawn; wrote the graph as DOT text to "
              f"{dot_path} instead.\nTo get pictures, install Graphviz "
              "(apt install graphviz, brew install graphviz, or conda "
              "install -c conda-forge graphviz) and rerun, or run: "
              f"dot -T{fmt} {dot_path} -o {args.out}", file=sys.stderr)
        return 0
    atomic_write(args.out, draw.render(text, fmt))
    print(f"Drew {args.net} to {args.out}")
    return 0
