"""NetSpec: write a Caffe net as Python calls (pycaffe's ``caffe.net_spec``).

::

    import kaffe as caffe
    from kaffe import layers as L, params as P

    n = caffe.NetSpec()
    n.data, n.label = L.DummyData(shape=[dict(dim=[64, 1, 28, 28]),
                                         dict(dim=[64])], ntop=2)
    n.conv1 = L.Convolution(n.data, kernel_size=5, num_output=20,
                            weight_filler=dict(type="xavier"))
    n.pool1 = L.Pooling(n.conv1, kernel_size=2, stride=2, pool=P.Pooling.MAX)
    n.relu1 = L.ReLU(n.pool1, in_place=True)
    n.loss = L.SoftmaxWithLoss(n.relu1, n.label)
    print(n.to_proto())          # a caffe_pb2.NetParameter

``L.<Type>(*bottoms, **kwargs)`` describes one layer of type ``<Type>`` (any
name: built-in, ``Python``, or a fork's type) and returns its top — a
:class:`Top` — or a tuple of ``ntop`` tops, or the :class:`Function` itself
when ``ntop=0``. Keyword arguments become fields of the LayerParameter, with
pycaffe's routing rule (:func:`route`):

* a key ending in ``param`` (``param``, ``convolution_param``,
  ``transform_param`` ...) is a field of the LayerParameter itself;
* any other key goes into the type's own parameter message when that message
  has such a field: the LayerParameter field ending in ``_param`` whose
  message is ``<Type>Parameter`` (``Convolution`` -> ``convolution_param``,
  ``Python`` -> ``python_param``). Types without a message of their own
  (Deconvolution reads ``convolution_param``) must pass it explicitly:
  ``L.Deconvolution(x, convolution_param=dict(num_output=8, kernel_size=4))``;
* everything else (``name``, ``include``, ``loss_weight``,
  ``propagate_down`` ...) is a field of the LayerParameter.

Values map onto the protobuf as pycaffe's ``assign_proto`` does: dicts fill
sub-messages, lists fill repeated fields (a list of dicts adds one message
per dict, ``param=[dict(lr_mult=1), dict(lr_mult=2)]``), a single value for a
repeated field is a one-element list (``kernel_size=3``), anything else is
assigned. Two keys are not fields: ``ntop`` (number of tops, default 1) and
``in_place`` (the tops are the bottoms).

Naming follows pycaffe exactly, so generated prototxts match: a top assigned
to a NetSpec attribute takes the attribute's name, other tops are named
``<Type><k>`` with a counter per type (``Convolution1``, ``ReLU2``), and a
layer takes the name of its first top (``<Type><k>`` when it has none).
Layers are written in the order a depth-first walk from each assigned top (in
assignment order) reaches them, every layer after the layers it reads.

``P.<Name>`` is the protobuf message class ``<Name>Parameter`` of
kaffe.proto.caffe_pb2, so its enum values read as pycaffe's do:
``P.Pooling.MAX``, ``P.Eltwise.SUM``, ``P.Filler.FAN_IN``.
"""
import difflib
import importlib
from collections import Counter

from google.protobuf.message import Message

from .core.errors import KaffeConfigError
from .proto import caffe_pb2

__all__ = ["Function", "Layers", "NetSpec", "Parameters", "Top",
           "assign_proto", "layers", "param_name_dict", "params", "to_proto"]

_PARAMETER = "Parameter"
_PARAM = "_param"


def param_name_dict():
    """``{message name without 'Parameter': field name without '_param'}``.

    Built from the LayerParameter fields whose names end in ``_param``, as
    pycaffe's function of the same name: ``{'Convolution': 'convolution',
    'InnerProduct': 'inner_product', 'Python': 'python', ...}``.
    """
    out = {}
    for field in caffe_pb2.LayerParameter.DESCRIPTOR.fields:
        if field.name.endswith(_PARAM) and field.message_type is not None:
            type_name = field.message_type.name
            if type_name.endswith(_PARAMETER):
                type_name = type_name[:-len(_PARAMETER)]
            out[type_name] = field.name[:-len(_PARAM)]
    return out


_PARAM_NAMES = param_name_dict()


def route(type_name, key):
    """Where the keyword ``key`` of a ``type_name`` layer goes: the name of
    the LayerParameter sub-message holding it (``"convolution_param"``), or
    None for the LayerParameter itself (which may lack it too: then
    :func:`assign_proto` says so).
    """
    if key.endswith("param"):
        return None
    stem = _PARAM_NAMES.get(type_name)
    if stem is None:
        return None
    field = stem + _PARAM
    message = caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name[field]
    if key in message.message_type.fields_by_name:
        return field
    return None


def assign_proto(proto, name, val):
    """Set field ``name`` of message ``proto`` from a Python value.

    Lists (and tuples) fill repeated fields — a list of dicts adds one
    sub-message per dict; dicts fill sub-messages; a protobuf message is
    copied; any other value is assigned. A single value given for a repeated
    field counts as a one-element list (``kernel_size=3``).

    Raises:
        KaffeConfigError if ``proto`` has no field ``name`` or refuses the
        value (the caller adds the layer's name).
    """
    field = proto.DESCRIPTOR.fields_by_name.get(name)
    if field is None:
        raise _no_such_field(proto, name)
    is_repeated = _is_repeated(field)
    if is_repeated and not isinstance(val, (list, tuple)):
        val = [val]
    try:
        if isinstance(val, (list, tuple)):
            target = getattr(proto, name)
            for item in val:
                if isinstance(item, dict):
                    _fill(target.add(), item)
                elif isinstance(item, Message):
                    target.add().CopyFrom(item)
                else:
                    target.append(item)
        elif isinstance(val, dict):
            _fill(getattr(proto, name), val)
        elif isinstance(val, Message):
            getattr(proto, name).CopyFrom(val)
        else:
            setattr(proto, name, val)
    except (TypeError, ValueError, AttributeError) as e:
        if isinstance(e, KaffeConfigError):
            raise
        raise KaffeConfigError(
            f"cannot take this value ({e})",
            field=f"{proto.DESCRIPTOR.name}.{name}", received=val,
            expected=_expected(field)) from None


def _fill(message, values):
    for key, value in values.items():
        assign_proto(message, key, value)


def _is_repeated(field):
    # Newer protobuf releases have is_repeated (and deprecate label).
    if hasattr(field, "is_repeated"):
        return field.is_repeated
    return field.label == field.LABEL_REPEATED


def _expected(field):
    if field.message_type is not None:
        return f"a dict of {field.message_type.name} fields"
    if field.enum_type is not None:
        return "one of " + ", ".join(v.name for v in field.enum_type.values)
    kind = {field.TYPE_STRING: "a string", field.TYPE_BYTES: "bytes",
            field.TYPE_BOOL: "a bool", field.TYPE_FLOAT: "a number",
            field.TYPE_DOUBLE: "a number"}.get(field.type, "an integer")
    return kind + (" or a list of them" if _is_repeated(field) else "")


def _no_such_field(proto, name):
    known = list(proto.DESCRIPTOR.fields_by_name)
    close = difflib.get_close_matches(name, known, n=3)
    return KaffeConfigError(
        f"is not a field of {proto.DESCRIPTOR.name}", field=name,
        fix=("did you mean " + " or ".join(f"'{c}'" for c in close) + "?")
        if close else None)


class Top:
    """One output blob of a layer: top ``n`` of Function ``fn``."""

    def __init__(self, fn, n):
        self.fn = fn
        self.n = n

    def to_proto(self):
        """A NetParameter with every layer needed to compute this top."""
        return to_proto(self)

    def _to_proto(self, layers, names, autonames):
        return self.fn._to_proto(layers, names, autonames)

    def __repr__(self):
        return f"<Top {self.n} of {self.fn.type_name}>"


class Function:
    """One layer: its type, its input Tops and its keyword parameters.

    Attributes:
        type_name: the layer type ("Convolution").
        inputs: the bottom Tops.
        params: the keyword arguments, without ``ntop`` and ``in_place``.
        ntop: number of tops (1 unless ``ntop=`` says otherwise).
        in_place: whether the tops are the bottoms (``in_place=True``).
        tops: the Top objects, ``ntop`` of them.
    """

    def __init__(self, type_name, inputs, params):
        self.type_name = type_name
        for index, bottom in enumerate(inputs):
            if not isinstance(bottom, Top):
                # pycaffe's message, word for word (scripts match on it).
                raise TypeError(f"{type_name} input {index} is not a Top "
                                f"(type is {type(bottom)})")
        self.inputs = tuple(inputs)
        self.params = dict(params)
        self.ntop = self.params.pop("ntop", 1)
        self.in_place = self.params.pop("in_place", False)
        self.tops = tuple(Top(self, n) for n in range(self.ntop))

    def _get_name(self, names, autonames):
        """The layer's name: its first top's, or ``<Type><k>`` without tops."""
        if self not in names:
            if self.ntop > 0:
                names[self] = self._get_top_name(self.tops[0], names,
                                                 autonames)
            else:
                autonames[self.type_name] += 1
                names[self] = self.type_name + str(autonames[self.type_name])
        return names[self]

    def _get_top_name(self, top, names, autonames):
        if top not in names:
            type_name = top.fn.type_name
            autonames[type_name] += 1
            names[top] = type_name + str(autonames[type_name])
        return names[top]

    def _to_proto(self, layers, names, autonames):
        """Add this layer (after its inputs' layers) to ``layers``."""
        if self in layers:
            return
        bottoms = []
        for bottom in self.inputs:
            bottom._to_proto(layers, names, autonames)
            bottoms.append(layers[bottom.fn].top[bottom.n])
        layer = caffe_pb2.LayerParameter(type=self.type_name, bottom=bottoms)
        if self.in_place:
            layer.top.extend(layer.bottom)
        else:
            for top in self.tops:
                layer.top.append(self._get_top_name(top, names, autonames))
        layer.name = self._get_name(names, autonames)
        for key, value in self.params.items():
            field = route(self.type_name, key)
            target = layer if field is None else getattr(layer, field)
            try:
                assign_proto(target, key, value)
            except KaffeConfigError as e:
                raise self._error(layer.name, key, e) from None
        layers[self] = layer

    def _error(self, layer_name, key, error):
        """``error`` from assign_proto, with this layer and a fix added."""
        fix = error.fix
        if error.field == key and error.problem.startswith("is not a field"):
            fix = self._where_key_lives(key) or self._close_keys(key) or fix
        details = {"received": error.received} if error.has_received else {}
        return KaffeConfigError(
            f"L.{self.type_name}(..., {key}=...): {error.field} "
            f"{error.problem}", layer=layer_name, layer_type=self.type_name,
            expected=error.expected, fix=fix, **details)

    def _where_key_lives(self, key):
        """A fix naming the *_param messages that have a field ``key``."""
        holders = [field.name for field in
                   caffe_pb2.LayerParameter.DESCRIPTOR.fields
                   if field.name.endswith(_PARAM) and field.message_type
                   and key in field.message_type.fields_by_name]
        if not holders:
            return None
        # Prefer the message named like the type (Deconvolution ->
        # convolution_param) over the order of the schema.
        holders.sort(key=lambda name: _PARAM_NAMES_BY_FIELD[name].lower()
                     not in self.type_name.lower())
        if _PARAM_NAMES_BY_FIELD[holders[0]].lower() in self.type_name.lower():
            holders = holders[:1]
        shown = " or ".join(f"{name}=dict({key}=...)" for name in holders[:3])
        if self.type_name not in _PARAM_NAMES:
            return (f"{self.type_name} has no {self.type_name}Parameter of "
                    f"its own to hold '{key}': pass {shown}")
        return (f"'{key}' is not a field of {self.type_name}Parameter; if "
                f"this layer reads it from another message, pass {shown}")

    def _close_keys(self, key):
        """A 'did you mean' fix from the fields this layer could take."""
        known = list(caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name)
        stem = _PARAM_NAMES.get(self.type_name)
        if stem is not None:
            message = caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name[
                stem + _PARAM].message_type
            known += list(message.fields_by_name)
        close = difflib.get_close_matches(key, known, n=3)
        if not close:
            return None
        return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"

    def __repr__(self):
        return f"<Function {self.type_name} ({self.ntop} top(s))>"


# "convolution_param" -> "Convolution", for every *_param message field.
_PARAM_NAMES_BY_FIELD = {
    field.name: field.message_type.name[:-len(_PARAMETER)]
    if field.message_type.name.endswith(_PARAMETER)
    else field.message_type.name
    for field in caffe_pb2.LayerParameter.DESCRIPTOR.fields
    if field.name.endswith(_PARAM) and field.message_type is not None}


class NetSpec:
    """A set of named Tops; :meth:`to_proto` writes the net that makes them.

    Assigning a Top (or a top-less Function) to an attribute names it::

        n = NetSpec()
        n.data = L.Input(shape=dict(dim=[1, 3, 224, 224]))
        n["conv1"] = L.Convolution(n.data, num_output=8, kernel_size=3)

    Attribute access is how pycaffe names tops, so this class overrides
    ``__setattr__``/``__getattr__``: the names live in the ``tops`` dict.
    """

    def __init__(self):
        object.__setattr__(self, "tops", {})

    def __setattr__(self, name, value):
        if not isinstance(value, (Top, Function)):
            hint = (" (a layer with several tops returns a tuple: assign "
                    "them together, n.a, n.b = L.Type(..., ntop=2))"
                    if isinstance(value, tuple) else "")
            raise TypeError(f"NetSpec.{name} must be a Top made by "
                            f"L.<Type>(...), not {type(value).__name__}"
                            + hint)
        self.tops[name] = value

    def __getattr__(self, name):
        # Only called when normal lookup fails: the tops named so far.
        tops = self.__dict__["tops"]
        if name in tops:
            return tops[name]
        raise AttributeError(f"this NetSpec has no top named '{name}' "
                             f"(it has: {', '.join(tops) or 'none yet'})")

    def __setitem__(self, key, value):
        self.__setattr__(key, value)

    def __getitem__(self, item):
        return self.tops[item]

    def to_proto(self):
        """A NetParameter with the layers computing every assigned top."""
        names = {top: name for name, top in self.tops.items()}
        autonames = Counter()
        layers = {}
        for top in self.tops.values():
            top._to_proto(layers, names, autonames)
        net = caffe_pb2.NetParameter()
        net.layer.extend(layers.values())
        return net


def to_proto(*tops):
    """A NetParameter with the layers computing ``tops`` (all names automatic)."""
    layers = {}
    autonames = Counter()
    for top in tops:
        top._to_proto(layers, {}, autonames)
    net = caffe_pb2.NetParameter()
    net.layer.extend(layers.values())
    return net


class Layers:
    """``L.<Type>(*bottoms, **params)``: describe a layer of type ``<Type>``.

    Returns one Top, a tuple of ``ntop`` Tops, or (``ntop=0``) the Function.
    """

    # __getattr__ because any type name must work: the built-in types, a
    # user's "Python" layers and the custom types of Caffe forks
    # (ROIPooling, SmoothL1Loss ...) that kaffe has never heard of; the type
    # is only checked when a Net is built from the prototxt.
    def __getattr__(self, type_name):
        if type_name.startswith("_"):
            # Not a layer type: keep Python's protocols (copy, pickle,
            # introspection) working.
            raise AttributeError(type_name)
        from .layers import FAMILIES
        if type_name in FAMILIES:
            # This object is also the attribute kaffe.layers, where the
            # package of layer implementations lives by module name.
            # `import kaffe.layers.vision.convolution as m` and the path
            # kaffe.layers.vision... look the families up as attributes; the
            # lowercase family names are no layer types.
            return importlib.import_module(f"{__package__}.layers.{type_name}")

        def layer_fn(*args, **kwargs):
            fn = Function(type_name, args, kwargs)
            if fn.ntop == 0:
                return fn
            if fn.ntop == 1:
                return fn.tops[0]
            return fn.tops
        layer_fn.__name__ = layer_fn.__qualname__ = type_name
        layer_fn.__doc__ = f"Describe a {type_name} layer (see kaffe.net_spec)."
        return layer_fn

    def __repr__(self):
        return "<kaffe.layers: L.<Type>(*bottoms, **params) makes a layer>"


class Parameters:
    """``P.<Name>`` is caffe_pb2's ``<Name>Parameter`` message class, so
    that ``P.Pooling.MAX``, ``P.Eltwise.SUM`` and ``P.Pooling.PoolMethod``
    read as in pycaffe."""

    def __init__(self):
        for name in caffe_pb2.DESCRIPTOR.message_types_by_name:
            if name.endswith(_PARAMETER) and name != _PARAMETER:
                setattr(self, name[:-len(_PARAMETER)],
                        getattr(caffe_pb2, name))

    def __repr__(self):
        return "<kaffe.params: P.<Name> is caffe_pb2.<Name>Parameter>"


layers = Layers()
params = Parameters()
