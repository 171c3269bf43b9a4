"""Transpose: permute a blob's axes (the OCR forks' feature-map → sequence)."""
from ...core.layer import Layer
from ...core.registry import register_layer


@register_layer("Transpose")
class TransposeLayer(Layer):
    """top = bottom with its axes permuted: top axis i is bottom axis dim[i].

    From the CRNN-style OCR Caffe forks (senlinuc/caffe_ocr,
    ``transpose_layer.cpp``), which turn an (N, C, H, W) feature map into a
    (W, H, N, C) sequence with ``dim: 3 dim: 2 dim: 0 dim: 1``. Reads
    transpose_param: dim (repeated, one entry per bottom axis, a
    permutation of 0 … num_axes − 1). Shape: top.shape[i] =
    bottom.shape[dim[i]]. Backward applies the inverse permutation. Not in
    place (as the fork).
    """

    exact_num_bottom_blobs = 1
    exact_num_top_blobs = 1

    def setup(self, bottom, top):
        self.refuse_in_place(bottom, top)
        self.dims = tuple(self.layer_param.transpose_param.dim)

    def reshape(self, bottom, top):
        n = bottom[0].num_axes
        if sorted(self.dims) != list(range(n)):
            raise self.config_error(
                "must list every axis of the bottom once (a permutation)",
                field="transpose_param.dim", received=self.dims,
                expected=f"a permutation of 0 … {n - 1} for the input of "
                         f"shape {bottom[0].shape}")
        self.inverse = tuple(sorted(range(n), key=self.dims.__getitem__))
        top[0].reshape(tuple(bottom[0].shape[d] for d in self.dims))

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data.transpose(self.dims)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = top[0].diff.transpose(self.inverse)

    def explain(self, bottoms, tops):
        """The formula line for ``kaffe explain``."""
        shape = bottoms[0].shape
        moves = ", ".join(f"axis {i} ← {d} ({shape[d]})"
                          for i, d in enumerate(self.dims))
        return (f"{self.name}: axes permuted ({moves}) → "
                f"({', '.join(map(str, tops[0].shape))}), the same values "
                "re-indexed")
