"""Format upgrades: V0 → V1 → current nets, data fields, inputs, BatchNorm, solvers.

Expected results follow Caffe's UpgradeNetAsNeeded / UpgradeSolverAsNeeded
(src/caffe/util/upgrade_proto.cpp) and the cases of its
test_upgrade_proto.cpp, re-expressed as small nets of our own.
"""
import logging
import os

import numpy as np
import pytest
from google.protobuf import text_format

from kaffe.core.errors import KaffeFormatError
from kaffe.proto import caffe_pb2
from kaffe.proto.upgrade import (
    V1_PARAM_MESSAGES, net_needs_batchnorm_upgrade, net_needs_data_upgrade,
    net_needs_input_upgrade, net_needs_upgrade, net_needs_v0_to_v1_upgrade,
    net_needs_v1_to_v2_upgrade, upgrade_net_as_needed, upgrade_net_batchnorm,
    upgrade_net_data_transformation, upgrade_net_input, upgrade_snapshot_prefix,
    upgrade_solver_as_needed, upgrade_solver_type, upgrade_v0_net,
    upgrade_v0_padding_layers, upgrade_v1_net, v1_layer_type_name)

V1 = caffe_pb2.V1LayerParameter


def net(text):
    return text_format.Parse(text, caffe_pb2.NetParameter())


def solver(text):
    return text_format.Parse(text, caffe_pb2.SolverParameter())


def assert_same(actual, expected_text):
    expected = text_format.Parse(expected_text, type(actual)())
    assert actual == expected, (
        "upgraded:\n" + text_format.MessageToString(actual)
        + "\nexpected:\n" + text_format.MessageToString(expected))


# -- V0 → current ------------------------------------------------------------------
V0_TINY_ALEX = """
name: "TinyAlex"
layers { layer { name: "data" type: "data" source: "train_lmdb"
                 meanfile: "mean.binaryproto" batchsize: 32 cropsize: 27
                 mirror: true }
         top: "data" top: "label" }
layers { layer { name: "conv1" type: "conv" num_output: 8 kernelsize: 5
                 stride: 2 weight_filler { type: "gaussian" std: 0.01 }
                 bias_filler { type: "constant" value: 0 }
                 blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0 }
         bottom: "data" top: "conv1" }
layers { layer { name: "relu1" type: "relu" } bottom: "conv1" top: "conv1" }
layers { layer { name: "pool1" type: "pool" pool: MAX kernelsize: 3 stride: 2 }
         bottom: "conv1" top: "pool1" }
layers { layer { name: "norm1" type: "lrn" local_size: 5 alpha: 0.0001
                 beta: 0.75 }
         bottom: "pool1" top: "norm1" }
layers { layer { name: "pad2" type: "padding" pad: 2 }
         bottom: "norm1" top: "pad2" }
layers { layer { name: "conv2" type: "conv" num_output: 16 group: 2
                 kernelsize: 5 weight_filler { type: "gaussian" std: 0.01 }
                 bias_filler { type: "constant" value: 1 }
                 blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0 }
         bottom: "pad2" top: "conv2" }
layers { layer { name: "relu2" type: "relu" } bottom: "conv2" top: "conv2" }
layers { layer { name: "pad_pool2" type: "padding" pad: 1 }
         bottom: "conv2" top: "conv2_padded" }
layers { layer { name: "pool2" type: "pool" pool: AVE kernelsize: 3 stride: 2 }
         bottom: "conv2_padded" top: "pool2" }
layers { layer { name: "fc3" type: "innerproduct" num_output: 10
                 biasterm: false weight_filler { type: "xavier" }
                 blobs_lr: 1 weight_decay: 1 }
         bottom: "pool2" top: "fc3" }
layers { layer { name: "drop3" type: "dropout" dropout_ratio: 0.4 }
         bottom: "fc3" top: "fc3" }
layers { layer { name: "loss" type: "softmax_loss" }
         bottom: "fc3" bottom: "label" }
"""

TINY_ALEX_CURRENT = """
name: "TinyAlex"
layer { name: "data" type: "Data" top: "data" top: "label"
        data_param { source: "train_lmdb" batch_size: 32 }
        transform_param { mean_file: "mean.binaryproto" crop_size: 27
                          mirror: true } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
        convolution_param { num_output: 8 kernel_size: 5 stride: 2
                            weight_filler { type: "gaussian" std: 0.01 }
                            bias_filler { type: "constant" value: 0 } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "norm1" type: "LRN" bottom: "pool1" top: "norm1"
        lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 } }
layer { name: "conv2" type: "Convolution" bottom: "norm1" top: "conv2"
        param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
        convolution_param { num_output: 16 pad: 2 kernel_size: 5 group: 2
                            weight_filler { type: "gaussian" std: 0.01 }
                            bias_filler { type: "constant" value: 1 } } }
layer { name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2"
        pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "fc3" type: "InnerProduct" bottom: "pool2" top: "fc3"
        param { lr_mult: 1 decay_mult: 1 }
        inner_product_param { num_output: 10 bias_term: false
                              weight_filler { type: "xavier" } } }
layer { name: "drop3" type: "Dropout" bottom: "fc3" top: "fc3"
        dropout_param { dropout_ratio: 0.4 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc3" bottom: "label" }
"""


def test_v0_net_with_padding_layers_becomes_current():
    param = net(V0_TINY_ALEX)
    assert net_needs_v0_to_v1_upgrade(param) and net_needs_upgrade(param)
    assert upgrade_net_as_needed(param, "tiny_alex.prototxt") is True
    assert_same(param, TINY_ALEX_CURRENT)
    assert not net_needs_upgrade(param)


def test_v0_to_v1_step_keeps_v1_form():
    param = net(V0_TINY_ALEX)
    assert upgrade_v0_net(param) is True
    assert not net_needs_v0_to_v1_upgrade(param)
    conv2 = param.layers[5]
    assert (conv2.name, conv2.type) == ("conv2", V1.CONVOLUTION)
    assert list(conv2.bottom) == ["norm1"] and list(conv2.blobs_lr) == [1, 2]
    assert list(conv2.convolution_param.pad) == [2]


def test_padding_layer_feeding_several_layers_pads_each_and_is_idempotent():
    param = net("""
        input: "img"
        layers { layer { name: "pad" type: "padding" pad: 3 }
                 bottom: "img" top: "padded" }
        layers { layer { name: "convA" type: "conv" num_output: 2 kernelsize: 3 }
                 bottom: "padded" top: "a" }
        layers { layer { name: "poolB" type: "pool" kernelsize: 2 }
                 bottom: "padded" top: "b" }
        layers { layer { name: "convC" type: "conv" num_output: 2 kernelsize: 1 }
                 bottom: "a" top: "c" }
    """)
    upgrade_v0_padding_layers(param)
    expected = """
        input: "img"
        layers { layer { name: "convA" type: "conv" num_output: 2 kernelsize: 3
                         pad: 3 }
                 bottom: "img" top: "a" }
        layers { layer { name: "poolB" type: "pool" kernelsize: 2 pad: 3 }
                 bottom: "img" top: "b" }
        layers { layer { name: "convC" type: "conv" num_output: 2 kernelsize: 1 }
                 bottom: "a" top: "c" }
    """
    assert_same(param, expected)
    upgrade_v0_padding_layers(param)
    assert_same(param, expected)


def test_v0_every_type_and_field_finds_its_v1_home():
    param = net("""
        name: "Everything" input: "extra" input_dim: 1 input_dim: 3
        input_dim: 8 input_dim: 8 force_backward: true
        state { phase: TRAIN }
        layers { layer { name: "imgs" type: "images" source: "list.txt"
                         meanfile: "m.binaryproto" batchsize: 4 cropsize: 6
                         mirror: true scale: 0.5 rand_skip: 7
                         shuffle_images: true new_height: 10 new_width: 12 }
                 top: "imgs" top: "imgs_label" }
        layers { layer { name: "win" type: "window_data" source: "windows.txt"
                         batchsize: 2 det_fg_threshold: 0.6
                         det_bg_threshold: 0.4 det_fg_fraction: 0.3
                         det_context_pad: 8 det_crop_mode: "square" }
                 top: "win" top: "win_label" }
        layers { layer { name: "h5" type: "hdf5_data" source: "h5.txt"
                         batchsize: 5 }
                 top: "h5" }
        layers { layer { name: "db" type: "data" source: "db" rand_skip: 3 }
                 top: "db" }
        layers { layer { name: "cat" type: "concat" concat_dim: 2 }
                 bottom: "imgs" bottom: "win" top: "cat" }
        layers { layer { name: "stoch" type: "pool" pool: STOCHASTIC
                         kernelsize: 2 stride: 1 pad: 1 }
                 bottom: "cat" top: "stoch" }
        layers { layer { name: "lrn" type: "lrn" k: 2 } bottom: "stoch" top: "lrn" }
        layers { layer { name: "info" type: "infogain_loss" source: "H.binaryproto" }
                 bottom: "lrn" bottom: "imgs_label" }
        layers { layer { name: "out" type: "hdf5_output"
                         hdf5_output_param { file_name: "out.h5" } }
                 bottom: "h5" }
        layers { layer { name: "acc" type: "accuracy" } }
        layers { layer { name: "bnll" type: "bnll" } }
        layers { layer { name: "euc" type: "euclidean_loss" } }
        layers { layer { name: "flat" type: "flatten" } }
        layers { layer { name: "i2c" type: "im2col" } }
        layers { layer { name: "mlr" type: "multinomial_logistic_loss" } }
        layers { layer { name: "sig" type: "sigmoid" } }
        layers { layer { name: "smax" type: "softmax" } }
        layers { layer { name: "spl" type: "split" } }
        layers { layer { name: "th" type: "tanh" } }
    """)
    assert upgrade_v0_net(param) is True
    # Only name, input, input_dim and force_backward survive at net level
    # (Caffe drops 'state' here).
    assert_same(param, """
        name: "Everything" input: "extra" input_dim: 1 input_dim: 3
        input_dim: 8 input_dim: 8 force_backward: true
        layers { name: "imgs" type: IMAGE_DATA top: "imgs" top: "imgs_label"
                 image_data_param { source: "list.txt" batch_size: 4
                                    rand_skip: 7 shuffle: true new_height: 10
                                    new_width: 12 }
                 transform_param { scale: 0.5 mean_file: "m.binaryproto"
                                   crop_size: 6 mirror: true } }
        layers { name: "win" type: WINDOW_DATA top: "win" top: "win_label"
                 window_data_param { source: "windows.txt" batch_size: 2
                                     fg_threshold: 0.6 bg_threshold: 0.4
                                     fg_fraction: 0.3 context_pad: 8
                                     crop_mode: "square" } }
        layers { name: "h5" type: HDF5_DATA top: "h5"
                 hdf5_data_param { source: "h5.txt" batch_size: 5 } }
        layers { name: "db" type: DATA top: "db"
                 data_param { source: "db" rand_skip: 3 } }
        layers { name: "cat" type: CONCAT bottom: "imgs" bottom: "win" top: "cat"
                 concat_param { concat_dim: 2 } }
        layers { name: "stoch" type: POOLING bottom: "cat" top: "stoch"
                 pooling_param { pool: STOCHASTIC kernel_size: 2 stride: 1
                                 pad: 1 } }
        layers { name: "lrn" type: LRN bottom: "stoch" top: "lrn"
                 lrn_param { k: 2 } }
        layers { name: "info" type: INFOGAIN_LOSS bottom: "lrn"
                 bottom: "imgs_label"
                 infogain_loss_param { source: "H.binaryproto" } }
        layers { name: "out" type: HDF5_OUTPUT bottom: "h5"
                 hdf5_output_param { file_name: "out.h5" } }
        layers { name: "acc" type: ACCURACY }
        layers { name: "bnll" type: BNLL }
        layers { name: "euc" type: EUCLIDEAN_LOSS }
        layers { name: "flat" type: FLATTEN }
        layers { name: "i2c" type: IM2COL }
        layers { name: "mlr" type: MULTINOMIAL_LOGISTIC_LOSS }
        layers { name: "sig" type: SIGMOID }
        layers { name: "smax" type: SOFTMAX }
        layers { name: "spl" type: SPLIT }
        layers { name: "th" type: TANH }
    """)


def test_v0_field_the_type_cannot_hold_is_logged_and_dropped(caplog):
    param = net("""
        layers { layer { name: "r" type: "relu" num_output: 3 } }
    """)
    with caplog.at_level(logging.INFO, logger="kaffe"):
        assert upgrade_net_as_needed(param, "old.prototxt") is True
    assert_same(param, 'layer { name: "r" type: "ReLU" }')
    assert "Unknown parameter num_output for layer type relu" in caplog.text
    assert "had one or more problems upgrading V0NetParameter" in caplog.text
    assert "future Caffe releases will not support V0NetParameter" in caplog.text


# -- V1 → current ------------------------------------------------------------------
V1_LENET = """
name: "LeNet"
force_backward: true
state { phase: TRAIN }
layers { name: "mnist" type: DATA top: "data" top: "label"
         data_param { source: "mnist_train_lmdb" backend: LMDB batch_size: 64 }
         transform_param { scale: 0.00390625 }
         include { phase: TRAIN } }
layers { name: "mnist" type: DATA top: "data" top: "label"
         data_param { source: "mnist_test_lmdb" backend: LMDB batch_size: 100 }
         transform_param { scale: 0.00390625 }
         include { phase: TEST } }
layers { name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1"
         blobs_lr: 1 blobs_lr: 2
         convolution_param { num_output: 20 kernel_size: 5 stride: 1
                             weight_filler { type: "xavier" }
                             bias_filler { type: "constant" } } }
layers { name: "pool1" type: POOLING bottom: "conv1" top: "pool1"
         pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layers { name: "ip1" type: INNER_PRODUCT bottom: "pool1" top: "ip1"
         blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0
         inner_product_param { num_output: 500 weight_filler { type: "xavier" } } }
layers { name: "relu1" type: RELU bottom: "ip1" top: "ip1" }
layers { name: "ip2" type: INNER_PRODUCT bottom: "ip1" top: "ip2"
         weight_decay: 1
         inner_product_param { num_output: 10 } }
layers { name: "accuracy" type: ACCURACY bottom: "ip2" bottom: "label"
         top: "accuracy" include { phase: TEST } accuracy_param { top_k: 1 } }
layers { name: "loss" type: SOFTMAX_LOSS bottom: "ip2" bottom: "label"
         top: "loss" loss_weight: 2
         exclude { phase: TEST stage: "deploy" }
         loss_param { ignore_label: -1 normalize: true } }
"""

LENET_CURRENT = """
name: "LeNet"
force_backward: true
state { phase: TRAIN }
layer { name: "mnist" type: "Data" top: "data" top: "label"
        include { phase: TRAIN }
        transform_param { scale: 0.00390625 }
        data_param { source: "mnist_train_lmdb" backend: LMDB batch_size: 64 } }
layer { name: "mnist" type: "Data" top: "data" top: "label"
        include { phase: TEST }
        transform_param { scale: 0.00390625 }
        data_param { source: "mnist_test_lmdb" backend: LMDB batch_size: 100 } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        param { lr_mult: 1 } param { lr_mult: 2 }
        convolution_param { num_output: 20 kernel_size: 5 stride: 1
                            weight_filler { type: "xavier" }
                            bias_filler { type: "constant" } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool1" top: "ip1"
        param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
        inner_product_param { num_output: 500 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
        param { decay_mult: 1 }
        inner_product_param { num_output: 10 } }
layer { name: "accuracy" type: "Accuracy" bottom: "ip2" bottom: "label"
        top: "accuracy" include { phase: TEST } accuracy_param { top_k: 1 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label"
        top: "loss" loss_weight: 2
        exclude { phase: TEST stage: "deploy" }
        loss_param { ignore_label: -1 normalize: true } }
"""


def test_v1_lenet_becomes_current_and_logs_like_caffe(caplog):
    param = net(V1_LENET)
    assert net_needs_v1_to_v2_upgrade(param)
    with caplog.at_level(logging.INFO, logger="kaffe"):
        assert upgrade_net_as_needed(param, "lenet_v1.prototxt") is True
    assert_same(param, LENET_CURRENT)
    assert ("Attempting to upgrade input file specified using deprecated "
            "V1LayerParameter: lenet_v1.prototxt") in caplog.text
    assert ("Successfully upgraded file specified using deprecated "
            "V1LayerParameter") in caplog.text


def test_v1_shared_param_names_and_share_modes():
    param = net("""
        layers { name: "left" type: INNER_PRODUCT bottom: "a" top: "fa"
                 param: "shared_w" param: "shared_b"
                 blob_share_mode: PERMISSIVE
                 blobs_lr: 1 blobs_lr: 2
                 inner_product_param { num_output: 4 } }
        layers { name: "right" type: INNER_PRODUCT bottom: "b" top: "fb"
                 param: "shared_w" param: ""
                 blob_share_mode: STRICT blob_share_mode: PERMISSIVE
                 weight_decay: 1 weight_decay: 0 weight_decay: 5
                 inner_product_param { num_output: 4 } }
    """)
    upgrade_v1_net(param)
    assert_same(param, """
        layer { name: "left" type: "InnerProduct" bottom: "a" top: "fa"
                param { name: "shared_w" share_mode: PERMISSIVE lr_mult: 1 }
                param { name: "shared_b" lr_mult: 2 }
                inner_product_param { num_output: 4 } }
        layer { name: "right" type: "InnerProduct" bottom: "b" top: "fb"
                param { name: "shared_w" share_mode: STRICT decay_mult: 1 }
                param { name: "" share_mode: PERMISSIVE decay_mult: 0 }
                param { decay_mult: 5 }
                inner_product_param { num_output: 4 } }
    """)


# Written out here, independently of the module's table.
EXPECTED_V1_TYPE_NAMES = {
    "NONE": "", "ABSVAL": "AbsVal", "ACCURACY": "Accuracy",
    "ARGMAX": "ArgMax", "BNLL": "BNLL", "CONCAT": "Concat",
    "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution",
    "DECONVOLUTION": "Deconvolution", "DATA": "Data", "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData", "EUCLIDEAN_LOSS": "EuclideanLoss",
    "ELTWISE": "Eltwise", "EXP": "Exp", "FLATTEN": "Flatten",
    "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col", "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct",
    "LRN": "LRN", "MEMORY_DATA": "MemoryData",
    "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss", "MVN": "MVN",
    "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU",
    "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss",
    "SILENCE": "Silence", "SOFTMAX": "Softmax",
    "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split", "SLICE": "Slice",
    "TANH": "TanH", "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}


def test_every_v1_type_enum_maps_to_its_name():
    assert set(V1.LayerType.keys()) == set(EXPECTED_V1_TYPE_NAMES)
    for enum_name, value in V1.LayerType.items():
        assert v1_layer_type_name(value) == EXPECTED_V1_TYPE_NAMES[enum_name]
        param = caffe_pb2.NetParameter()
        param.layers.add(name="x", type=value)
        upgrade_v1_net(param)
        assert param.layer[0].type == EXPECTED_V1_TYPE_NAMES[enum_name]
    with pytest.raises(KaffeFormatError, match="not a known V1 layer type"):
        v1_layer_type_name(999)


def test_every_v1_parameter_message_is_carried_over():
    v1_messages = {f.name for f in V1.DESCRIPTOR.fields
                   if f.name.endswith("_param") and f.message_type is not None}
    assert set(V1_PARAM_MESSAGES) == v1_messages
    param = net("""
        layers { name: "d" type: DUMMY_DATA top: "d"
                 dummy_data_param { shape { dim: 2 dim: 3 } } }
        layers { name: "e" type: ELTWISE bottom: "d" bottom: "d" top: "e"
                 eltwise_param { operation: MAX } }
        layers { name: "t" type: THRESHOLD bottom: "e" top: "t"
                 threshold_param { threshold: 0.5 } }
        layers { name: "s" type: SLICE bottom: "t" top: "s1" top: "s2"
                 slice_param { axis: 1 slice_point: 1 } }
        layers { name: "m" type: MEMORY_DATA top: "m" top: "ml"
                 memory_data_param { batch_size: 2 channels: 1 height: 2
                                     width: 2 } }
    """)
    upgrade_net_as_needed(param)
    assert_same(param, """
        layer { name: "d" type: "DummyData" top: "d"
                dummy_data_param { shape { dim: 2 dim: 3 } } }
        layer { name: "e" type: "Eltwise" bottom: "d" bottom: "d" top: "e"
                eltwise_param { operation: MAX } }
        layer { name: "t" type: "Threshold" bottom: "e" top: "t"
                threshold_param { threshold: 0.5 } }
        layer { name: "s" type: "Slice" bottom: "t" top: "s1" top: "s2"
                slice_param { axis: 1 slice_point: 1 } }
        layer { name: "m" type: "MemoryData" top: "m" top: "ml"
                memory_data_param { batch_size: 2 channels: 1 height: 2
                                    width: 2 } }
    """)


# -- data transformation fields ------------------------------------------------------
def test_v1_data_transformation_fields_move_to_transform_param(caplog):
    param = net("""
        layers { name: "db" type: DATA top: "data"
                 data_param { source: "db" scale: 0.5 mean_file: "m.bp"
                              crop_size: 4 mirror: true batch_size: 8 } }
        layers { name: "imgs" type: IMAGE_DATA top: "imgs"
                 image_data_param { source: "list.txt" crop_size: 3 } }
        layers { name: "win" type: WINDOW_DATA top: "win"
                 window_data_param { source: "w.txt" mirror: false } }
        layers { name: "db2" type: DATA top: "data2"
                 data_param { source: "db2" } }
    """)
    assert net_needs_data_upgrade(param)
    with caplog.at_level(logging.INFO, logger="kaffe"):
        upgrade_net_as_needed(param, "data.prototxt")
    # db2 had nothing to move yet still gets an (empty) transform_param.
    assert_same(param, """
        layer { name: "db" type: "Data" top: "data"
                transform_param { scale: 0.5 mean_file: "m.bp" crop_size: 4
                                  mirror: true }
                data_param { source: "db" batch_size: 8 } }
        layer { name: "imgs" type: "ImageData" top: "imgs"
                transform_param { crop_size: 3 }
                image_data_param { source: "list.txt" } }
        layer { name: "win" type: "WindowData" top: "win"
                transform_param { mirror: false }
                window_data_param { source: "w.txt" } }
        layer { name: "db2" type: "Data" top: "data2"
                transform_param { } data_param { source: "db2" } }
    """)
    assert param.layer[3].HasField("transform_param")
    assert ("deprecated transformation parameters: data.prototxt"
            in caplog.text)
    assert "will only support transform_param messages" in caplog.text


def test_data_fields_of_current_format_layers_are_left_alone():
    text = """
        layer { name: "db" type: "Data" top: "data"
                data_param { source: "db" scale: 0.5 batch_size: 8 } }
    """
    param = net(text)
    assert not net_needs_data_upgrade(param)
    assert upgrade_net_as_needed(param) is False
    assert_same(param, text)


def test_data_upgrade_step_alone_keeps_v1_layers():
    param = net("""layers { name: "db" type: DATA
                            data_param { source: "db" mirror: true } }""")
    upgrade_net_data_transformation(param)
    assert_same(param, """layers { name: "db" type: DATA
                                   data_param { source: "db" }
                                   transform_param { mirror: true } }""")


# -- input fields ----------------------------------------------------------------
def test_input_dim_form_becomes_a_first_input_layer(caplog):
    param = net("""
        name: "deploy"
        input: "data" input_dim: 10 input_dim: 3 input_dim: 227 input_dim: 227
        input: "rois" input_dim: 1 input_dim: 5 input_dim: 1 input_dim: 1
        layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
                convolution_param { num_output: 4 kernel_size: 3 } }
        layer { name: "input" type: "ReLU" bottom: "conv" top: "conv" }
    """)
    assert net_needs_input_upgrade(param)
    with caplog.at_level(logging.INFO, logger="kaffe"):
        assert upgrade_net_as_needed(param, "deploy.prototxt") is True
    assert_same(param, """
        name: "deploy"
        layer { name: "input" type: "Input" top: "data" top: "rois"
                input_param { shape { dim: 10 dim: 3 dim: 227 dim: 227 }
                              shape { dim: 1 dim: 5 dim: 1 dim: 1 } } }
        layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
                convolution_param { num_output: 4 kernel_size: 3 } }
        layer { name: "input" type: "ReLU" bottom: "conv" top: "conv" }
    """)
    assert "deprecated input fields: deploy.prototxt" in caplog.text
    assert "will only support input layers and not input fields" in caplog.text


def test_input_shape_form_becomes_a_first_input_layer():
    param = net("""
        input: "data" input_shape { dim: 2 dim: 8 }
        input: "label" input_shape { dim: 2 }
        layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
                inner_product_param { num_output: 3 } }
    """)
    upgrade_net_input(param)
    assert_same(param, """
        layer { name: "input" type: "Input" top: "data" top: "label"
                input_param { shape { dim: 2 dim: 8 } shape { dim: 2 } } }
        layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
                inner_product_param { num_output: 3 } }
    """)


def test_input_without_any_shape_is_just_dropped():
    # Old .caffemodel files name their inputs without shapes.
    param = net("""input: "data"
                   layer { name: "r" type: "ReLU" bottom: "data" top: "r" }""")
    upgrade_net_as_needed(param)
    assert_same(param, 'layer { name: "r" type: "ReLU" bottom: "data" top: "r" }')


def test_v1_net_with_input_dims_goes_all_the_way():
    param = net("""
        input: "data" input_dim: 1 input_dim: 1 input_dim: 4 input_dim: 4
        layers { name: "r" type: RELU bottom: "data" top: "r" }
    """)
    upgrade_net_as_needed(param)
    assert_same(param, """
        layer { name: "input" type: "Input" top: "data"
                input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }
        layer { name: "r" type: "ReLU" bottom: "data" top: "r" }
    """)


@pytest.mark.parametrize("text, field, received", [
    ('input: "a" input: "b" input_dim: 1 input_dim: 2 input_dim: 3 '
     'input_dim: 4 input_dim: 5', "input_dim", "received 5"),
    ('input: "a" input: "b" input_shape { dim: 1 }', "input_shape",
     "received 1"),
    ('input: "a" input_shape { dim: 1 } input_dim: 1 input_dim: 1 '
     'input_dim: 1 input_dim: 1', "input_shape", "1 input_shape and 4"),
])
def test_inconsistent_input_fields_are_refused(text, field, received):
    param = net(text)
    with pytest.raises(KaffeFormatError) as info:
        upgrade_net_as_needed(param, "deploy.prototxt")
    err = info.value
    assert err.file == "deploy.prototxt" and err.field == field
    message = str(err)
    assert message.startswith("deploy.prototxt:")
    assert field in message and received in message and "Fix:" in message


# -- BatchNorm ---------------------------------------------------------------------
def test_batchnorm_with_three_param_specs_gets_zero_mults(caplog):
    param = net("""
        layer { name: "bn" type: "BatchNorm" bottom: "x" top: "x"
                param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 1 }
                param { name: "shared" }
                batch_norm_param { use_global_stats: false } }
        layer { name: "bn2" type: "BatchNorm" bottom: "x" top: "y"
                param { lr_mult: 1 } param { lr_mult: 1 } }
        layer { name: "conv" type: "Convolution" bottom: "y" top: "z"
                param { lr_mult: 1 } param { lr_mult: 1 } param { lr_mult: 1 }
                convolution_param { num_output: 1 kernel_size: 1 } }
    """)
    assert net_needs_batchnorm_upgrade(param)
    with caplog.at_level(logging.INFO, logger="kaffe"):
        assert upgrade_net_as_needed(param, "resnet.prototxt") is True
    assert_same(param, """
        layer { name: "bn" type: "BatchNorm" bottom: "x" top: "x"
                param { lr_mult: 0 decay_mult: 0 }
                param { lr_mult: 0 decay_mult: 0 }
                param { name: "shared" lr_mult: 0 decay_mult: 0 }
                batch_norm_param { use_global_stats: false } }
        layer { name: "bn2" type: "BatchNorm" bottom: "x" top: "y"
                param { lr_mult: 1 } param { lr_mult: 1 } }
        layer { name: "conv" type: "Convolution" bottom: "y" top: "z"
                param { lr_mult: 1 } param { lr_mult: 1 } param { lr_mult: 1 }
                convolution_param { num_output: 1 kernel_size: 1 } }
    """)
    assert ("Attempting to upgrade batch norm layers using deprecated params: "
            "resnet.prototxt") in caplog.text
    upgrade_net_batchnorm(param)  # idempotent
    assert param.layer[0].param[2].name == "shared"


# -- nets already current ------------------------------------------------------------
def test_current_net_is_untouched():
    param = net(LENET_CURRENT)
    before = param.SerializeToString()
    assert not net_needs_upgrade(param)
    assert upgrade_net_as_needed(param, "lenet.prototxt") is False
    assert param.SerializeToString() == before


# -- errors ----------------------------------------------------------------------
def test_unknown_v0_type_names_file_layer_field_and_suggests():
    param = net('layers { layer { name: "c1" type: "convolution" } top: "c1" }')
    with pytest.raises(KaffeFormatError) as info:
        upgrade_net_as_needed(param, "old.prototxt")
    err = info.value
    assert (err.file, err.layer, err.field) == ("old.prototxt", "c1",
                                                "layer.type")
    message = str(err)
    assert message.startswith("old.prototxt: layer 'c1' (convolution):")
    assert "layer.type" in message and "'conv'" in message and "Fix:" in message


def test_padding_layer_into_a_non_conv_layer_is_refused():
    param = net("""
        input: "x"
        layers { layer { name: "pad" type: "padding" pad: 1 }
                 bottom: "x" top: "p" }
        layers { layer { name: "act" type: "relu" } bottom: "p" top: "r" }
    """)
    with pytest.raises(KaffeFormatError) as info:
        upgrade_net_as_needed(param, "pad.prototxt")
    err = info.value
    assert (err.file, err.layer, err.field) == ("pad.prototxt", "act", "bottom")
    assert "padding layer 'pad'" in str(err) and "'conv' or 'pool'" in str(err)


def test_v0_bottom_from_nowhere_is_refused():
    param = net("""layers { layer { name: "c" type: "conv" kernelsize: 1 }
                            bottom: "ghost" top: "c" }""")
    with pytest.raises(KaffeFormatError) as info:
        upgrade_net_as_needed(param, "v0.prototxt")
    err = info.value
    assert (err.layer, err.field, err.received) == ("c", "bottom[0]", "ghost")
    assert "v0.prototxt" in str(err)


def test_v0_and_v1_layers_mixed_are_refused():
    param = net("""
        layers { layer { name: "old" type: "relu" } }
        layers { name: "new" type: RELU }
    """)
    with pytest.raises(KaffeFormatError) as info:
        upgrade_net_as_needed(param, "mixed.prototxt")
    assert (info.value.layer, info.value.field) == ("new", "layers")
    assert "mixed.prototxt" in str(info.value)


def test_layer_and_layers_together_are_refused():
    param = net("""
        layer { name: "a" type: "ReLU" }
        layers { name: "b" type: RELU }
    """)
    with pytest.raises(KaffeFormatError) as info:
        upgrade_net_as_needed(param, "both.prototxt")
    err = info.value
    assert (err.file, err.layer, err.field) == ("both.prototxt", "b", "layers")
    assert "both 'layer' and 'layers'" in str(err) and "Fix:" in str(err)


# -- binary weights --------------------------------------------------------------
def _blob(values, shape):
    blob = caffe_pb2.BlobProto()
    blob.num, blob.channels, blob.height, blob.width = shape
    blob.data.extend(values)
    return blob


def test_v1_caffemodel_bytes_keep_their_blobs():
    rng = np.random.default_rng(0)
    weight = rng.standard_normal(6).astype(np.float32)
    bias = rng.standard_normal(2).astype(np.float32)
    original = caffe_pb2.NetParameter(name="tiny")
    original.input.append("data")  # shapeless input, as in old caffemodels
    layer = original.layers.add(name="ip", type=V1.INNER_PRODUCT,
                                bottom=["data"], top=["ip"])
    layer.blobs.add().CopyFrom(_blob(weight, (1, 1, 2, 3)))
    layer.blobs.add().CopyFrom(_blob(bias, (1, 1, 1, 2)))
    layer.blobs_lr.extend([1, 2])
    original.layers.add(name="prob", type=V1.SOFTMAX, bottom=["ip"],
                        top=["prob"])

    param = caffe_pb2.NetParameter.FromString(original.SerializeToString())
    assert upgrade_net_as_needed(param, "tiny.caffemodel") is True
    assert [(l.name, l.type) for l in param.layer] == [
        ("ip", "InnerProduct"), ("prob", "Softmax")]
    assert len(param.layers) == 0 and len(param.input) == 0
    ip = param.layer[0]
    assert [list(b.data) for b in ip.blobs] == [
        pytest.approx(weight.tolist()), pytest.approx(bias.tolist())]
    assert [(b.num, b.channels, b.height, b.width) for b in ip.blobs] == [
        (1, 1, 2, 3), (1, 1, 1, 2)]
    assert [p.lr_mult for p in ip.param] == [1, 2]


def test_v0_caffemodel_bytes_keep_their_blobs():
    original = net("""
        name: "v0weights"
        layers { layer { name: "conv" type: "conv" num_output: 1 kernelsize: 1
                         blobs { num: 1 channels: 1 height: 1 width: 1
                                 data: 0.25 } } }
    """)
    param = caffe_pb2.NetParameter.FromString(original.SerializeToString())
    upgrade_net_as_needed(param, "v0.caffemodel")
    assert param.layer[0].type == "Convolution"
    assert list(param.layer[0].blobs[0].data) == [0.25]


# -- solvers ------------------------------------------------------------------------
SOLVER_BASE = """
net: "lenet_train_test.prototxt" base_lr: 0.01 momentum: 0.9
lr_policy: "inv" gamma: 0.0001 power: 0.75 max_iter: 100
snapshot_prefix: "snap/lenet" solver_mode: CPU
"""


@pytest.mark.parametrize("old, new", [
    ("SGD", "SGD"), ("NESTEROV", "Nesterov"), ("ADAGRAD", "AdaGrad"),
    ("RMSPROP", "RMSProp"), ("ADADELTA", "AdaDelta"), ("ADAM", "Adam")])
def test_solver_type_enum_becomes_type_string(old, new, caplog):
    param = solver(SOLVER_BASE + f"solver_type: {old}")
    with caplog.at_level(logging.INFO, logger="kaffe"):
        assert upgrade_solver_as_needed(param, "solver.prototxt") is True
    assert_same(param, SOLVER_BASE + f'type: "{new}"')
    assert "deprecated 'solver_type' field (enum)': solver.prototxt" in caplog.text


def test_solver_already_current_is_untouched(caplog):
    param = solver(SOLVER_BASE + 'type: "Adam"')
    assert upgrade_solver_as_needed(param, "solver.prototxt") is False
    assert_same(param, SOLVER_BASE + 'type: "Adam"')
    with caplog.at_level(logging.INFO, logger="kaffe"):
        assert upgrade_solver_type(param) is False
    assert "solver type already up to date" in caplog.text


@pytest.mark.parametrize("old, new", [("ADAM", "SGD"), ("ADAM", "Adam")])
def test_solver_type_and_solver_type_together_are_refused(old, new):
    # Caffe refuses both fields even when they name the same solver.
    param = solver(SOLVER_BASE + f'solver_type: {old} type: "{new}"')
    with pytest.raises(KaffeFormatError) as info:
        upgrade_solver_as_needed(param, "solver.prototxt")
    err = info.value
    assert (err.file, err.field) == ("solver.prototxt", "solver_type")
    assert old in str(err) and new in str(err) and "Fix:" in str(err)


def test_snapshot_prefix_defaults_to_the_solver_path(tmp_path):
    param = solver("base_lr: 0.1")
    path = os.path.join("models", "lenet", "lenet_solver.prototxt")
    assert upgrade_snapshot_prefix(param, path) is True
    assert param.snapshot_prefix == os.path.join("models", "lenet",
                                                 "lenet_solver")

    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    param = solver(f'snapshot_prefix: "{snapshots}"')
    assert upgrade_snapshot_prefix(param, path) is True
    assert param.snapshot_prefix == str(snapshots / "lenet_solver")

    param = solver(f'snapshot_prefix: "{snapshots}/run1"')
    assert upgrade_snapshot_prefix(param, path) is False
    assert param.snapshot_prefix == f"{snapshots}/run1"

    param = solver("base_lr: 0.1")
    assert upgrade_snapshot_prefix(param, None) is False
    assert not param.HasField("snapshot_prefix")
