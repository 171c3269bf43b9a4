"""Lstm: the OCR forks' LSTM layer (distinct from BVLC's ``LSTM``)."""
import logging

from ...core.backend import array_module
from ...core.filler import fill
from ...core.layer import Layer
from ...core.registry import register_layer
from ...ops.recurrent import (lstm_gate_activations, lstm_unit_backward,
                              lstm_unit_forward)

log = logging.getLogger("kaffe")

FIELD = "lstm_param"


@register_layer("Lstm")
class OcrLstmLayer(Layer):
    """A unidirectional LSTM over a time-major sequence, state starting at 0.

    From the CRNN-style OCR Caffe forks (senlinuc/caffe_ocr, after CTPN's
    and junhyukoh's ``lstm_layer.cpp``): BVLC's ``LSTM`` takes a
    continuation-marker bottom and unrolls a net; this ``Lstm`` takes only
    the sequence. Reads lstm_param: num_output H, clipping_threshold (0:
    off; else backward clips every pre-activation gate derivative to
    [−t, t], as the fork), weight_filler, bias_filler.
    Bottom: x (T, N, …), I = the product of the axes after the second.
    Top: h (T, N, H). Blobs: [0] W_i (4H, I), [1] W_h (4H, H), [2] b (4H,),
    gates in the order i, f, o, g:

        a_t = W_i·x_t + b + W_h·h_{t−1}   (no recurrent term at t = 0)
        i, f, o = σ(a_t[0:H]), σ(a_t[H:2H]), σ(a_t[2H:3H]);  g = tanh(a_t[3H:])
        c_t = f·c_{t−1} + i·g  (c_{−1} = 0, f = 0 at t = 0);  h_t = o·tanh(c_t)

    For N > 1 the fork's CPU forward adds the recurrent term of the first
    sequence to every sequence (it indexes the N×4H product without the
    sequence offset); kaffe gives each sequence its own, which equals the
    fork for N = 1, the batch of the OCR deploy nets. The fork's optional
    second bottom (state carried over from the previous batch) is not
    supported. Backward: full backpropagation through time; param diffs
    accumulate.
    """

    exact_num_bottom_blobs = 1
    exact_num_top_blobs = 1

    def setup(self, bottom, top):
        p = self.layer_param.lstm_param
        x = bottom[0]
        if x.num_axes < 2:
            raise self.shape_error(
                "input must be (T, N, ...) (time-major)", field="bottom",
                received=x.shape)
        if p.num_output <= 0:
            raise self.config_error(
                "must be > 0", field=f"{FIELD}.num_output",
                received=p.num_output, fix="set the number of hidden units")
        self.refuse_in_place(bottom, top)
        hidden = p.num_output
        inputs = x.count_axes(2)
        shapes = ((4 * hidden, inputs), (4 * hidden, hidden), (4 * hidden,))
        if self.blobs:
            log.info("Skipping parameter initialization")
            if len(self.blobs) != 3:
                raise self.config_error(
                    "has the wrong number of blobs (W_i, W_h, b)",
                    field="blobs", received=len(self.blobs), expected=3)
            for i, (blob, shape) in enumerate(zip(self.blobs, shapes)):
                if blob.shape != shape:
                    raise self.shape_error(
                        "has the wrong shape", field=f"blobs[{i}]",
                        received=blob.shape, expected=shape)
            return
        for shape, name in zip(shapes, ("weight_filler", "weight_filler",
                                        "bias_filler")):
            blob = self.make_blob(shape)
            fill(blob, getattr(p, name), layer=self, field=f"{FIELD}.{name}")
            self.blobs.append(blob)

    def reshape(self, bottom, top):
        x = bottom[0]
        inputs = self.blobs[0].shape[1]
        if x.num_axes < 2 or x.count_axes(2) != inputs:
            raise self.shape_error(
                "input must be (T, N, ...) with as many values per step as "
                "the input weights take", field="bottom", received=x.shape,
                expected=f"(T, N) followed by {inputs} values")
        top[0].reshape(x.shape[:2] + (self.blobs[1].shape[1],))

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = array_module(x)
        steps, streams = x.shape[:2]
        w_i, w_h, b = (blob.data for blob in self.blobs)
        hidden = w_h.shape[1]
        pre = x.reshape(steps, streams, -1) @ w_i.T + b
        acts = xp.empty_like(pre)
        c = xp.empty((steps, streams, hidden), dtype=x.dtype)
        h = top[0].data
        zero = xp.zeros((streams, hidden), dtype=x.dtype)
        h_prev, c_prev = zero, zero
        for t in range(steps):
            gates = pre[t] + h_prev @ w_h.T if t else pre[t]
            cont = xp.full(streams, 1 if t else 0, dtype=x.dtype)
            acts[t] = lstm_gate_activations(gates, cont)
            c[t], h[t] = lstm_unit_forward(c_prev, acts[t])
            h_prev, c_prev = h[t], c[t]
        self.cache = (acts, c)

    def backward(self, top, propagate_down, bottom):
        x = bottom[0].data
        xp = array_module(x)
        acts, c = self.cache
        h = top[0].data
        w_i, w_h = self.blobs[0].data, self.blobs[1].data
        steps, streams, hidden = h.shape
        clip = self.layer_param.lstm_param.clipping_threshold
        dgates = xp.empty_like(acts)
        dh_next = xp.zeros((streams, hidden), dtype=x.dtype)
        dc_next = xp.zeros_like(dh_next)
        zero = xp.zeros_like(dh_next)
        dy = top[0].diff
        for t in reversed(range(steps)):
            c_prev = c[t - 1] if t else zero
            dc_next, dgates[t] = lstm_unit_backward(
                c_prev, acts[t], c[t], dc_next, dy[t] + dh_next)
            if clip > 0:
                xp.clip(dgates[t], -clip, clip, out=dgates[t])
            dh_next = dgates[t] @ w_h
        rows = dgates.reshape(-1, dgates.shape[-1])
        if self.param_needs_backward(0):
            self.blobs[0].diff += rows.T @ x.reshape(rows.shape[0], -1)
        if self.param_needs_backward(1) and steps > 1:
            self.blobs[1].diff += (dgates[1:].reshape(-1, rows.shape[1]).T
                                   @ h[:-1].reshape(-1, hidden))
        if self.param_needs_backward(2):
            self.blobs[2].diff += rows.sum(axis=0)
        if propagate_down[0]:
            bottom[0].diff[...] = (dgates @ w_i).reshape(bottom[0].shape)

    def explain(self, bottoms, tops):
        """The formula line for ``kaffe explain``."""
        steps, streams = bottoms[0].shape[:2]
        inputs = self.blobs[0].shape[1]
        hidden = self.blobs[1].shape[1]
        return (f"{self.name}: {steps} steps × {streams} sequences; gates "
                f"[i f o g] = W_i ({4 * hidden}×{inputs})·x_t + W_h "
                f"({4 * hidden}×{hidden})·h_(t−1) + b; c_t = f·c_(t−1) + "
                f"i·g, h_t = o·tanh(c_t) → ({steps}, {streams}, {hidden})")

    def macs(self, bottoms, tops):
        """Multiply-accumulates per forward, for ``kaffe explain``: the
        4H×I input and 4H×H recurrent products at every step."""
        steps, streams = bottoms[0].shape[:2]
        gates, inputs = self.blobs[0].shape
        hidden = self.blobs[1].shape[1]
        return steps * streams * gates * inputs + \
            max(steps - 1, 0) * streams * gates * hidden
