"""Acceptance: a pycaffe-era script, written without looking at kaffe, runs
unchanged with ``import kaffe as caffe``.

The script (SCRIPT below) does what pycaffe users did, in the idioms of
Caffe's notebooks and examples/pycaffe: an LMDB of Datums written with the
``lmdb`` package and ``caffe.io.array_to_datum``; a mean.binaryproto through
``array_to_blobproto``/``blobproto_to_array``; train/test/deploy nets from
NetSpec; a NesterovSolver stepped from Python, snapshotted and restored; the
deploy net opened with both Net signatures; an image from
``caffe.io.load_image`` through a Transformer; forward/backward with
keyword arguments, ``start=``/``end=``; a reshape; net surgery, save and
reload; Python layers (pyloss.py's EuclideanLossLayer, a layer configured by
param_str); a python_param naming a function, refused; and a Classifier.

It runs in a fresh interpreter (a subprocess) from a scratch directory that
also holds the user's layer module (pylayers.py) and a PNG. The script checks
what a user would check itself (``assert``); this test checks its exit status
and its printed results against values computed here, independently.
"""
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

pytest.importorskip("lmdb", reason="the script writes an LMDB (kaffe[data])")
Image = pytest.importorskip("PIL.Image",
                            reason="the script loads a PNG (Pillow)")

# The user's layer module, beside the script (pycaffe imports it by name).
PYLAYERS = '''
import json

import numpy as np
import kaffe as caffe

CALLED = []


class EuclideanLossLayer(caffe.Layer):
    """examples/pycaffe/layers/pyloss.py: the Euclidean loss in Python."""

    def setup(self, bottom, top):
        # check input pair
        if len(bottom) != 2:
            raise Exception("Need two inputs to compute distance.")

    def reshape(self, bottom, top):
        # check input dimensions match
        if bottom[0].count != bottom[1].count:
            raise Exception("Inputs must have the same dimension.")
        # difference is shape of inputs
        self.diff = np.zeros_like(bottom[0].data, dtype=np.float32)
        # loss output is scalar
        top[0].reshape(1)

    def forward(self, bottom, top):
        self.diff[...] = bottom[0].data - bottom[1].data
        top[0].data[...] = np.sum(self.diff**2) / bottom[0].num / 2.

    def backward(self, top, propagate_down, bottom):
        for i in range(2):
            if not propagate_down[i]:
                continue
            if i == 0:
                sign = 1
            else:
                sign = -1
            bottom[i].diff[...] = sign * self.diff / bottom[i].num


class ScaleLayer(caffe.Layer):
    """Multiplies by param_str's "scale"; counts its setups."""

    def setup(self, bottom, top):
        params = json.loads(self.param_str)
        self.scale = float(params["scale"])
        CALLED.append("setup")

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        top[0].data[...] = self.scale * bottom[0].data

    def backward(self, top, propagate_down, bottom):
        bottom[0].diff[...] = self.scale * top[0].diff


def make_layer(*args, **kwargs):
    """Not a Layer: a prototxt must not be able to call this."""
    CALLED.append("make_layer")
    open("make_layer_was_called", "w").close()
'''

SCRIPT = r'''
# A pycaffe-era script: toy colour classification, trained and deployed.
import json
import os
import sys

import lmdb
import numpy as np

import kaffe as caffe
from kaffe import layers as L, params as P

image_file = sys.argv[1]
caffe.set_mode_cpu()
caffe.set_random_seed(1701)
rng = np.random.RandomState(0)

# --- the data: 3x16x16 BGR images whose brightest channel is the class ------
N = 48
images = rng.randint(0, 90, size=(N, 3, 16, 16)).astype(np.uint8)
labels = np.arange(N) % 3
for i in range(N):
    images[i, labels[i]] += 150
with lmdb.open('toy_train_lmdb', map_size=1 << 26) as env:
    with env.begin(write=True) as txn:
        for i in range(N):
            datum = caffe.io.array_to_datum(images[i], int(labels[i]))
            txn.put('{:08}'.format(i).encode('ascii'),
                    datum.SerializeToString())
# check the datum round trip
datum = caffe.proto.caffe_pb2.Datum()
with lmdb.open('toy_train_lmdb', readonly=True) as env:
    with env.begin() as txn:
        datum.ParseFromString(txn.get(b'00000005'))
assert datum.label == 2, datum.label
assert (caffe.io.datum_to_array(datum) == images[5]).all()
fdatum = caffe.io.array_to_datum(images[5].astype(np.float32) / 255.)
assert np.allclose(caffe.io.datum_to_array(fdatum), images[5] / 255.)
print('datum round trip ok')

# --- the mean image, as compute_image_mean writes it -------------------------
blob = caffe.io.array_to_blobproto(images.mean(0)[np.newaxis])
with open('mean.binaryproto', 'wb') as f:
    f.write(blob.SerializeToString())
blob = caffe.proto.caffe_pb2.BlobProto()
blob.ParseFromString(open('mean.binaryproto', 'rb').read())
mean_image = caffe.io.blobproto_to_array(blob)[0]
assert mean_image.shape == (3, 16, 16)
assert np.allclose(mean_image, images.mean(0))
mean_pixel = mean_image.mean(1).mean(1)
print('mean pixel (BGR):', ' '.join('%.4f' % v for v in mean_pixel))

# --- the nets ------------------------------------------------------------------
def toynet(lmdb_path=None, batch_size=N, deploy=False):
    n = caffe.NetSpec()
    if deploy:
        n.data = L.Input(shape=dict(dim=[1, 3, 16, 16]))
    else:
        n.data, n.label = L.Data(
            source=lmdb_path, backend=P.Data.LMDB, batch_size=batch_size,
            ntop=2, transform_param=dict(mean_file='mean.binaryproto',
                                         scale=1. / 255))
    n.conv1 = L.Convolution(n.data, kernel_size=3, num_output=8,
                            weight_filler=dict(type='xavier'))
    n.relu1 = L.ReLU(n.conv1, in_place=True)
    n.pool1 = L.Pooling(n.relu1, kernel_size=2, stride=2,
                        pool=P.Pooling.MAX)
    n.fc = L.InnerProduct(n.pool1, num_output=3,
                          weight_filler=dict(type='xavier'))
    if deploy:
        n.prob = L.Softmax(n.fc)
    else:
        n.loss = L.SoftmaxWithLoss(n.fc, n.label)
        n.accuracy = L.Accuracy(n.fc, n.label)
    return n.to_proto()

with open('train.prototxt', 'w') as f:
    f.write(str(toynet('toy_train_lmdb')))
with open('test.prototxt', 'w') as f:
    f.write(str(toynet('toy_train_lmdb', batch_size=16)))
deploy = toynet(deploy=True)
deploy.force_backward = True
with open('deploy.prototxt', 'w') as f:
    f.write(str(deploy))

# --- solving: Nesterov, snapshot, restore --------------------------------------
with open('solver.prototxt', 'w') as f:
    f.write("""train_net: "train.prototxt"
test_net: "test.prototxt"
test_iter: 3
test_interval: 1000
test_initialization: false
base_lr: 0.01
momentum: 0.9
weight_decay: 0.0005
lr_policy: "fixed"
display: 0
max_iter: 60
snapshot: 0
snapshot_prefix: "snapshots/toy"
type: "Nesterov"
random_seed: 3
""")
os.mkdir('snapshots')
solver = caffe.NesterovSolver('solver.prototxt')
print('train blobs:', [(k, v.data.shape) for k, v in solver.net.blobs.items()])
solver.step(1)
first_loss = float(solver.net.blobs['loss'].data)
solver.step(9)
solver.snapshot()
assert os.path.exists('snapshots/toy_iter_10.caffemodel')
assert os.path.exists('snapshots/toy_iter_10.solverstate')
solver.step(10)
weights_20 = {k: [b.data.copy() for b in v]
              for k, v in solver.net.params.items()}

resumed = caffe.NesterovSolver('solver.prototxt')
resumed.restore('snapshots/toy_iter_10.solverstate')
assert resumed.iter == 10, resumed.iter
resumed.step(10)
assert resumed.iter == 20
for k, v in resumed.net.params.items():
    for i, b in enumerate(v):
        assert np.allclose(b.data, weights_20[k][i], rtol=1e-5, atol=1e-6), k
print('restore resumes the same trajectory')

solver.solve()   # on to max_iter
assert solver.iter == 60
last_loss = float(solver.net.blobs['loss'].data)
test_net = solver.test_nets[0]
# Caffe shares the trained weights with a test net when it tests; this
# solver never tested (test_initialization: false), so share them by hand.
test_net.share_with(solver.net)
assert (test_net.params['fc'][0].data == solver.net.params['fc'][0].data).all()
accuracy = np.mean([test_net.forward()['accuracy'] for _ in range(3)])
print('loss %.6f -> %.6f, test accuracy %.3f' % (first_loss, last_loss,
                                                 accuracy))
solver.net.save('toy.caffemodel')

# --- deploy: both constructors ------------------------------------------------
net = caffe.Net('deploy.prototxt', caffe.TEST, weights='toy.caffemodel')
legacy = caffe.Net('deploy.prototxt', 'toy.caffemodel', caffe.TEST)
for name in net.params:
    for a, b in zip(net.params[name], legacy.params[name]):
        assert (a.data == b.data).all()
    for a, b in zip(net.params[name], solver.net.params[name]):
        assert (a.data == b.data).all()
print('deploy inputs/outputs:', net.inputs, net.outputs)

# --- an image through a Transformer ---------------------------------------------
im = caffe.io.load_image(image_file)
print('image:', im.shape, im.dtype.kind, '%.4f %.4f' % (im.min(), im.max()))
transformer = caffe.io.Transformer({'data': net.blobs['data'].data.shape})
transformer.set_transpose('data', (2, 0, 1))
transformer.set_channel_swap('data', (2, 1, 0))  # RGB -> BGR
transformer.set_raw_scale('data', 255)
transformer.set_mean('data', mean_image)
transformer.set_input_scale('data', 1. / 255)
net.blobs['data'].data[...] = transformer.preprocess('data', im)
print('preprocessed[:, 0, 0]:',
      ' '.join('%.5f' % v for v in net.blobs['data'].data[0, :, 0, 0]))
out = net.forward()
print('image class:', out['prob'][0].argmax())
back = transformer.deprocess('data', net.blobs['data'].data[0])
assert np.allclose(back, im, atol=1e-5)

# --- a batch: reshape, forward and backward with keyword arguments -------------
batch = np.stack([transformer.preprocess('data', im)] * 2 + [
    (images[i].astype(np.float32) - mean_image) / 255. for i in (0, 1)])
net.blobs['data'].reshape(*batch.shape)
net.reshape()
out = net.forward(data=batch)
print('batch classes:', ' '.join(str(c) for c in out['prob'].argmax(1)))
fc = net.forward(data=batch, end='fc')
assert list(fc) == ['fc'] and fc['fc'].shape == (4, 3)
assert np.allclose(np.exp(fc['fc']) / np.exp(fc['fc']).sum(1, keepdims=True),
                   out['prob'], atol=1e-5)
onehot = np.zeros_like(out['prob'])
onehot[np.arange(4), out['prob'].argmax(1)] = 1
grads = net.backward(prob=onehot)
assert grads['data'].shape == batch.shape
assert np.abs(grads['data']).sum() > 0
# deepdream's idiom: forward to a layer, then backward from it
net.forward(end='pool1')
net.blobs['pool1'].diff[...] = net.blobs['pool1'].data
net.backward(start='pool1')
assert np.abs(net.blobs['data'].diff).sum() > 0
print('forward/backward with keywords ok')

# --- net surgery, save and reload ----------------------------------------------
net.params['fc'][1].data[...] = [0, 50, 0]   # push everything to class 1
net.save('surgery.caffemodel')
surgery = caffe.Net('deploy.prototxt', caffe.TEST,
                    weights='surgery.caffemodel')
assert (surgery.params['fc'][1].data == [0, 50, 0]).all()
surgery.blobs['data'].data[...] = transformer.preprocess('data', im)
print('after surgery:', surgery.forward()['prob'][0].argmax())

# --- Python layers -----------------------------------------------------------------
def linreg(python_loss):
    n = caffe.NetSpec()
    n.x = L.Input(shape=dict(dim=[10, 3, 2]))
    n.y = L.Input(shape=dict(dim=[10, 3, 2]))
    n.ipx = L.InnerProduct(n.x, num_output=10, weight_filler=dict(type='xavier'))
    n.ipy = L.InnerProduct(n.y, num_output=10, weight_filler=dict(type='xavier'))
    if python_loss:
        n.loss = L.Python(n.ipx, n.ipy, module='pylayers',
                          layer='EuclideanLossLayer', loss_weight=1)
    else:
        n.loss = L.EuclideanLoss(n.ipx, n.ipy)
    return n.to_proto()

with open('linreg_py.prototxt', 'w') as f:
    f.write(str(linreg(True)))
with open('linreg.prototxt', 'w') as f:
    f.write(str(linreg(False)))
py = caffe.Net('linreg_py.prototxt', caffe.TRAIN)
ref = caffe.Net('linreg.prototxt', caffe.TRAIN)
ref.share_with(py)
x, y = rng.randn(10, 3, 2), rng.randn(10, 3, 2)
loss_py = py.forward(x=x, y=y)['loss'].item()
loss_ref = ref.forward(x=x, y=y)['loss'].item()
py.backward()
ref.clear_param_diffs()
ref.backward()
assert abs(loss_py - loss_ref) < 1e-4 * abs(loss_ref), (loss_py, loss_ref)
assert np.allclose(py.params['ipx'][0].diff, ref.params['ipx'][0].diff,
                   atol=1e-5)
print('python loss %.5f matches EuclideanLoss %.5f' % (loss_py, loss_ref))

n = caffe.NetSpec()
n.data = L.Input(shape=dict(dim=[2, 3]))
n.scaled = L.Python(n.data, module='pylayers', layer='ScaleLayer',
                    param_str=json.dumps({'scale': 3.0}))
with open('scale.prototxt', 'w') as f:
    f.write('force_backward: true\n' + str(n.to_proto()))
scale_net = caffe.Net('scale.prototxt', caffe.TEST)
out = scale_net.forward(data=np.arange(6.).reshape(2, 3))
assert (out['scaled'] == 3 * np.arange(6.).reshape(2, 3)).all()
diffs = scale_net.backward(scaled=np.ones((2, 3)))
assert (diffs['data'] == 3).all()
print('param_str layer ok:', scale_net.layers[1].type,
      list(scale_net._layer_names))

with open('bad.prototxt', 'w') as f:
    f.write("""input: 'data' input_shape { dim: 2 dim: 3 }
layer { type: 'Python' name: 'bad' bottom: 'data' top: 'out'
  python_param { module: 'pylayers' layer: 'make_layer' } }""")
try:
    caffe.Net('bad.prototxt', caffe.TEST)
    print('not refused')
except Exception as e:
    print('refused:', type(e).__name__)
import pylayers
assert 'make_layer' not in pylayers.CALLED
assert not os.path.exists('make_layer_was_called')

# --- a Classifier ----------------------------------------------------------------------
clf = caffe.Classifier('deploy.prototxt', 'toy.caffemodel',
                       image_dims=(20, 20), mean=mean_pixel, raw_scale=255,
                       channel_swap=(2, 1, 0), input_scale=1. / 255)
center = clf.predict([im], oversample=False)
crops = clf.predict([im])
assert center.shape == crops.shape == (1, 3)
assert np.allclose(center.sum(1), 1, atol=1e-5)
# by hand: resize, centre crop, preprocess, forward
t = caffe.io.Transformer({'data': (1, 3, 16, 16)})
t.set_transpose('data', (2, 0, 1))
t.set_channel_swap('data', (2, 1, 0))
t.set_raw_scale('data', 255)
t.set_mean('data', mean_pixel)
t.set_input_scale('data', 1. / 255)
crop = caffe.io.resize_image(im, (20, 20))[2:18, 2:18]
by_hand = legacy.forward(data=t.preprocess('data', crop)[np.newaxis])['prob']
assert np.allclose(center, by_hand, atol=1e-5), (center, by_hand)
print('classifier:', center[0].argmax(), crops[0].argmax())
print('done')
'''


def write_png(path):
    """A 16×16 RGB image whose red channel dominates (class 2 in BGR)."""
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 90, size=(16, 16, 3)).astype(np.uint8)
    rgb[..., 0] += 150
    Image.fromarray(rgb).save(path)
    return rgb


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The script's completed process and the PNG's pixels."""
    workdir = tmp_path_factory.mktemp("pycaffe_script")
    (workdir / "pylayers.py").write_text(PYLAYERS)
    (workdir / "script.py").write_text(
        f"import sys; sys.path.insert(1, {str(REPO)!r})\n" + SCRIPT)
    rgb = write_png(workdir / "red.png")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, "script.py", "red.png"],
                          cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=300)
    return proc, rgb


def line(stdout, prefix):
    found = [s for s in stdout.splitlines() if s.startswith(prefix)]
    assert found, f"the script printed no line starting {prefix!r}"
    return found[-1][len(prefix):].strip()


def test_script_runs_unchanged(run):
    proc, _ = run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("done")


def test_data_and_mean(run):
    proc, _ = run
    out = proc.stdout
    assert "datum round trip ok" in out
    # The script's images, rebuilt here: BGR, class = the brightest channel.
    rng = np.random.RandomState(0)
    images = rng.randint(0, 90, size=(48, 3, 16, 16)).astype(np.uint8)
    for i in range(48):
        images[i, i % 3] += 150
    expected = images.mean(0).mean(1).mean(1)
    printed = [float(v) for v in line(out, "mean pixel (BGR):").split()]
    np.testing.assert_allclose(printed, expected, atol=1e-4)


def test_training_snapshot_restore(run):
    proc, _ = run
    out = proc.stdout
    assert "restore resumes the same trajectory" in out
    blobs = line(out, "train blobs:")
    assert "('data', (48, 3, 16, 16))" in blobs and "('label', (48,))" in blobs
    loss0, loss1, acc = map(float, re.fullmatch(
        r"([\d.]+) -> ([\d.]+), test accuracy ([\d.]+)",
        line(out, "loss ")).groups())
    assert loss1 < loss0 and acc >= 0.9


def test_transformer_and_forward_backward(run):
    proc, rgb = run
    out = proc.stdout
    assert line(out, "deploy inputs/outputs:") == "['data'] ['prob']"
    assert line(out, "image:") == "(16, 16, 3) f %.4f %.4f" % (
        rgb.min() / 255, rgb.max() / 255)
    # pixel (0, 0): RGB in [0,1] → BGR → ×255 → −mean image → ×1/255
    rng = np.random.RandomState(0)
    images = rng.randint(0, 90, size=(48, 3, 16, 16)).astype(np.uint8)
    for i in range(48):
        images[i, i % 3] += 150
    mean00 = images.mean(0)[:, 0, 0]
    expected = (rgb[0, 0, ::-1].astype(np.float64) - mean00) / 255
    printed = [float(v) for v in line(out, "preprocessed[:, 0, 0]:").split()]
    np.testing.assert_allclose(printed, expected, atol=2e-5)
    assert line(out, "image class:") == "2"          # red is BGR channel 2
    assert line(out, "batch classes:") == "2 2 0 1"  # images 0, 1: labels 0, 1
    assert "forward/backward with keywords ok" in out
    assert line(out, "after surgery:") == "1"


def test_python_layers(run):
    proc, _ = run
    out = proc.stdout
    assert "python loss" in out and "matches EuclideanLoss" in out
    assert line(out, "param_str layer ok:") == "Python ['data', 'scaled']"
    # refused, with an exception a script can catch as Exception
    refused = line(out, "refused:")
    assert refused and "not refused" not in out


def test_classifier(run):
    proc, _ = run
    assert line(proc.stdout, "classifier:") == "2 2"


def test_script_text_uses_only_pycaffe_names():
    """The script touches kaffe only through pycaffe's names."""
    uses = set(re.findall(r"caffe\.([A-Za-z_][\w.]*)", SCRIPT))
    pycaffe = {
        "set_mode_cpu", "set_random_seed", "io.array_to_datum",
        "proto.caffe_pb2.Datum", "io.datum_to_array",
        "io.array_to_blobproto", "proto.caffe_pb2.BlobProto",
        "io.blobproto_to_array", "NetSpec", "NesterovSolver", "Net", "TEST",
        "TRAIN", "io.load_image", "io.Transformer", "io.resize_image",
        "Classifier", "Layer"}
    assert uses <= pycaffe, uses - pycaffe
    assert textwrap.dedent(SCRIPT).count("import kaffe as caffe") == 1
