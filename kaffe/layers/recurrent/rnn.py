"""RNN: a simple (Elman) recurrence over T timesteps (rnn_layer.cpp)."""
from ...core.registry import register_layer
from ...ops.recurrent import rnn_backward, rnn_forward
from .recurrent import RecurrentLayer


@register_layer("RNN")
class RNNLayer(RecurrentLayer):
    """h_t = tanh(W_hh·(cont_t·h_{t−1}) + W_xh·x_t + b_h
    [+ W_xh_static·x_static]), output o_t = tanh(W_ho·h_t + b_o)
    (see kaffe.ops.recurrent).

    Reads recurrent_param (see RecurrentLayer); H = num_output.
    Blobs: [0] W_xh (H, D), [1] b_h (H,), [2] W_xh_static (H, D_s) with a
    static input, then W_hh (H, H), W_ho (H, H), b_o (H,).
    Shape: x (T, N, …), cont (T, N), [x_static (N, …)], [h_0 (1, N, H)]
    → o (T, N, H), [h_T (1, N, H)].
    """

    state_names = ("h",)

    def param_specs(self, hidden, x_dim, static_dim):
        specs = [("W_xh", (hidden, x_dim), "weight_filler"),
                 ("b_h", (hidden,), "bias_filler")]
        if static_dim is not None:
            specs.append(("W_xh_static", (hidden, static_dim),
                          "weight_filler"))
        specs += [("W_hh", (hidden, hidden), "weight_filler"),
                  ("W_ho", (hidden, hidden), "weight_filler"),
                  ("b_o", (hidden,), "bias_filler")]
        return specs

    def run_forward(self, x, cont, states, params, x_static):
        o, h, cache = rnn_forward(x, cont, states[0], params, x_static)
        return o, [h[-1]], cache

    def run_backward(self, dtop, x, cont, params, cache, x_static):
        return rnn_backward(dtop, x, cont, params, cache, x_static)
