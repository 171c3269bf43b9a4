"""``kaffe detect``: run an SSD-style detector (a net ending in the SSD
fork's DetectionOutput) on an image, print the detections and optionally
write the image with their boxes.

The image goes through Caffe's preprocessing for such nets: resized to the
net's input size, BGR, 0–255, minus a per-channel mean (OpenCV's res10 face
detector: 300×300, mean 104,177,123). Detections above ``--threshold`` are
printed one per line as ``label score xmin ymin xmax ymax`` in image pixels.
"""
import logging
import os

HELP = "detect objects with an SSD-style net (DetectionOutput) in an image"
DESCRIPTION = """\
Run a detector whose last layer is the SSD fork's DetectionOutput (SSD,
MobileNet-SSD, OpenCV's res10 face detector, ...) on one image. The image is
resized to the net's input size, put in BGR 0-255 order and the per-channel
--mean is subtracted, as Caffe's preprocessing for these nets does. Each
detection above --threshold is printed as 'label score xmin ymin xmax ymax'
(pixels of the original image); with -o the image is written with the
boxes drawn (needs Pillow)."""
EPILOG = """\
example (OpenCV's face detector):
  kaffe detect deploy.prototxt res10_300x300_ssd_iter_140000.caffemodel \\
      faces.jpg --mean 104,177,123 --labels background,face -o boxes.jpg"""

log = logging.getLogger("kaffe")
# Quiet by default: the detections are the output (-v shows the log).
LOG_LEVEL = logging.WARNING


def add_arguments(parser):
    parser.add_argument("model", help="deploy prototxt")
    parser.add_argument("weights", help="trained .caffemodel")
    parser.add_argument("image", help="image file (JPEG, PNG, ...)")
    parser.add_argument("-o", "--output", metavar="OUT.jpg",
                        help="write the image with the boxes drawn here")
    parser.add_argument("--mean", default="104,117,123", metavar="B,G,R",
                        help="per-channel mean to subtract, BGR order "
                             "(default 104,117,123; res10: 104,177,123)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply the input by this after the mean "
                             "(MobileNet-SSD: 0.007843; default 1)")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="print/draw detections scoring above this "
                             "(default 0.5)")
    parser.add_argument("--labels", metavar="NAMES|labelmap.prototxt",
                        help="class names: comma-separated in label order, "
                             "or SSD's labelmap prototxt")
    parser.add_argument("--output-blob", default=None,
                        help="the DetectionOutput top (default: the net's "
                             "first output)")


def parse_mean(text):
    from ..core.errors import KaffeConfigError
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in (1, 3):
        raise KaffeConfigError("must be one value or three (B,G,R)",
                               field="--mean", received=text)
    return values * 3 if len(values) == 1 else values


def label_names(spec):
    """{label: name} from 'a,b,c' or an SSD labelmap prototxt."""
    if not spec:
        return {}
    if os.path.isfile(spec):
        from ..proto import caffe_pb2
        from ..proto.io import read_text
        labelmap = read_text(spec, caffe_pb2.LabelMap)
        return {item.label: item.display_name or item.name
                for item in labelmap.item}
    return dict(enumerate(spec.split(",")))


def preprocess(image, input_shape, mean, scale):
    """An RGB [0, 1] H×W×3 image → the (1, 3, h, w) BGR 0–255 input."""
    from ..io import Transformer
    transformer = Transformer({"data": input_shape})
    transformer.set_transpose("data", (2, 0, 1))
    transformer.set_channel_swap("data", (2, 1, 0))
    transformer.set_raw_scale("data", 255)
    import numpy as np
    transformer.set_mean("data", np.array(mean, dtype=np.float32))
    if scale != 1:
        transformer.set_input_scale("data", scale)
    return transformer.preprocess("data", image)[None]


def detections_in_pixels(rows, width, height, threshold):
    """[(label, score, xmin, ymin, xmax, ymax)] above ``threshold`` from
    DetectionOutput's [image, label, score, xmin, ymin, xmax, ymax] rows."""
    found = []
    for _, label, score, x1, y1, x2, y2 in rows.reshape(-1, 7):
        if label < 0 or not score > threshold:
            continue
        found.append((int(label), float(score), float(x1) * width,
                      float(y1) * height, float(x2) * width,
                      float(y2) * height))
    return found


def image_format(path):
    """Pillow's format name for ``path``'s extension (checked up front)."""
    from ..core.errors import KaffeConfigError
    try:
        from PIL import Image
    except ImportError:
        raise KaffeConfigError(
            "needs Pillow to write the image", field="--output",
            fix="pip install 'kaffe[data]' (or Pillow)") from None
    fmt = Image.registered_extensions().get(os.path.splitext(path)[1].lower())
    if fmt is None:
        raise KaffeConfigError("has an image extension Pillow cannot write",
                               field="--output", received=path,
                               fix="use .jpg or .png")
    return fmt


def draw_boxes(path, image, detections, names):
    """Write ``image`` (RGB [0, 1]) with the detections' boxes to ``path``."""
    fmt = image_format(path)
    import numpy as np
    from PIL import Image, ImageDraw

    from ..proto.io import atomic_path
    picture = Image.fromarray(
        (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8))
    pen = ImageDraw.Draw(picture)
    width = max(2, round(max(picture.size) / 300))
    for label, score, x1, y1, x2, y2 in detections:
        pen.rectangle([x1, y1, x2, y2], outline=(0, 255, 0), width=width)
        text = f"{names.get(label, label)} {score:.2f}"
        pen.text((x1 + width, max(0, y1 - 12)), text, fill=(0, 255, 0))
    with atomic_path(path) as tmp:
        picture.save(tmp, format=fmt)


def run(args):
    from ..core.errors import KaffeConfigError
    from ..core.net import TEST, Net
    from ..io import load_image
    mean = parse_mean(args.mean)
    names = label_names(args.labels)
    if args.output:
        image_format(args.output)
    net = Net(args.model, TEST, weights=args.weights)
    image_input = net.inputs[0]
    blob = args.output_blob or net.outputs[0]
    if blob not in net.blobs:
        raise KaffeConfigError("names no blob of the net",
                               field="--output-blob", received=blob,
                               expected=", ".join(net.outputs))
    image = load_image(args.image)
    net.blobs[image_input].data[...] = preprocess(
        image, net.blobs[image_input].shape, mean, args.scale)
    net.forward()
    rows = net.blobs[blob].data
    if rows.ndim != 4 or rows.shape[-1] != 7:
        raise KaffeConfigError(
            "is not a DetectionOutput result (rows of 7 values)",
            field="--output-blob", received=f"{blob}, shape {rows.shape}")
    height, width = image.shape[:2]
    found = detections_in_pixels(rows, width, height, args.threshold)
    for label, score, x1, y1, x2, y2 in found:
        print(f"{names.get(label, label)} {score:.4f} {x1:.1f} {y1:.1f} "
              f"{x2:.1f} {y2:.1f}")
    log.info("%d detection(s) above %g", len(found), args.threshold)
    if args.output:
        draw_boxes(args.output, image, found, names)
        log.info("Wrote %s", args.output)
    return 0
