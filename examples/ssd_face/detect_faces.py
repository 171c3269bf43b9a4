#!/usr/bin/env python
"""Find the faces in a photo with OpenCV's ResNet-10 SSD face detector.

A Caffe model from the SSD fork (weiliu89/caffe): PriorBox, Permute,
Normalize and DetectionOutput layers, which kaffe runs as the fork does.
Written the way a pycaffe user writes it, with ``import kaffe as caffe`` in
place of ``import caffe``:

1. load the deploy prototxt and the trained weights;
2. preprocess as the model was trained: 300×300, BGR, 0–255, minus the
   per-channel mean (104, 177, 123);
3. forward; the output is DetectionOutput's (1, 1, N, 7) rows
   [image, label, score, xmin, ymin, xmax, ymax], coordinates in [0, 1];
4. keep the rows above the threshold, scale them to the photo's pixels,
   print them and draw them (needs Pillow).

Run it from the repository root::

    python examples/ssd_face/detect_faces.py                     # faces.jpg
    python examples/ssd_face/detect_faces.py my.jpg -o my_boxes.jpg

The same in one line: ``kaffe detect deploy.prototxt weights.caffemodel
photo.jpg --mean 104,177,123 -o boxes.jpg``.
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))   # this checkout
import kaffe as caffe  # noqa: E402

SHARED = os.path.join(HERE, "..", "..", "..", "shared")
MODEL = os.path.join(SHARED, "models", "res10_ssd")
DEPLOY = os.path.join(MODEL, "deploy.prototxt")
WEIGHTS = os.path.join(MODEL, "res10_300x300_ssd_iter_140000.caffemodel")
PHOTO = os.path.join(SHARED, "data", "images", "faces.jpg")
MEAN_BGR = np.array([104.0, 177.0, 123.0])


def load_net(deploy=DEPLOY, weights=WEIGHTS):
    return caffe.Net(deploy, caffe.TEST, weights=weights)


def preprocess(net, image):
    """An RGB [0, 1] photo (caffe.io.load_image) → the net's input blob."""
    transformer = caffe.io.Transformer({"data": net.blobs["data"].data.shape})
    transformer.set_transpose("data", (2, 0, 1))       # H×W×C → C×H×W
    transformer.set_channel_swap("data", (2, 1, 0))    # RGB → BGR
    transformer.set_raw_scale("data", 255)             # [0, 1] → [0, 255]
    transformer.set_mean("data", MEAN_BGR)
    return transformer.preprocess("data", image)       # resizes to 300×300


def detect(net, image, threshold=0.5):
    """[(score, xmin, ymin, xmax, ymax)] in pixels, best first."""
    net.blobs["data"].data[...] = preprocess(net, image)
    rows = net.forward()["detection_out"][0, 0]
    height, width = image.shape[:2]
    faces = []
    for _, label, score, x1, y1, x2, y2 in rows:
        if label == 1 and score > threshold:
            faces.append((float(score), x1 * width, y1 * height,
                          x2 * width, y2 * height))
    return sorted(faces, reverse=True)


def draw(image, faces, path):
    from PIL import Image, ImageDraw
    picture = Image.fromarray((image * 255 + 0.5).astype(np.uint8))
    pen = ImageDraw.Draw(picture)
    for score, x1, y1, x2, y2 in faces:
        pen.rectangle([x1, y1, x2, y2], outline=(0, 255, 0), width=4)
        pen.text((x1 + 4, max(0, y1 - 12)), f"{score:.2f}", fill=(0, 255, 0))
    picture.save(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo", nargs="?", default=PHOTO)
    parser.add_argument("-o", "--output",
                        default=os.path.join(HERE, "faces_boxes.jpg"))
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args(argv)
    net = load_net()
    image = caffe.io.load_image(args.photo)
    faces = detect(net, image, args.threshold)
    for score, x1, y1, x2, y2 in faces:
        print(f"face {score:.3f} at ({x1:.0f}, {y1:.0f}) - ({x2:.0f}, {y2:.0f})")
    draw(image, faces, args.output)
    print(f"{len(faces)} face(s); wrote {args.output}")
    return faces


if __name__ == "__main__":
    main()
