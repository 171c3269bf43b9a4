"""Caffe's format upgrades: old net and solver definitions → the current format.

Caffe reads every net (prototxt or binary .caffemodel) through
``UpgradeNetAsNeeded`` (``src/caffe/util/upgrade_proto.cpp``), and every
solver through ``UpgradeSolverAsNeeded`` + ``UpgradeSnapshotPrefixProperty``.
This module does the same steps, in the same order, with the same results:

1. V0 → V1: ``layers { layer { type: "conv" ... } bottom top }`` with
   lower-case string types; separate ``padding`` layers are folded into the
   conv/pool layer they feed.
2. Deprecated data-transformation fields (scale, mean_file, crop_size,
   mirror) of V1 Data/ImageData/WindowData layers → ``transform_param``.
3. V1 → current: ``layers { type: CONVOLUTION blobs_lr weight_decay param }``
   → ``layer { type: "Convolution" param { lr_mult decay_mult name } }``.
4. Net-level ``input`` + ``input_dim``/``input_shape`` → a first ``Input``
   layer named "input".
5. BatchNorm layers that list 3 ``param`` specs get lr_mult = decay_mult = 0.

Where Caffe would abort (``LOG(FATAL)``/``CHECK``) these functions raise
:class:`KaffeFormatError` naming the file, the layer and the field. Where
Caffe only logs a problem and carries on, so do we.
"""
import difflib
import logging
import os

from ..errors import KaffeFormatError
from . import caffe_pb2

logger = logging.getLogger("kaffe")

V0 = caffe_pb2.V0LayerParameter
V1 = caffe_pb2.V1LayerParameter

# -- tables ---------------------------------------------------------------------
# V1 layer-type enum → the current string type (Caffe's UpgradeV1LayerType).
V1_LAYER_TYPE_NAMES = {
    V1.NONE: "",
    V1.ABSVAL: "AbsVal",
    V1.ACCURACY: "Accuracy",
    V1.ARGMAX: "ArgMax",
    V1.BNLL: "BNLL",
    V1.CONCAT: "Concat",
    V1.CONTRASTIVE_LOSS: "ContrastiveLoss",
    V1.CONVOLUTION: "Convolution",
    V1.DECONVOLUTION: "Deconvolution",
    V1.DATA: "Data",
    V1.DROPOUT: "Dropout",
    V1.DUMMY_DATA: "DummyData",
    V1.EUCLIDEAN_LOSS: "EuclideanLoss",
    V1.ELTWISE: "Eltwise",
    V1.EXP: "Exp",
    V1.FLATTEN: "Flatten",
    V1.HDF5_DATA: "HDF5Data",
    V1.HDF5_OUTPUT: "HDF5Output",
    V1.HINGE_LOSS: "HingeLoss",
    V1.IM2COL: "Im2col",
    V1.IMAGE_DATA: "ImageData",
    V1.INFOGAIN_LOSS: "InfogainLoss",
    V1.INNER_PRODUCT: "InnerProduct",
    V1.LRN: "LRN",
    V1.MEMORY_DATA: "MemoryData",
    V1.MULTINOMIAL_LOGISTIC_LOSS: "MultinomialLogisticLoss",
    V1.MVN: "MVN",
    V1.POOLING: "Pooling",
    V1.POWER: "Power",
    V1.RELU: "ReLU",
    V1.SIGMOID: "Sigmoid",
    V1.SIGMOID_CROSS_ENTROPY_LOSS: "SigmoidCrossEntropyLoss",
    V1.SILENCE: "Silence",
    V1.SOFTMAX: "Softmax",
    V1.SOFTMAX_LOSS: "SoftmaxWithLoss",
    V1.SPLIT: "Split",
    V1.SLICE: "Slice",
    V1.TANH: "TanH",
    V1.WINDOW_DATA: "WindowData",
    V1.THRESHOLD: "Threshold",
}

# V0 lower-case type string → V1 enum (Caffe's UpgradeV0LayerType). "padding"
# is absent on purpose: padding layers are folded away before this lookup.
V0_LAYER_TYPES = {
    "accuracy": V1.ACCURACY,
    "bnll": V1.BNLL,
    "concat": V1.CONCAT,
    "conv": V1.CONVOLUTION,
    "data": V1.DATA,
    "dropout": V1.DROPOUT,
    "euclidean_loss": V1.EUCLIDEAN_LOSS,
    "flatten": V1.FLATTEN,
    "hdf5_data": V1.HDF5_DATA,
    "hdf5_output": V1.HDF5_OUTPUT,
    "im2col": V1.IM2COL,
    "images": V1.IMAGE_DATA,
    "infogain_loss": V1.INFOGAIN_LOSS,
    "innerproduct": V1.INNER_PRODUCT,
    "lrn": V1.LRN,
    "multinomial_logistic_loss": V1.MULTINOMIAL_LOGISTIC_LOSS,
    "pool": V1.POOLING,
    "relu": V1.RELU,
    "sigmoid": V1.SIGMOID,
    "softmax": V1.SOFTMAX,
    "softmax_loss": V1.SOFTMAX_LOSS,
    "split": V1.SPLIT,
    "tanh": V1.TANH,
    "window_data": V1.WINDOW_DATA,
}

# Where each type-specific V0 field goes in a V1 layer: V0 field →
# {V0 type: "sub_message.field"}. A field set on a layer whose type is not
# listed has no home; Caffe logs it and drops it.
V0_FIELD_HOMES = {
    "num_output": {"conv": "convolution_param.num_output",
                   "innerproduct": "inner_product_param.num_output"},
    "biasterm": {"conv": "convolution_param.bias_term",
                 "innerproduct": "inner_product_param.bias_term"},
    "weight_filler": {"conv": "convolution_param.weight_filler",
                      "innerproduct": "inner_product_param.weight_filler"},
    "bias_filler": {"conv": "convolution_param.bias_filler",
                    "innerproduct": "inner_product_param.bias_filler"},
    "pad": {"conv": "convolution_param.pad", "pool": "pooling_param.pad"},
    "kernelsize": {"conv": "convolution_param.kernel_size",
                   "pool": "pooling_param.kernel_size"},
    "group": {"conv": "convolution_param.group"},
    "stride": {"conv": "convolution_param.stride",
               "pool": "pooling_param.stride"},
    "pool": {"pool": "pooling_param.pool"},
    "dropout_ratio": {"dropout": "dropout_param.dropout_ratio"},
    "local_size": {"lrn": "lrn_param.local_size"},
    "alpha": {"lrn": "lrn_param.alpha"},
    "beta": {"lrn": "lrn_param.beta"},
    "k": {"lrn": "lrn_param.k"},
    "source": {"data": "data_param.source",
               "hdf5_data": "hdf5_data_param.source",
               "images": "image_data_param.source",
               "window_data": "window_data_param.source",
               "infogain_loss": "infogain_loss_param.source"},
    "batchsize": {"data": "data_param.batch_size",
                  "hdf5_data": "hdf5_data_param.batch_size",
                  "images": "image_data_param.batch_size",
                  "window_data": "window_data_param.batch_size"},
    "rand_skip": {"data": "data_param.rand_skip",
                  "images": "image_data_param.rand_skip"},
    "shuffle_images": {"images": "image_data_param.shuffle"},
    "new_height": {"images": "image_data_param.new_height"},
    "new_width": {"images": "image_data_param.new_width"},
    "concat_dim": {"concat": "concat_param.concat_dim"},
    "det_fg_threshold": {"window_data": "window_data_param.fg_threshold"},
    "det_bg_threshold": {"window_data": "window_data_param.bg_threshold"},
    "det_fg_fraction": {"window_data": "window_data_param.fg_fraction"},
    "det_context_pad": {"window_data": "window_data_param.context_pad"},
    "det_crop_mode": {"window_data": "window_data_param.crop_mode"},
    "hdf5_output_param": {"hdf5_output": "hdf5_output_param"},
}

# V0 fields that go to transform_param whatever the layer type.
V0_TRANSFORM_FIELDS = {
    "scale": "scale",
    "meanfile": "mean_file",
    "cropsize": "crop_size",
    "mirror": "mirror",
}

# V1 data layers whose own parameter message still carries the deprecated
# transformation fields, and the fields that move to transform_param.
DATA_LAYER_PARAMS = {
    V1.DATA: "data_param",
    V1.IMAGE_DATA: "image_data_param",
    V1.WINDOW_DATA: "window_data_param",
}
DEPRECATED_TRANSFORM_FIELDS = ("scale", "mean_file", "crop_size", "mirror")

# Per-type parameter messages a V1 layer carries over unchanged.
V1_PARAM_MESSAGES = (
    "accuracy_param", "argmax_param", "concat_param", "contrastive_loss_param",
    "convolution_param", "data_param", "dropout_param", "dummy_data_param",
    "eltwise_param", "exp_param", "hdf5_data_param", "hdf5_output_param",
    "hinge_loss_param", "image_data_param", "infogain_loss_param",
    "inner_product_param", "lrn_param", "memory_data_param", "mvn_param",
    "pooling_param", "power_param", "relu_param", "sigmoid_param",
    "softmax_param", "slice_param", "tanh_param", "threshold_param",
    "window_data_param", "transform_param", "loss_param",
)

# Deprecated solver_type enum → the solver's type string.
SOLVER_TYPE_NAMES = {
    caffe_pb2.SolverParameter.SGD: "SGD",
    caffe_pb2.SolverParameter.NESTEROV: "Nesterov",
    caffe_pb2.SolverParameter.ADAGRAD: "AdaGrad",
    caffe_pb2.SolverParameter.RMSPROP: "RMSProp",
    caffe_pb2.SolverParameter.ADADELTA: "AdaDelta",
    caffe_pb2.SolverParameter.ADAM: "Adam",
}

_UPGRADE_TOOLS = ("use `kaffe upgrade_net_proto_text` for a prototxt or "
                  "`kaffe upgrade_net_proto_binary` for weights to rewrite "
                  "the file in the current format")


def _source(path):
    return path if path is not None else "<NetParameter in memory>"


def _v1_type_label(layer):
    """A V1 layer's type as a readable label, e.g. 'CONVOLUTION'."""
    return V1.LayerType.Name(layer.type) if layer.HasField("type") else None


# -- the whole net --------------------------------------------------------------
def net_needs_upgrade(param):
    """True iff ``param`` (a NetParameter) is not in the current format."""
    return (net_needs_v0_to_v1_upgrade(param)
            or net_needs_v1_to_v2_upgrade(param)
            or net_needs_data_upgrade(param)
            or net_needs_input_upgrade(param)
            or net_needs_batchnorm_upgrade(param))


def upgrade_net_as_needed(param, path=None):
    """Upgrade a NetParameter in place to the current format, as Caffe does.

    Applies, in Caffe's order, every step that ``param`` needs: V0 → V1,
    data-transformation fields → transform_param, V1 → current layers,
    input fields → Input layer, BatchNorm param specs. Works the same for a
    parsed prototxt and a binary .caffemodel.

    Args:
        param: a ``caffe_pb2.NetParameter``, modified in place.
        path: the file it came from, for log lines and error messages.

    Returns:
        True if any upgrade step was applied.

    Raises:
        KaffeFormatError: an upgrade Caffe would refuse (an unknown V0 layer
            type, a misplaced padding layer, both ``layer`` and ``layers``,
            input fields that do not fit together).
    """
    source = _source(path)
    changed = False
    if net_needs_v0_to_v1_upgrade(param):
        changed = True
        logger.info("Attempting to upgrade input file specified using "
                    "deprecated V0LayerParameter: %s", source)
        if upgrade_v0_net(param, path):
            logger.info("Successfully upgraded file specified using "
                        "deprecated V0LayerParameter")
        else:
            logger.error("Warning: had one or more problems upgrading "
                         "V0NetParameter to NetParameter (see above); "
                         "continuing anyway.")
        logger.warning("Note that future Caffe releases will not support "
                       "V0NetParameter; %s.", _UPGRADE_TOOLS)
    if net_needs_data_upgrade(param):
        changed = True
        logger.info("Attempting to upgrade input file specified using "
                    "deprecated transformation parameters: %s", source)
        upgrade_net_data_transformation(param)
        logger.info("Successfully upgraded file specified using deprecated "
                    "data transformation parameters.")
        logger.warning("Note that future Caffe releases will only support "
                       "transform_param messages for transformation fields.")
    if net_needs_v1_to_v2_upgrade(param):
        changed = True
        logger.info("Attempting to upgrade input file specified using "
                    "deprecated V1LayerParameter: %s", source)
        upgrade_v1_net(param, path)
        logger.info("Successfully upgraded file specified using deprecated "
                    "V1LayerParameter")
    if net_needs_input_upgrade(param):
        changed = True
        logger.info("Attempting to upgrade input file specified using "
                    "deprecated input fields: %s", source)
        upgrade_net_input(param, path)
        logger.info("Successfully upgraded file specified using deprecated "
                    "input fields.")
        logger.warning("Note that future Caffe releases will only support "
                       "input layers and not input fields.")
    if net_needs_batchnorm_upgrade(param):
        changed = True
        logger.info("Attempting to upgrade batch norm layers using "
                    "deprecated params: %s", source)
        upgrade_net_batchnorm(param)
        logger.info("Successfully upgraded batch norm layers using "
                    "deprecated params.")
    return changed


# -- V0 → V1 ----------------------------------------------------------------------
def net_needs_v0_to_v1_upgrade(param):
    """True iff any ``layers`` entry wraps a V0 ``layer { ... }``."""
    return any(entry.HasField("layer") for entry in param.layers)


def upgrade_v0_net(param, path=None):
    """Upgrade a V0 net in place to V1 ``layers``.

    First folds padding layers into the conv/pool layers they feed
    (:func:`upgrade_v0_padding_layers`), then rewrites each V0 layer as a
    V1LayerParameter. As in Caffe, only the net's name, input, input_dim and
    force_backward are kept from the net-level fields.

    Returns:
        True if every V0 field found a home; False if some were dropped
        (each one is logged).
    """
    _check_all_v0(param, path)
    folded = caffe_pb2.NetParameter()
    folded.CopyFrom(param)
    upgrade_v0_padding_layers(folded, path)

    upgraded = caffe_pb2.NetParameter()
    if folded.HasField("name"):
        upgraded.name = folded.name
    fully_compatible = True
    for entry in folded.layers:
        fully_compatible &= upgrade_v0_layer(entry, upgraded.layers.add(), path)
    upgraded.input.extend(folded.input)
    upgraded.input_dim.extend(folded.input_dim)
    if folded.HasField("force_backward"):
        upgraded.force_backward = folded.force_backward
    param.CopyFrom(upgraded)
    return fully_compatible


def _check_all_v0(param, path):
    # Caffe would turn a plain V1 entry of a mostly-V0 net into a layer with
    # no name and no type, which fails later with a puzzling message.
    for index, entry in enumerate(param.layers):
        if not entry.HasField("layer"):
            raise KaffeFormatError(
                "is a V1 layer in a net whose other layers use the V0 "
                "format (layers { layer { ... } })",
                file=path, layer=entry.name or f"#{index}",
                layer_type=_v1_type_label(entry), field="layers",
                fix="write every layer of the net in one format, preferably "
                    "the current layer { type: '...' } format")


def upgrade_v0_padding_layers(param, path=None):
    """Fold V0 ``padding`` layers, in place, into the layers they feed.

    Each layer that reads a padding layer's output gets the padding layer's
    ``pad`` and reads the padding layer's input instead; padding layers are
    removed. Only conv and pool layers can take a padding layer's output.
    """
    last_producer = {name: None for name in param.input}  # blob → layer index
    padding_indices = []
    for index, entry in enumerate(param.layers):
        layer = entry.layer
        if layer.type == "padding":
            padding_indices.append(index)
        for j, blob in enumerate(entry.bottom):
            if blob not in last_producer:
                raise KaffeFormatError(
                    "names a blob that no earlier layer produces and that is "
                    "not a net input",
                    file=path, layer=layer.name, layer_type=layer.type,
                    field=f"bottom[{j}]", received=blob,
                    fix="list the layer after the layer whose top it reads, "
                        "or declare the blob with 'input:'")
            source_index = last_producer[blob]
            if source_index is None:
                continue
            source = param.layers[source_index]
            if source.layer.type == "padding":
                _check_padding_consumer(entry, source, path)
                layer.pad = source.layer.pad
                entry.bottom[j] = source.bottom[0]
        for blob in entry.top:
            last_producer[blob] = index
    for index in reversed(padding_indices):
        del param.layers[index]


def _check_padding_consumer(entry, source, path):
    layer, pad = entry.layer, source.layer
    if layer.type not in ("conv", "pool"):
        raise KaffeFormatError(
            f"reads the output of padding layer '{pad.name}', but only a "
            "'conv' or 'pool' layer can take a padding layer's output",
            file=path, layer=layer.name, layer_type=layer.type,
            field="bottom", received=layer.type, expected="'conv' or 'pool'",
            fix=f"remove padding layer '{pad.name}' and set 'pad' on the "
                "layer that reads it, or feed it into a conv/pool layer")
    if len(entry.bottom) != 1:
        raise KaffeFormatError(
            f"reads padding layer '{pad.name}' and so must have exactly one "
            "bottom", file=path, layer=layer.name, layer_type=layer.type,
            field="bottom", received=len(entry.bottom), expected="1",
            fix="give the layer a single bottom blob")
    for field in ("bottom", "top"):
        count = len(getattr(source, field))
        if count != 1:
            raise KaffeFormatError(
                f"must have exactly one {field}",
                file=path, layer=pad.name, layer_type="padding", field=field,
                received=count, expected="1",
                fix=f"give the padding layer a single {field} blob")


def v0_layer_type(type_name, path=None, layer=None):
    """The V1 enum value for a V0 type string ("conv" → CONVOLUTION)."""
    try:
        return V0_LAYER_TYPES[type_name]
    except KeyError:
        close = difflib.get_close_matches(type_name, V0_LAYER_TYPES, n=3,
                                          cutoff=0.5)
        hint = (f"use {' or '.join(repr(c) for c in close)} if that is "
                "what was meant, or " if close else "")
        raise KaffeFormatError(
            "is not a V0 layer type that has an equivalent in the current "
            "format", file=path, layer=layer, layer_type=type_name,
            field="layer.type", received=type_name,
            expected="one of " + ", ".join(sorted(V0_LAYER_TYPES)),
            fix=hint + "rewrite the layer in the current format with a "
                       "string type such as 'Convolution'") from None


def upgrade_v0_layer(v0_entry, v1_layer, path=None):
    """Fill ``v1_layer`` (cleared) from a V0 ``layers { layer {...} }`` entry.

    Returns:
        False if a V0 field is set that the layer's type has no place for
        (logged, dropped); True otherwise.
    """
    v1_layer.Clear()
    v1_layer.bottom.extend(v0_entry.bottom)
    v1_layer.top.extend(v0_entry.top)
    if not v0_entry.HasField("layer"):
        return True
    v0 = v0_entry.layer
    kind = v0.type
    if v0.HasField("name"):
        v1_layer.name = v0.name
    if v0.HasField("type"):
        v1_layer.type = v0_layer_type(kind, path, v0.name)
    v1_layer.blobs.extend(v0.blobs)
    v1_layer.blobs_lr.extend(v0.blobs_lr)
    v1_layer.weight_decay.extend(v0.weight_decay)

    fully_compatible = True
    for field, homes in V0_FIELD_HOMES.items():
        if not v0.HasField(field):
            continue
        if kind not in homes:
            logger.error("Unknown parameter %s for layer type %s "
                         "(layer '%s'); it is dropped.", field, kind, v0.name)
            fully_compatible = False
            continue
        value = getattr(v0, field)
        if field == "pool":
            value = caffe_pb2.PoolingParameter.PoolMethod.Value(
                V0.PoolMethod.Name(value))
        _set_path(v1_layer, homes[kind], value)
    for field, target in V0_TRANSFORM_FIELDS.items():
        if v0.HasField(field):
            setattr(v1_layer.transform_param, target, getattr(v0, field))
    return fully_compatible


def _set_path(message, dotted, value):
    """Set ``message.<dotted>`` to ``value``: append if repeated, copy if a message."""
    *parents, name = dotted.split(".")
    for parent in parents:
        message = getattr(message, parent)
    field = message.DESCRIPTOR.fields_by_name[name]
    if field.is_repeated:
        getattr(message, name).append(value)
    elif field.type == field.TYPE_MESSAGE:
        getattr(message, name).CopyFrom(value)
    else:
        setattr(message, name, value)


# -- data transformation fields -------------------------------------------------
def net_needs_data_upgrade(param):
    """True iff a V1 Data/ImageData/WindowData layer sets scale, mean_file,
    crop_size or mirror in its own parameter message.

    Like Caffe, only V1 ``layers`` are looked at: the same fields in a
    current-format ``layer`` are left alone (and ignored by the data layers).
    """
    for layer in param.layers:
        sub = DATA_LAYER_PARAMS.get(layer.type)
        if sub is None:
            continue
        own = getattr(layer, sub)
        if any(own.HasField(f) for f in DEPRECATED_TRANSFORM_FIELDS):
            return True
    return False


def upgrade_net_data_transformation(param):
    """Move deprecated transformation fields of V1 data layers, in place,
    into the layer's ``transform_param``."""
    for layer in param.layers:
        sub = DATA_LAYER_PARAMS.get(layer.type)
        if sub is None:
            continue
        own = getattr(layer, sub)
        # Caffe touches both messages of every such layer, so each ends up
        # present (possibly empty) afterwards.
        own.SetInParent()
        layer.transform_param.SetInParent()
        for field in DEPRECATED_TRANSFORM_FIELDS:
            if own.HasField(field):
                setattr(layer.transform_param, field, getattr(own, field))
                own.ClearField(field)


# -- V1 → current -----------------------------------------------------------------
def net_needs_v1_to_v2_upgrade(param):
    """True iff the net has any V1 ``layers`` entries."""
    return len(param.layers) > 0


def v1_layer_type_name(enum_value):
    """The current type string of a V1 layer-type enum value.

    ``v1_layer_type_name(V1LayerParameter.CONVOLUTION) == "Convolution"``;
    NONE gives "".
    """
    try:
        return V1_LAYER_TYPE_NAMES[enum_value]
    except (KeyError, TypeError):
        raise KaffeFormatError(
            "is not a known V1 layer type", field="layers.type",
            received=enum_value,
            expected="a V1LayerParameter.LayerType value",
            fix="use one of " + ", ".join(
                V1.LayerType.Name(v) for v in V1_LAYER_TYPE_NAMES)) from None


def upgrade_v1_net(param, path=None):
    """Replace the net's V1 ``layers`` by current ``layer`` entries, in place.

    Every other net-level field is kept as it is.

    Raises:
        KaffeFormatError: the net has both ``layer`` and ``layers``.
    """
    if len(param.layer) > 0:
        first = param.layers[0] if len(param.layers) else None
        raise KaffeFormatError(
            "cannot be upgraded: the definition has both 'layer' and "
            "'layers' entries. The current format defines layer { type: "
            "'Layer' ... }, not layers { type: LAYER ... }",
            file=path, layer=first.name if first is not None else None,
            layer_type=_v1_type_label(first) if first is not None else None,
            field="layers",
            fix="manually switch the 'layers' entries to the 'layer' format "
                "(string types such as 'Convolution', param { lr_mult } "
                "instead of blobs_lr)")
    for v1_layer in param.layers:
        upgrade_v1_layer(v1_layer, param.layer.add())
    del param.layers[:]


def upgrade_v1_layer(v1_layer, layer):
    """Fill ``layer`` (a LayerParameter, cleared) from a V1LayerParameter."""
    layer.Clear()
    layer.bottom.extend(v1_layer.bottom)
    layer.top.extend(v1_layer.top)
    if v1_layer.HasField("name"):
        layer.name = v1_layer.name
    layer.include.extend(v1_layer.include)
    layer.exclude.extend(v1_layer.exclude)
    if v1_layer.HasField("type"):
        layer.type = v1_layer_type_name(v1_layer.type)
    layer.blobs.extend(v1_layer.blobs)

    def param_spec(i):
        while len(layer.param) <= i:
            layer.param.add()
        return layer.param[i]

    for i, name in enumerate(v1_layer.param):
        param_spec(i).name = name
    for i, mode in enumerate(v1_layer.blob_share_mode):
        param_spec(i).share_mode = caffe_pb2.ParamSpec.DimCheckMode.Value(
            V1.DimCheckMode.Name(mode))
    for i, lr in enumerate(v1_layer.blobs_lr):
        param_spec(i).lr_mult = lr
    for i, decay in enumerate(v1_layer.weight_decay):
        param_spec(i).decay_mult = decay
    layer.loss_weight.extend(v1_layer.loss_weight)
    for name in V1_PARAM_MESSAGES:
        if v1_layer.HasField(name):
            getattr(layer, name).CopyFrom(getattr(v1_layer, name))
    if v1_layer.HasField("layer"):
        logger.error("Input NetParameter has V0 layer -- ignoring.")


# -- input fields → Input layer -----------------------------------------------------
def net_needs_input_upgrade(param):
    """True iff the net declares inputs with net-level ``input`` fields."""
    return len(param.input) > 0


def upgrade_net_input(param, path=None):
    """Turn net-level input fields, in place, into a first ``Input`` layer.

    The layer is named "input", has one top per ``input`` and takes its
    shapes from ``input_shape`` (one per input) or else ``input_dim`` (four
    per input). Inputs with no shape at all (old .caffemodel files) are just
    dropped. The input fields are cleared.
    """
    names = list(param.input)
    has_shape = len(param.input_shape) > 0
    has_dim = len(param.input_dim) > 0
    _check_input_fields(param, path)
    if has_shape or has_dim:
        layer = param.layer.add()
        layer.name = "input"
        layer.type = "Input"
        layer.top.extend(names)
        for i in range(len(names)):
            if has_shape:
                layer.input_param.shape.add().CopyFrom(param.input_shape[i])
            else:
                layer.input_param.shape.add().dim.extend(
                    param.input_dim[4 * i:4 * i + 4])
        # Move the new (last) layer to the front, since every other layer
        # may read it. A stable sort on "is not the new layer" reorders the
        # entries without copying them (weights can be large); sort() calls
        # the key once per entry, in order.
        is_new = iter([False] * (len(param.layer) - 1) + [True])
        param.layer.sort(key=lambda _layer: not next(is_new))
    param.ClearField("input")
    param.ClearField("input_shape")
    param.ClearField("input_dim")


def _check_input_fields(param, path):
    names = list(param.input)
    n_shape, n_dim = len(param.input_shape), len(param.input_dim)
    if n_shape and n_dim:
        raise KaffeFormatError(
            "and input_dim are both given; a net sets its input shapes "
            "with one or the other", file=path, field="input_shape",
            received=f"{n_shape} input_shape and {n_dim} input_dim",
            fix="keep input_shape { dim: ... } (one per input) and delete "
                "the input_dim lines")
    if n_shape and n_shape != len(names):
        raise KaffeFormatError(
            "must appear exactly once per input", file=path,
            field="input_shape", received=n_shape,
            expected=f"{len(names)} (one per input: "
                     f"{', '.join(names)})",
            fix="give each 'input:' its own input_shape { dim: ... }")
    if n_dim and n_dim != 4 * len(names):
        raise KaffeFormatError(
            "must give exactly 4 dimensions (num, channels, height, width) "
            "per input", file=path, field="input_dim", received=n_dim,
            expected=f"{4 * len(names)} for {len(names)} input(s): "
                     f"{', '.join(names)}",
            fix="write four input_dim lines after each 'input:', or use "
                "input_shape { dim: ... } per input")


# -- BatchNorm param specs ------------------------------------------------------
def net_needs_batchnorm_upgrade(param):
    """True iff a BatchNorm layer lists exactly 3 ``param`` specs (the old way
    of freezing its statistics)."""
    return any(layer.type == "BatchNorm" and len(layer.param) == 3
               for layer in param.layer)


def upgrade_net_batchnorm(param):
    """Set lr_mult and decay_mult to 0, in place, on the 3 param specs of every
    BatchNorm layer that lists exactly 3; other ParamSpec fields are kept."""
    for layer in param.layer:
        if layer.type == "BatchNorm" and len(layer.param) == 3:
            for spec in layer.param:
                spec.lr_mult = 0.0
                spec.decay_mult = 0.0


# -- solvers ----------------------------------------------------------------------
def solver_needs_type_upgrade(solver_param):
    """True iff the solver sets the deprecated ``solver_type`` enum."""
    return solver_param.HasField("solver_type")


def upgrade_solver_type(solver_param, path=None):
    """Replace ``solver_type`` (enum) by ``type`` (string), in place.

    Returns:
        False (and logs) if there was no solver_type to upgrade.

    Raises:
        KaffeFormatError: both ``solver_type`` and ``type`` are set (Caffe
            refuses this even when the two agree).
    """
    if solver_param.HasField("solver_type") and solver_param.HasField("type"):
        old = caffe_pb2.SolverParameter.SolverType.Name(solver_param.solver_type)
        raise KaffeFormatError(
            "(deprecated enum) and type (string) cannot both be specified",
            file=path, field="solver_type",
            received=f"solver_type: {old} and type: '{solver_param.type}'",
            fix="delete the solver_type line and keep type: "
                f"'{SOLVER_TYPE_NAMES[solver_param.solver_type]}'")
    if not solver_param.HasField("solver_type"):
        logger.error("Warning: solver type already up to date. ")
        return False
    solver_param.type = SOLVER_TYPE_NAMES[solver_param.solver_type]
    solver_param.ClearField("solver_type")
    return True


def upgrade_solver_as_needed(param, path=None):
    """Upgrade a SolverParameter in place, as Caffe's UpgradeSolverAsNeeded.

    Returns:
        True if the solver was changed.
    """
    if not solver_needs_type_upgrade(param):
        return False
    logger.info("Attempting to upgrade input file specified using deprecated "
                "'solver_type' field (enum)': %s", _source(path))
    upgrade_solver_type(param, path)
    logger.info("Successfully upgraded file specified using deprecated "
                "'solver_type' field (enum) to 'type' field (string).")
    logger.warning("Note that future Caffe releases will only support "
                   "'type' field (string) for a solver's type.")
    return True


def upgrade_snapshot_prefix(solver_param, solver_path):
    """Fill in or complete ``snapshot_prefix`` from the solver file's path.

    - Unset: the solver file's path without its extension
      (``models/x/solver.prototxt`` → ``models/x/solver``).
    - An existing directory: ``<dir>/<solver file name without extension>``.
    - Otherwise: unchanged. Nothing is done without a ``solver_path``.

    Returns:
        True if snapshot_prefix was changed.
    """
    if solver_path is None:
        return False
    solver_path = os.fspath(solver_path)
    if not solver_param.HasField("snapshot_prefix"):
        solver_param.snapshot_prefix = os.path.splitext(solver_path)[0]
        logger.info("snapshot_prefix was not specified and is set to %s",
                    solver_param.snapshot_prefix)
        return True
    if os.path.isdir(solver_param.snapshot_prefix):
        stem = os.path.splitext(os.path.basename(solver_path))[0]
        solver_param.snapshot_prefix = os.path.join(
            solver_param.snapshot_prefix, stem)
        logger.info("snapshot_prefix was a directory and is replaced to %s",
                    solver_param.snapshot_prefix)
        return True
    return False
