"""Every built-in layer, by Caffe's families; importing registers them."""
from .common import (accuracy, concat, eltwise, flatten, inner_product,  # noqa
                     silence, softmax, split)
from .data import dummy_data, input  # noqa: F401
from .loss import euclidean_loss, softmax_loss  # noqa: F401
from .neuron import dropout, relu, sigmoid, tanh  # noqa: F401
from .vision import convolution, lrn, pooling  # noqa: F401
