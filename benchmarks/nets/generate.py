"""Write the deploy prototxts of benchmarks/zoo.py's suite into this folder.

Run ``python benchmarks/nets/generate.py``. Each net follows its published
architecture (layer types, channel counts, kernels, strides, pads):

* lenet.prototxt — Caffe's examples/mnist LeNet (1×28×28).
* pnet.prototxt — MTCNN's P-Net (Zhang et al. 2016; 3×12×12, PReLU).
* alexnet.prototxt — BVLC AlexNet (3×227×227, LRN, grouped conv2/4/5).
* googlenet.prototxt — BVLC GoogLeNet (Szegedy et al. 2014; 3×224×224, nine
  inception modules, LRN).
* vgg16.prototxt — VGG-16 (Simonyan & Zisserman 2014; 3×224×224).
* resnet50.prototxt — ResNet-50 (He et al. 2015; 3×224×224, BatchNorm +
  Scale after each convolution, projection shortcuts with stride 2 on the
  1×1 branch as the authors' Caffe model).
* squeezenet11.prototxt — SqueezeNet 1.1 (3×227×227, fire modules).
* mobilenet_v1.prototxt — MobileNet v1 1.0 (Howard et al. 2017; 3×224×224,
  depthwise 3×3 as Convolution with group = channels, BatchNorm + Scale).
* mobilenet_v2.prototxt — MobileNet v2 1.0 (Sandler et al. 2018;
  3×224×224, inverted residuals, expansion 6; ReLU where the paper has
  ReLU6, as the public Caffe ports do).

None ships weights: zoo.py fills them at random (MSRA/Xavier fillers, and
BatchNorm statistics mean 0, variance 1). open_nsfw and res10 SSD are read
from ../shared with their real weights.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def _filler(filler):
    """A filler's fields: a type name alone, or the fields as written."""
    return filler if " " in filler else f'type: "{filler}"'


class Net:
    """A prototxt written layer by layer."""

    def __init__(self, name, shape):
        self.lines = [f'name: "{name}"',
                      'layer { name: "data" type: "Input" top: "data" '
                      'input_param { shape { '
                      + " ".join(f"dim: {d}" for d in shape) + " } } }"]

    def add(self, name, kind, bottoms, tops=None, body=""):
        tops = [name] if tops is None else tops
        if isinstance(bottoms, str):
            bottoms = [bottoms]
        text = f'layer {{ name: "{name}" type: "{kind}"'
        text += "".join(f' bottom: "{b}"' for b in bottoms)
        text += "".join(f' top: "{t}"' for t in tops)
        if body:
            text += " " + body
        self.lines.append(text + " }")
        return tops[0]

    def conv(self, name, bottom, num, kernel, stride=1, pad=0, group=1,
             bias=True, filler="msra"):
        body = (f"convolution_param {{ num_output: {num} kernel_size: "
                f"{kernel} stride: {stride} pad: {pad}"
                + (f" group: {group}" if group > 1 else "")
                + ("" if bias else " bias_term: false")
                + f" weight_filler {{ {_filler(filler)} }}"
                + (' bias_filler { type: "constant" value: 0.01 }'
                   if bias else "") + " }")
        return self.add(name, "Convolution", bottom, body=body)

    def relu(self, name, blob):
        return self.add(name, "ReLU", blob, [blob])

    def prelu(self, name, blob):
        return self.add(name, "PReLU", blob, [blob])

    def bn_scale(self, name, blob):
        self.add(f"{name}/bn", "BatchNorm", blob, [blob],
                 "batch_norm_param { use_global_stats: true }")
        return self.add(f"{name}/scale", "Scale", blob, [blob],
                        "scale_param { bias_term: true }")

    def pool(self, name, bottom, method, kernel=None, stride=1, pad=0,
             global_pool=False):
        if global_pool:
            body = f"pooling_param {{ pool: {method} global_pooling: true }}"
        else:
            body = (f"pooling_param {{ pool: {method} kernel_size: {kernel} "
                    f"stride: {stride}" + (f" pad: {pad}" if pad else "")
                    + " }")
        return self.add(name, "Pooling", bottom, body=body)

    def lrn(self, name, bottom, size=5, alpha=0.0001, beta=0.75):
        return self.add(name, "LRN", bottom, body=(
            f"lrn_param {{ local_size: {size} alpha: {alpha} beta: {beta} }}"))

    def fc(self, name, bottom, num):
        return self.add(name, "InnerProduct", bottom, body=(
            f"inner_product_param {{ num_output: {num} "
            'weight_filler { type: "xavier" } '
            'bias_filler { type: "constant" value: 0 } }'))

    def concat(self, name, bottoms):
        return self.add(name, "Concat", bottoms)

    def eltwise(self, name, bottoms):
        return self.add(name, "Eltwise", bottoms)

    def softmax(self, name, bottom):
        return self.add(name, "Softmax", bottom)

    def text(self):
        return "\n".join(self.lines) + "\n"


def lenet():
    n = Net("LeNet", (1, 1, 28, 28))
    x = n.conv("conv1", "data", 20, 5, filler="xavier")
    x = n.pool("pool1", x, "MAX", 2, 2)
    x = n.conv("conv2", x, 50, 5, filler="xavier")
    x = n.pool("pool2", x, "MAX", 2, 2)
    x = n.fc("ip1", x, 500)
    n.relu("relu1", x)
    x = n.fc("ip2", x, 10)
    n.softmax("prob", x)
    return n


def pnet():
    n = Net("PNet", (1, 3, 12, 12))
    x = n.conv("conv1", "data", 10, 3, filler="xavier")
    n.prelu("PReLU1", x)
    x = n.pool("pool1", x, "MAX", 2, 2)
    x = n.conv("conv2", x, 16, 3, filler="xavier")
    n.prelu("PReLU2", x)
    x = n.conv("conv3", x, 32, 3, filler="xavier")
    n.prelu("PReLU3", x)
    cls = n.conv("conv4-1", x, 2, 1, filler="xavier")
    n.conv("conv4-2", x, 4, 1, filler="xavier")
    n.softmax("prob1", cls)
    return n


def alexnet():
    n = Net("AlexNet", (1, 3, 227, 227))
    x = n.conv("conv1", "data", 96, 11, 4)
    n.relu("relu1", x)
    x = n.lrn("norm1", x)
    x = n.pool("pool1", x, "MAX", 3, 2)
    x = n.conv("conv2", x, 256, 5, pad=2, group=2)
    n.relu("relu2", x)
    x = n.lrn("norm2", x)
    x = n.pool("pool2", x, "MAX", 3, 2)
    x = n.conv("conv3", x, 384, 3, pad=1)
    n.relu("relu3", x)
    x = n.conv("conv4", x, 384, 3, pad=1, group=2)
    n.relu("relu4", x)
    x = n.conv("conv5", x, 256, 3, pad=1, group=2)
    n.relu("relu5", x)
    x = n.pool("pool5", x, "MAX", 3, 2)
    for i, size in ((6, 4096), (7, 4096)):
        x = n.fc(f"fc{i}", x, size)
        n.relu(f"relu{i}", x)
    x = n.fc("fc8", x, 1000)
    n.softmax("prob", x)
    return n


def _inception(n, name, x, c1, c3r, c3, c5r, c5, pp):
    a = n.conv(f"{name}/1x1", x, c1, 1, filler="xavier")
    n.relu(f"{name}/relu_1x1", a)
    b = n.conv(f"{name}/3x3_reduce", x, c3r, 1, filler="xavier")
    n.relu(f"{name}/relu_3x3_reduce", b)
    b = n.conv(f"{name}/3x3", b, c3, 3, pad=1, filler="xavier")
    n.relu(f"{name}/relu_3x3", b)
    c = n.conv(f"{name}/5x5_reduce", x, c5r, 1, filler="xavier")
    n.relu(f"{name}/relu_5x5_reduce", c)
    c = n.conv(f"{name}/5x5", c, c5, 5, pad=2, filler="xavier")
    n.relu(f"{name}/relu_5x5", c)
    d = n.pool(f"{name}/pool", x, "MAX", 3, 1, pad=1)
    d = n.conv(f"{name}/pool_proj", d, pp, 1, filler="xavier")
    n.relu(f"{name}/relu_pool_proj", d)
    return n.concat(f"{name}/output", [a, b, c, d])


def googlenet():
    n = Net("GoogleNet", (1, 3, 224, 224))
    x = n.conv("conv1/7x7_s2", "data", 64, 7, 2, 3, filler="xavier")
    n.relu("conv1/relu_7x7", x)
    x = n.pool("pool1/3x3_s2", x, "MAX", 3, 2)
    x = n.lrn("pool1/norm1", x)
    x = n.conv("conv2/3x3_reduce", x, 64, 1, filler="xavier")
    n.relu("conv2/relu_3x3_reduce", x)
    x = n.conv("conv2/3x3", x, 192, 3, pad=1, filler="xavier")
    n.relu("conv2/relu_3x3", x)
    x = n.lrn("conv2/norm2", x)
    x = n.pool("pool2/3x3_s2", x, "MAX", 3, 2)
    x = _inception(n, "inception_3a", x, 64, 96, 128, 16, 32, 32)
    x = _inception(n, "inception_3b", x, 128, 128, 192, 32, 96, 64)
    x = n.pool("pool3/3x3_s2", x, "MAX", 3, 2)
    x = _inception(n, "inception_4a", x, 192, 96, 208, 16, 48, 64)
    x = _inception(n, "inception_4b", x, 160, 112, 224, 24, 64, 64)
    x = _inception(n, "inception_4c", x, 128, 128, 256, 24, 64, 64)
    x = _inception(n, "inception_4d", x, 112, 144, 288, 32, 64, 64)
    x = _inception(n, "inception_4e", x, 256, 160, 320, 32, 128, 128)
    x = n.pool("pool4/3x3_s2", x, "MAX", 3, 2)
    x = _inception(n, "inception_5a", x, 256, 160, 320, 32, 128, 128)
    x = _inception(n, "inception_5b", x, 384, 192, 384, 48, 128, 128)
    x = n.pool("pool5/7x7_s1", x, "AVE", 7, 1)
    x = n.fc("loss3/classifier", x, 1000)
    n.softmax("prob", x)
    return n


def vgg16():
    n = Net("VGG_ILSVRC_16_layers", (1, 3, 224, 224))
    x = "data"
    for block, (width, count) in enumerate(
            ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)), 1):
        for i in range(1, count + 1):
            x = n.conv(f"conv{block}_{i}", x, width, 3, pad=1)
            n.relu(f"relu{block}_{i}", x)
        x = n.pool(f"pool{block}", x, "MAX", 2, 2)
    for i in (6, 7):
        x = n.fc(f"fc{i}", x, 4096)
        n.relu(f"relu{i}", x)
    x = n.fc("fc8", x, 1000)
    n.softmax("prob", x)
    return n


def resnet50():
    n = Net("ResNet-50", (1, 3, 224, 224))
    x = n.conv("conv1", "data", 64, 7, 2, 3)
    n.bn_scale("conv1", x)
    n.relu("conv1_relu", x)
    x = n.pool("pool1", x, "MAX", 3, 2)
    stages = ((2, 64, 3, 1), (3, 128, 4, 2), (4, 256, 6, 2), (5, 512, 3, 2))
    for stage, width, blocks, stride in stages:
        for i in range(blocks):
            name = f"res{stage}{chr(ord('a') + i)}"
            s = stride if i == 0 else 1
            if i == 0:
                short = n.conv(f"{name}_branch1", x, 4 * width, 1, s,
                               bias=False)
                n.bn_scale(f"{name}_branch1", short)
            else:
                short = x
            y = n.conv(f"{name}_branch2a", x, width, 1, s, bias=False)
            n.bn_scale(f"{name}_branch2a", y)
            n.relu(f"{name}_branch2a_relu", y)
            y = n.conv(f"{name}_branch2b", y, width, 3, 1, 1, bias=False)
            n.bn_scale(f"{name}_branch2b", y)
            n.relu(f"{name}_branch2b_relu", y)
            y = n.conv(f"{name}_branch2c", y, 4 * width, 1, bias=False)
            n.bn_scale(f"{name}_branch2c", y)
            x = n.eltwise(name, [short, y])
            n.relu(f"{name}_relu", x)
    x = n.pool("pool5", x, "AVE", 7, 1)
    x = n.fc("fc1000", x, 1000)
    n.softmax("prob", x)
    return n


def squeezenet11():
    n = Net("SqueezeNet1.1", (1, 3, 227, 227))
    x = n.conv("conv1", "data", 64, 3, 2, filler="xavier")
    n.relu("relu_conv1", x)
    x = n.pool("pool1", x, "MAX", 3, 2)

    def fire(name, x, squeeze, expand):
        s = n.conv(f"{name}/squeeze1x1", x, squeeze, 1, filler="xavier")
        n.relu(f"{name}/relu_squeeze1x1", s)
        a = n.conv(f"{name}/expand1x1", s, expand, 1, filler="xavier")
        n.relu(f"{name}/relu_expand1x1", a)
        b = n.conv(f"{name}/expand3x3", s, expand, 3, pad=1,
                   filler="xavier")
        n.relu(f"{name}/relu_expand3x3", b)
        return n.concat(f"{name}/concat", [a, b])

    x = fire("fire2", x, 16, 64)
    x = fire("fire3", x, 16, 64)
    x = n.pool("pool3", x, "MAX", 3, 2)
    x = fire("fire4", x, 32, 128)
    x = fire("fire5", x, 32, 128)
    x = n.pool("pool5", x, "MAX", 3, 2)
    x = fire("fire6", x, 48, 192)
    x = fire("fire7", x, 48, 192)
    x = fire("fire8", x, 64, 256)
    x = fire("fire9", x, 64, 256)
    x = n.conv("conv10", x, 1000, 1, filler="xavier")
    n.relu("relu_conv10", x)
    x = n.pool("pool10", x, "AVE", global_pool=True)
    n.softmax("prob", x)
    return n


def mobilenet_v1():
    n = Net("MobileNet", (1, 3, 224, 224))
    x = n.conv("conv1", "data", 32, 3, 2, 1, bias=False)
    n.bn_scale("conv1", x)
    n.relu("relu1", x)
    channels = 32
    plan = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
            (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2),
            (1024, 1))
    for i, (width, stride) in enumerate(plan, 2):
        x = n.conv(f"conv{i}_1/dw", x, channels, 3, stride, 1,
                   group=channels, bias=False)
        n.bn_scale(f"conv{i}_1/dw", x)
        n.relu(f"relu{i}_1/dw", x)
        x = n.conv(f"conv{i}_2/sep", x, width, 1, bias=False)
        n.bn_scale(f"conv{i}_2/sep", x)
        n.relu(f"relu{i}_2/sep", x)
        channels = width
    x = n.pool("pool6", x, "AVE", global_pool=True)
    x = n.conv("fc7", x, 1000, 1)
    n.softmax("prob", x)
    return n


def mobilenet_v2():
    n = Net("MobileNetV2", (1, 3, 224, 224))
    x = n.conv("conv1", "data", 32, 3, 2, 1, bias=False)
    n.bn_scale("conv1", x)
    n.relu("relu1", x)
    channels = 32
    # (expansion t, output channels c, repeats n, first stride s)
    plan = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
            (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
    block = 0
    for t, c, repeats, first_stride in plan:
        for r in range(repeats):
            block += 1
            name = f"block{block}"
            stride = first_stride if r == 0 else 1
            y = x
            hidden = channels * t
            if t != 1:
                y = n.conv(f"{name}/expand", y, hidden, 1, bias=False)
                n.bn_scale(f"{name}/expand", y)
                n.relu(f"{name}/expand_relu", y)
            y = n.conv(f"{name}/dwise", y, hidden, 3, stride, 1,
                       group=hidden, bias=False)
            n.bn_scale(f"{name}/dwise", y)
            n.relu(f"{name}/dwise_relu", y)
            y = n.conv(f"{name}/linear", y, c, 1, bias=False)
            n.bn_scale(f"{name}/linear", y)
            if stride == 1 and channels == c:
                y = n.eltwise(f"{name}/add", [x, y])
            x = y
            channels = c
    x = n.conv("conv_last", x, 1280, 1, bias=False)
    n.bn_scale("conv_last", x)
    n.relu("relu_last", x)
    x = n.pool("pool_last", x, "AVE", global_pool=True)
    x = n.conv("fc", x, 1000, 1)
    n.softmax("prob", x)
    return n


NETS = {"lenet": lenet, "pnet": pnet, "alexnet": alexnet,
        "googlenet": googlenet, "vgg16": vgg16, "resnet50": resnet50,
        "squeezenet11": squeezenet11, "mobilenet_v1": mobilenet_v1,
        "mobilenet_v2": mobilenet_v2}


def main():
    for name, make in NETS.items():
        path = os.path.join(HERE, f"{name}.prototxt")
        with open(path, "w") as f:
            f.write(make().text())
        print(path)


if __name__ == "__main__":
    main()
