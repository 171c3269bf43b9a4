"""``kaffe viz``: what each layer computes and outputs, as one HTML page.

The report is built in :mod:`kaffe.viz.report` and written as HTML by
:mod:`kaffe.viz.render`; this module is the command-line face of them.
"""
import argparse
import logging
import os

HELP = "an HTML report of a net: graph, filters, feature maps, receptive " \
       "fields"
DESCRIPTION = """\
Build a net (without opening any data source, as kaffe explain), run it
forward on an image (or on a deterministic synthetic pattern when no --image
is given) and write one self-contained HTML page: the graph of the net with
every blob's shape; for every layer kaffe explain's arithmetic, its filters
(one row per filter, one tile per input channel), its weights and their
histogram, and its output for the input — every channel, with statistics,
a histogram and the colour scale; click a pixel of any feature map to see
the input region it depends on and the window of the previous layer it came
from. The page needs no network: pictures and scripts are embedded. Large
nets are kept light by a size budget (--max-mb); the page says what was
downsampled or left out.

Images are read as RGB in [0, 1] (kaffe.io.load_image) and prepared as
kaffe.io.Transformer does: resize to the input's size, --channel-swap,
× --raw-scale, − --mean, × --input-scale."""
EPILOG = """\
examples:
  kaffe viz examples/mnist/lenet.prototxt -o lenet.html
  kaffe viz lenet.prototxt --weights lenet_iter_10000.caffemodel \\
      --image digit.png -o lenet.html
  kaffe viz deploy.prototxt --weights nsfw.caffemodel --image a.jpg b.jpg \\
      --channel-swap 2,1,0 --raw-scale 255 --mean 104,117,123 -o nsfw.html"""

# Building and running the net logs every layer; that is noise here.
LOG_LEVEL = logging.WARNING

log = logging.getLogger("kaffe")


def _floats(text):
    """'104,117,123' -> [104.0, 117.0, 123.0], or None if not numbers."""
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        return None


def _swap(text):
    try:
        order = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected channel indices separated by commas (e.g. 2,1,0), "
            f"got '{text}'") from None
    return order


def add_arguments(parser):
    from .explain import _stages, parse_shape
    parser.add_argument("net", metavar="NET.prototxt", nargs="?",
                        help="the net definition (with --stats: default "
                             "the train net recorded there)")
    parser.add_argument("--stats", metavar="DIR",
                        help="also draw the per-layer statistics that "
                             "kaffe train --stats DIR recorded, over the "
                             "iterations, with kaffe doctor's findings")
    parser.add_argument("-o", "--output", required=True,
                        metavar="REPORT.html", help="the page to write")
    parser.add_argument("--weights", metavar="W.caffemodel",
                        help="trained weights (without them the filters are "
                             "the fillers' initial values)")
    parser.add_argument("--image", nargs="+", action="extend", default=[],
                        metavar="IMG",
                        help="image(s) to run (JPEG, PNG …); several give a "
                             "selector in the page; none: a synthetic "
                             "pattern")
    parser.add_argument("--mean", metavar="B,G,R|FILE",
                        help="mean to subtract, per channel in the net's "
                             "channel order (e.g. 104,117,123) or a .npy / "
                             ".binaryproto mean image")
    parser.add_argument("--raw-scale", "--raw_scale", dest="raw_scale",
                        type=float, metavar="S",
                        help="multiply the [0, 1] image by S (255 for nets "
                             "trained on 0-255 pixels)")
    parser.add_argument("--channel-swap", "--channel_swap",
                        dest="channel_swap", type=_swap, metavar="2,1,0",
                        help="reorder the image's channels: net channel i "
                             "takes image channel order[i] (2,1,0: RGB → "
                             "BGR, Caffe's usual order)")
    parser.add_argument("--input-scale", "--input_scale", dest="input_scale",
                        type=float, metavar="S",
                        help="multiply by S after the mean (Caffe's "
                             "transform_param.scale)")
    parser.add_argument("--shape", metavar="BLOB=N,C,H,W", type=parse_shape,
                        action="append", default=[],
                        help="shape of a data-layer top whose source is not "
                             "opened (as kaffe explain); repeatable")
    parser.add_argument("--phase", type=str.upper, choices=("TRAIN", "TEST"),
                        default="TEST",
                        help="which layers to include (default TEST)")
    parser.add_argument("--level", type=int, default=0,
                        help="the net state's level (default 0)")
    parser.add_argument("--stage", type=_stages, default=[],
                        metavar="STAGE[,STAGE...]",
                        help="the net state's stages, comma-separated")
    parser.add_argument("--max-mb", "--max_mb", dest="max_mb", type=float,
                        default=12.0, metavar="MB",
                        help="about how large the page may grow, in "
                             "megabytes (default 12); several images share "
                             "it")


def _mean(text):
    import numpy as np

    from ..core.errors import KaffeConfigError
    values = _floats(text)
    if values is not None:
        return np.array(values, dtype=np.float32)
    if not os.path.exists(text):
        raise KaffeConfigError(
            f"is neither numbers nor an existing file", field="--mean",
            received=text,
            fix="pass per-channel values (e.g. --mean 104,117,123) or the "
                "path of a .npy / .binaryproto mean")
    from .classify import load_mean
    return load_mean(text)


def budget_for(max_mb):
    """A :class:`~kaffe.viz.report.Budget` for a page of about ``max_mb``
    megabytes of pictures."""
    from ..core.errors import KaffeConfigError
    from ..viz.report import Budget
    if not max_mb > 0:
        raise KaffeConfigError("must be positive", field="--max-mb",
                               received=max_mb)
    # A drawn feature-map pixel costs about 1 byte of base64 PNG (measured
    # on open_nsfw's ResNet-50 and LeNet); the maps get 3/4 of the page,
    # filters, histograms and text the rest.
    return Budget(map_pixels=int(max_mb * 1e6 * 0.75))


def _recorded_net(directory):
    """(the train net file a --stats directory holds, the shapes of its
    data layers' tops as recorded)."""
    from ..core.errors import KaffeConfigError
    from ..doctor import read_run
    from ..doctor.describe import DATA_TYPES
    run = read_run(directory)
    name = run.meta.get("net_file")
    path = os.path.join(directory, name) if name else None
    if path is None or not os.path.isfile(path):
        raise KaffeConfigError(
            "holds no train net definition", field="--stats",
            received=directory, fix="pass the net: kaffe viz NET.prototxt "
                                    "--stats DIR -o page.html")
    shapes = {}
    for layer in run.layers:
        if layer["type"] in DATA_TYPES and not layer["bottoms"]:
            for top in layer["tops"]:
                if top in run.net["blobs"]:
                    shapes[top] = tuple(run.net["blobs"][top])
    return path, shapes


def run(args):
    from ..core.errors import KaffeConfigError
    from ..proto.io import atomic_write
    from ..viz.render import render
    from ..viz.report import Preprocess, build_report
    from .explain import collect_shapes
    shapes = collect_shapes(args.shape)
    training = None
    if args.stats:
        from ..viz.training import load_training
        training = load_training(args.stats)
        if args.net is None:
            args.net, recorded_shapes = _recorded_net(args.stats)
            args.phase = "TRAIN"
            shapes = dict(recorded_shapes, **shapes)
    if args.net is None:
        raise KaffeConfigError("is required (or --stats DIR of a recorded "
                               "run)", field="NET.prototxt",
                               fix="pass the net definition to draw")
    folder = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(folder):
        raise KaffeConfigError(f"names a folder that does not exist: "
                               f"'{folder}'", field="--output",
                               fix="create the folder or write elsewhere")
    for path in args.image:
        if not os.path.isfile(path):
            raise KaffeConfigError(f"file '{path}' not found",
                                   field="--image",
                                   fix="check the image path")
    preprocess = Preprocess(
        mean=_mean(args.mean) if args.mean else None,
        raw_scale=args.raw_scale, channel_swap=args.channel_swap,
        input_scale=args.input_scale)
    report = build_report(args.net, phase=args.phase, weights=args.weights,
                          shapes=shapes, images=args.image,
                          preprocess=preprocess,
                          budget=budget_for(args.max_mb), level=args.level,
                          stages=args.stage)
    report.training = training
    page = render(report)
    atomic_write(args.output, page)
    size = len(page.encode("utf-8"))
    shown = sum(1 for v in report.layers if not v.hidden)
    print(f"Wrote {args.output} ({size / 1e6:.1f} MB): {shown} layers of "
          f"{report.title}, {len(report.runs)} input"
          f"{'s' if len(report.runs) != 1 else ''}"
          + (" (synthetic)" if report.runs and report.runs[0].synthetic
             else ""))
    return 0
