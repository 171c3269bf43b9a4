"""LSTM: long short-term memory over T timesteps (Caffe's lstm_layer.cpp)."""
from ...core.registry import register_layer
from ...ops.recurrent import lstm_backward, lstm_forward
from .recurrent import RecurrentLayer


@register_layer("LSTM")
class LSTMLayer(RecurrentLayer):
    """h_t = o·tanh(c_t), c_t = cont_t·σ(f')·c_{t−1} + σ(i')·tanh(g'), with the
    gate inputs [i', f', o', g'] = W_hc·(cont_t·h_{t−1}) + W_xc·x_t + b_c
    [+ W_xc_static·x_static] (see kaffe.ops.recurrent).

    Reads recurrent_param (see RecurrentLayer); H = num_output.
    Blobs: [0] W_xc (4H, D), [1] b_c (4H,), [2] W_xc_static (4H, D_s) with a
    static input, then W_hc (4H, H); gate blocks in the order i, f, o, g.
    Shape: x (T, N, …), cont (T, N), [x_static (N, …)], [h_0, c_0 (1, N, H)]
    → h (T, N, H), [h_T, c_T (1, N, H)].
    """

    state_names = ("h", "c")

    def param_specs(self, hidden, x_dim, static_dim):
        gates = 4 * hidden
        specs = [("W_xc", (gates, x_dim), "weight_filler"),
                 ("b_c", (gates,), "bias_filler")]
        if static_dim is not None:
            specs.append(("W_xc_static", (gates, static_dim), "weight_filler"))
        specs.append(("W_hc", (gates, hidden), "weight_filler"))
        return specs

    def run_forward(self, x, cont, states, params, x_static):
        h, c, cache = lstm_forward(x, cont, states[0], states[1], params,
                                   x_static)
        return h, [h[-1], c[-1]], cache

    def run_backward(self, dtop, x, cont, params, cache, x_static):
        return lstm_backward(dtop, x, cont, params, cache, x_static)
