"""Net's weights: copying them in from files and nets, writing them out.

Layers are matched by name, as in Caffe (``CopyTrainedLayersFrom``,
``ShareTrainedLayersWith``, ``ToProto``); a .caffemodel is a binary
NetParameter or Caffe's HDF5 layout, told apart by content.
"""
import logging

from ..errors import KaffeShapeError
from ..proto import caffe_pb2
from .blob import proto_shape

log = logging.getLogger("kaffe")


class NetWeights:
    """Net's weight I/O (a part of :class:`Net`)."""

    def copy_from(self, path):
        """Load weights from a .caffemodel: binary NetParameter or HDF5.

        As Caffe, the file's content decides (the HDF5 signature), not its
        name. Layers are matched by name; source layers this net lacks are
        skipped with a log line; a shape mismatch raises KaffeShapeError.
        """
        from ..proto.hdf5 import is_hdf5
        if is_hdf5(path):
            self.load_hdf5(path)
            return
        from ..proto.io import load_weights
        self.copy_trained_layers_from(load_weights(path), path)

    def load_hdf5(self, path):
        """Load weights from an HDF5 file in Caffe's layout (pycaffe's
        load_hdf5; see kaffe.proto.hdf5). Needs h5py (kaffe[hdf5])."""
        from ..proto.hdf5 import load_hdf5
        load_hdf5(self, path)

    def save_hdf5(self, path, write_diff=False):
        """Write the weights (and diffs) as HDF5 in Caffe's layout,
        atomically (pycaffe's save_hdf5). Needs h5py (kaffe[hdf5])."""
        from ..proto.hdf5 import save_hdf5
        save_hdf5(self, path, write_diff)

    def copy_trained_layers_from(self, param, path=None):
        """Copy the blobs of ``param``'s layers into same-named layers here."""
        for source_layer in param.layer:
            name = source_layer.name
            if name not in self._layer_dict:
                log.info("Ignoring source layer %s", name)
                continue
            target = self._layer_dict[name]
            if len(target.blobs) != len(source_layer.blobs):
                raise KaffeShapeError(
                    "has a different number of parameter blobs in the weight "
                    "file", file=path, layer=name, layer_type=target.type,
                    received=f"{len(source_layer.blobs)} blob(s) in the file",
                    expected=f"{len(target.blobs)} (as the net defines it)",
                    fix="check bias_term and that the file belongs to this net")
            for j, (blob, proto) in enumerate(zip(target.blobs,
                                                  source_layer.blobs)):
                if not blob.shape_equals_proto(proto):
                    raise KaffeShapeError(
                        f"cannot copy param {j} weights: shape mismatch",
                        file=path, layer=name, layer_type=target.type,
                        received=_shape_text(proto_shape(proto)) +
                        " in the file", expected=blob.shape_string() +
                        " in the net", fix="to learn this layer's parameters "
                        "from scratch rather than copying them, rename the "
                        "layer; otherwise make the layer's definition match "
                        "the file (num_output, kernel, group, input size)")
                blob.from_proto(proto, reshape=False)

    def share_trained_layers_with(self, other):
        """Make same-named layers here use ``other``'s parameter data."""
        for name, source in other._layer_dict.items():
            if name not in self._layer_dict:
                log.info("Ignoring source layer %s", name)
                continue
            target = self._layer_dict[name]
            if len(target.blobs) != len(source.blobs):
                raise KaffeShapeError(
                    "has an incompatible number of parameter blobs",
                    layer=name, received=len(source.blobs),
                    expected=len(target.blobs))
            for j, (t, s) in enumerate(zip(target.blobs, source.blobs)):
                if t.shape != s.shape:
                    raise KaffeShapeError(
                        f"cannot share param {j} weights: shape mismatch",
                        layer=name, received=s.shape_string(),
                        expected=t.shape_string())
                t.share_data(s)

    share_with = share_trained_layers_with

    def to_proto(self, write_diff=False):
        """The net as a NetParameter with every layer's blobs (Caffe's ToProto)."""
        param = caffe_pb2.NetParameter(name=self.name)
        for layer in self.layers:
            param.layer.append(layer.to_proto(write_diff))
        return param

    def save(self, path, write_diff=False):
        """Write the weights as a binary .caffemodel (atomically)."""
        from ..proto.io import write_binary
        write_binary(self.to_proto(write_diff), path)


def _shape_text(shape, most=32):
    """Caffe's shape_string ("2 3 (6)"); a shape from a hostile file (5,000
    axes of 2^63) is shortened and its count given as a power of two."""
    count = 1
    for d in shape:
        count *= d
    dims = "".join(f"{d} " for d in shape[:most])
    if len(shape) > most:
        dims += f"... ({len(shape)} axes) "
    if count.bit_length() > 128:
        return dims + f"(about 2^{count.bit_length() - 1})"
    return dims + f"({count})"
