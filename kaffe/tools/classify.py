"""``kaffe classify``: classify images with a trained net, as pycaffe's
``python/classify.py``.

Loads an image, a folder of images (``--ext``) or a ``.npy`` array of
H×W×K images, runs :class:`kaffe.Classifier` (resize to ``--images_dim``,
average over 10 crops unless ``--center_only``) and saves the N×C
predictions with ``numpy.save``. The defaults are classify.py's: CaffeNet's
files, relative to a Caffe checkout, with ``--raw_scale 255`` and
``--channel_swap 2,1,0`` (images load as RGB in [0, 1]; CaffeNet wants BGR in
[0, 255]).

Under ``mpiexec -n N`` the inputs are dealt out in blocks that fill whole
net batches (block b to worker b % N), each worker loads and classifies
only its blocks, and worker 0 saves all the predictions in input order:
the same batches as one worker, so the same numbers.
"""
import glob
import logging
import os
import time

HELP = "classify images with a trained net into a .npy (python/classify.py)"
PARALLEL = True
DESCRIPTION = """\
Classify an image, a folder of images (--ext) or a .npy array of HxWxK
images with a trained net, as pycaffe's python/classify.py: resize to
--images_dim, average the net's first output over 10 crops (4 corners,
centre and their mirrors) unless --center_only, and save the NxC
predictions with numpy.save. Images load as RGB in [0, 1]; the defaults
(--raw_scale 255, --channel_swap 2,1,0, ImageNet's mean) make that BGR in
[0, 255] minus the mean, as CaffeNet wants. The default model and mean
paths are Caffe's, relative to a Caffe checkout."""
EPILOG = """\
example:
  kaffe classify cat.jpg out.npy --model_def deploy.prototxt \\
      --pretrained_model weights.caffemodel --mean_file mean.binaryproto"""

log = logging.getLogger("kaffe")

# pycaffe's defaults (python/classify.py), relative to a Caffe checkout.
DEFAULT_MODEL_DEF = "models/bvlc_reference_caffenet/deploy.prototxt"
DEFAULT_PRETRAINED = ("models/bvlc_reference_caffenet/"
                      "bvlc_reference_caffenet.caffemodel")
DEFAULT_MEAN_FILE = "python/caffe/imagenet/ilsvrc_2012_mean.npy"


def add_arguments(parser):
    parser.add_argument("input_file",
                        help="input image, directory, or npy")
    parser.add_argument("output_file", help="output npy filename")
    parser.add_argument("--model_def", default=DEFAULT_MODEL_DEF,
                        help=f"model definition file (default "
                             f"{DEFAULT_MODEL_DEF})")
    parser.add_argument("--pretrained_model", default=DEFAULT_PRETRAINED,
                        help=f"trained model weights file (default "
                             f"{DEFAULT_PRETRAINED})")
    parser.add_argument("--gpu", action="store_true",
                        help="GPU computation (not available: kaffe runs on "
                             "the CPU)")
    parser.add_argument("--center_only", action="store_true",
                        help="predict from the centre crop alone instead of "
                             "averaging predictions across crops (default)")
    parser.add_argument("--images_dim", default="256,256",
                        help="canonical 'height,width' dimensions of input "
                             "images (default 256,256)")
    parser.add_argument("--mean_file", default=DEFAULT_MEAN_FILE,
                        help="data set image mean of [Channels x Height x "
                             "Width] dimensions (.npy, or a .binaryproto "
                             "from compute_image_mean); '' for no mean "
                             f"subtraction (default {DEFAULT_MEAN_FILE})")
    parser.add_argument("--input_scale", type=float,
                        help="multiply input features by this scale to "
                             "finish preprocessing")
    parser.add_argument("--raw_scale", type=float, default=255.0,
                        help="multiply raw input by this scale before "
                             "preprocessing (default 255)")
    parser.add_argument("--channel_swap", default="2,1,0",
                        help="order to permute input channels; the default "
                             "converts RGB -> BGR, Caffe's order by way of "
                             "OpenCV; '' to keep RGB")
    parser.add_argument("--ext", default="jpg",
                        help="image file extension to take as input when a "
                             "directory is given (default jpg)")


def _int_list(text, flag, count=None):
    from ..core.errors import KaffeConfigError
    try:
        values = [int(s) for s in text.split(",")]
    except ValueError:
        values = None
    if values is None or (count is not None and len(values) != count):
        raise KaffeConfigError(
            "must be comma-separated integers", field=flag, received=text,
            expected=f"{count} values" if count else None)
    return values


def _existing(path, flag, default):
    """``path`` if it exists, else a KaffeError naming the flag."""
    from ..core.errors import KaffeConfigError
    if os.path.exists(path):
        return path
    if path == default:
        raise KaffeConfigError(
            f"file '{path}' not found: it is the default, Caffe's example "
            f"path relative to a Caffe checkout", field=flag,
            fix=f"pass {flag} PATH" + (" (or --mean_file '' for no mean)"
                                       if flag == "--mean_file" else ""))
    raise KaffeConfigError(f"file '{path}' not found", field=flag,
                           fix=f"check the {flag} path")


def load_mean(path):
    """A mean image from a .npy, or from a .binaryproto (BlobProto, as
    compute_image_mean writes: 1×C×H×W → C×H×W)."""
    import numpy as np

    from ..core.errors import KaffeFormatError
    from ..io import blobproto_to_array
    from ..proto.io import read_blobproto
    if path.endswith(".binaryproto"):
        mean = blobproto_to_array(read_blobproto(path))
        if mean.ndim == 4 and mean.shape[0] == 1:
            mean = mean[0]
        return mean
    try:
        return np.load(path)
    except ValueError as e:
        raise KaffeFormatError(
            f"'{path}' is not a .npy array ({e})",
            fix="pass a .npy or .binaryproto mean") from None


def load_inputs(input_file, ext):
    """pycaffe's loading: a .npy of images, a folder's *.ext files (sorted),
    or one image."""
    from ..io import load_image
    sources = list_inputs(input_file, ext)
    if isinstance(sources, list):
        return [load_image(f) for f in sources]
    return sources


def list_inputs(input_file, ext):
    """The inputs before loading: the .npy's array, or the image paths (a
    folder's *.ext files, sorted, or the one image)."""
    import numpy as np

    from ..core.errors import KaffeConfigError
    input_file = os.path.expanduser(input_file)
    if input_file.endswith("npy"):
        log.info("Loading file: %s", input_file)
        return np.load(input_file)
    if os.path.isdir(input_file):
        log.info("Loading folder: %s", input_file)
        files = sorted(glob.glob(os.path.join(glob.escape(input_file),
                                              "*." + ext)))
        if not files:
            raise KaffeConfigError(
                f"folder '{input_file}' has no *.{ext} images",
                fix="pass --ext with the images' extension (e.g. --ext png)")
        return files
    log.info("Loading file: %s", input_file)
    return [input_file]


def predict_sharded(classifier, sources, oversample, comm):
    """Worker 0: the predictions of every input, in order (None on the
    others). Inputs go out in blocks whose crops fill whole net batches, so
    each batch is the one a single worker would run."""
    import math

    import numpy as np

    from ..io import load_image
    from ..parallel.inference import blocks_of
    crops = 10 if oversample else 1
    batch = classifier.blobs[classifier.inputs[0]].shape[0]
    block = batch // math.gcd(batch, crops)
    mine = blocks_of(len(sources), block, comm)
    items = [i for _, indices in mine for i in indices]
    if isinstance(sources, list):
        images = [load_image(sources[i]) for i in items]
    else:
        images = sources[items]
    log.info("Classifying %d of the %d inputs on this worker.", len(items),
             len(sources))
    parts = {}
    if items:
        predictions = classifier.predict(images, oversample)
        start = 0
        for b, indices in mine:
            parts[b] = predictions[start:start + len(indices)]
            start += len(indices)
    gathered = comm.gather_object(parts, 0, "gathering the predictions")
    if comm.rank != 0:
        return None
    merged = {}
    for part in gathered:
        merged.update(part)
    return np.concatenate([merged[b] for b in sorted(merged)])


def run(args):
    import numpy as np

    from ..classifier import Classifier
    from ..core.errors import KaffeConfigError
    if args.gpu:
        raise KaffeConfigError(
            "asks for GPU mode, which kaffe does not have (it runs on the "
            "CPU with NumPy)", field="--gpu", fix="leave out --gpu")
    log.info("CPU mode")
    image_dims = _int_list(args.images_dim, "--images_dim", 2)
    channel_swap = (_int_list(args.channel_swap, "--channel_swap")
                    if args.channel_swap else None)
    mean = None
    if args.mean_file:
        mean = load_mean(_existing(args.mean_file, "--mean_file",
                                   DEFAULT_MEAN_FILE))
    model_def = _existing(args.model_def, "--model_def", DEFAULT_MODEL_DEF)
    pretrained = _existing(args.pretrained_model, "--pretrained_model",
                           DEFAULT_PRETRAINED)
    classifier = Classifier(model_def, pretrained, image_dims=image_dims,
                            mean=mean, input_scale=args.input_scale,
                            raw_scale=args.raw_scale,
                            channel_swap=channel_swap)
    from ..parallel.inference import start_sharded_inference
    comm = start_sharded_inference()
    start = time.time()
    if comm is None:
        inputs = load_inputs(args.input_file, args.ext)
        log.info("Classifying %d inputs.", len(inputs))
        predictions = classifier.predict(inputs, not args.center_only)
    else:
        sources = list_inputs(args.input_file, args.ext)
        log.info("Classifying %d inputs with %d workers.", len(sources),
                 comm.size)
        predictions = predict_sharded(classifier, sources,
                                      not args.center_only, comm)
        if predictions is None:          # workers other than 0 save nothing
            return 0
    log.info("Done in %.2f s.", time.time() - start)
    log.info("Saving results into %s", args.output_file)
    np.save(args.output_file, predictions)
    return 0
