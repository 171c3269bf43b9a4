"""LSTMUnit: one LSTM timestep from gate inputs (lstm_unit_layer.cpp)."""
from ...core.layer import Layer
from ...core.registry import register_layer
from ...ops.recurrent import (lstm_gate_activations, lstm_unit_backward,
                              lstm_unit_forward)


@register_layer("LSTMUnit")
class LSTMUnitLayer(Layer):
    """c = cont·σ(f')·c_prev + σ(i')·tanh(g'), h = σ(o')·tanh(c), with the gate
    inputs [i', f', o', g'] in blocks of H along the last axis.

    No parameters. cont scales the forget gate (0 = start a sequence afresh)
    and receives no gradient; the forget gate's gradient is Caffe's CPU
    formula (see kaffe.ops.recurrent).
    Shape: c_prev (1, N, H), gates (1, N, 4H), cont (1, N) → c, h (1, N, H).
    """

    exact_num_bottom_blobs = 3
    exact_num_top_blobs = 2

    def allow_force_backward(self, bottom_index):
        return bottom_index != 2

    def reshape(self, bottom, top):
        n = bottom[0].shape[1] if bottom[0].num_axes > 1 else None
        for index, (name, axes) in enumerate(
                (("c_prev", 3), ("gates", 3), ("cont", 2))):
            blob = bottom[index]
            if blob.num_axes != axes or blob.shape[:2] != (1, n):
                layout = "(1, N, H)" if index == 0 else (
                    "(1, N, 4H)" if index == 1 else "(1, N)")
                raise self.shape_error(
                    f"must be {layout} with N = c_prev's shape[1]",
                    field=f"bottom[{index}] ({name})", received=blob.shape,
                    expected=f"{axes} axes, the first two (1, {n})")
        hidden = bottom[0].shape[2]
        if bottom[1].shape[2] != 4 * hidden:
            raise self.shape_error(
                "must hold the 4 gate inputs i, f, o, g of H = c_prev's "
                "shape[2] each", field="bottom[1] (gates)",
                received=bottom[1].shape, expected=f"shape[2] = {4 * hidden}")
        top[0].reshape_like(bottom[0])
        top[1].reshape_like(bottom[0])

    def forward(self, bottom, top):
        acts = lstm_gate_activations(bottom[1].data, bottom[2].data)
        top[0].data[...], top[1].data[...] = lstm_unit_forward(
            bottom[0].data, acts)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[2]:
            raise self.no_gradient_error(2, "the sequence continuation indicators (cont)")
        if not (propagate_down[0] or propagate_down[1]):
            return
        acts = lstm_gate_activations(bottom[1].data, bottom[2].data)
        dc_prev, dgates = lstm_unit_backward(
            bottom[0].data, acts, top[0].data, top[0].diff, top[1].diff)
        if propagate_down[0]:
            bottom[0].diff[...] = dc_prev
        if propagate_down[1]:
            bottom[1].diff[...] = dgates
