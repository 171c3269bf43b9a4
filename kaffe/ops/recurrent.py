"""The recurrences of Caffe's RNN, LSTM and LSTMUnit layers
(``src/caffe/layers/{rnn,lstm,lstm_unit}_layer.cpp``).

Caffe unrolls RNN and LSTM into an internal net over T timesteps; these
functions compute the same thing directly. Inputs are time-major:
x (T, N, D) (the layer's input flattened from axis 2), cont (T, N), the
initial states (N, H), an optional static input x_static (N, D_s) that is
added at every timestep, and a dict of parameters named as Caffe's unrolled
net names them. With h_conted = cont_t · h_{t−1} (Caffe's Scale layer):

LSTM (params W_xc (4H, D), b_c (4H,), W_hc (4H, H), [W_xc_static (4H, D_s)]):

    gates_t = W_hc·h_conted + (W_xc·x_t + b_c) [+ W_xc_static·x_static]
    i, f, o = σ(gates_t[0:H]), cont_t·σ(gates_t[H:2H]), σ(gates_t[2H:3H])
    g = tanh(gates_t[3H:4H])            (gate order i, f, o, g)
    c_t = f·c_{t−1} + i·g,   h_t = o·tanh(c_t)

RNN (params W_xh (H, D), b_h (H,), W_hh (H, H), W_ho (H, H), b_o (H,),
[W_xh_static (H, D_s)]):

    h_t = tanh(W_hh·h_conted + (W_xh·x_t + b_h) [+ W_xh_static·x_static])
    o_t = tanh(W_ho·h_t + b_o)

σ is 1 / (1 + e^−x) and tanh is xp.tanh (Caffe's CPU unit writes it
2σ(2x) − 1: equal to rounding). The LSTM unit's backward is Caffe's CPU
formula: with f = cont·σ(f'), the forget gate's gradient is
c_term·c_{t−1}·f·(1 − f). It is the exact derivative for binary cont (Caffe's
documented use); for other values of cont it is what Caffe's CPU code
computes, not the true derivative (Caffe's GPU code differs there).

Gradients come back as dicts keyed by parameter name, plus "x", "x_static",
"h_0" and "c_0" (the gradients with respect to the initial states, which the
layers compute but Caffe never passes on to their bottoms).
"""
from ..backend import array_module


def sigmoid(x):
    """1 / (1 + e^−x) as Caffe's LSTM unit computes it, without overflow:
    e^x / (1 + e^x) for x < 0."""
    xp = array_module(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def lstm_gate_activations(gates, cont):
    """Gate inputs (…, N, 4H) → activations [i, f, o, g], f scaled by cont
    (…, N)."""
    xp = array_module(gates)
    hidden = gates.shape[-1] // 4
    acts = xp.empty_like(gates)
    acts[..., :3 * hidden] = sigmoid(gates[..., :3 * hidden])
    acts[..., 3 * hidden:] = xp.tanh(gates[..., 3 * hidden:])
    acts[..., hidden:2 * hidden] *= cont[..., None]
    return acts


def lstm_unit_forward(c_prev, acts):
    """c = f·c_prev + i·g and h = o·tanh(c) from the gate activations."""
    xp = array_module(c_prev)
    i, f, o, g = _split_gates(acts)
    c = f * c_prev + i * g
    h = o * xp.tanh(c)
    return c, h


def lstm_unit_backward(c_prev, acts, c, dc, dh):
    """(dc_prev, dgates) of one LSTM unit, given dE/dc and dE/dh (its tops)."""
    xp = array_module(c_prev)
    i, f, o, g = _split_gates(acts)
    tanh_c = xp.tanh(c)
    c_term = dc + dh * o * (1 - tanh_c * tanh_c)
    dgates = xp.empty_like(acts)
    di, df, do, dg = _split_gates(dgates)
    di[...] = c_term * g * i * (1 - i)
    df[...] = c_term * c_prev * f * (1 - f)
    do[...] = dh * tanh_c * o * (1 - o)
    dg[...] = c_term * i * (1 - g * g)
    return c_term * f, dgates


def _split_gates(a):
    hidden = a.shape[-1] // 4
    return tuple(a[..., k * hidden:(k + 1) * hidden] for k in range(4))


def _project(x, w, b, x_static, w_static):
    """(W·x_t + b for every t, W_static·x_static or None)."""
    x_part = x @ w.T + b
    static = None if x_static is None else x_static @ w_static.T
    return x_part, static


def _project_backward(dpre, x, w, x_static, w_static, names, grads):
    """Gradients of ``_project`` given dE/d(pre-activation) (T, N, K)."""
    w_name, b_name, static_name = names
    rows = dpre.reshape(-1, dpre.shape[-1])
    grads[w_name] = rows.T @ x.reshape(rows.shape[0], -1)
    grads[b_name] = rows.sum(axis=0)
    grads["x"] = dpre @ w
    if x_static is not None:
        per_stream = dpre.sum(axis=0)
        grads[static_name] = per_stream.T @ x_static
        grads["x_static"] = per_stream @ w_static


def _conted(cont_t, h_prev):
    return cont_t[:, None] * h_prev


def lstm_forward(x, cont, h0, c0, params, x_static=None):
    """Run the LSTM over T timesteps.

    Returns (h (T, N, H), c (T, N, H), cache for ``lstm_backward``).
    """
    xp = array_module(x)
    w_hc = params["W_hc"]
    x_part, static = _project(x, params["W_xc"], params["b_c"], x_static,
                              params.get("W_xc_static"))
    steps, streams = cont.shape
    hidden = w_hc.shape[1]
    h = xp.empty((steps, streams, hidden), dtype=x_part.dtype)
    c = xp.empty_like(h)
    acts = xp.empty_like(x_part)
    h_prev, c_prev = h0, c0
    for t in range(steps):
        gates = _conted(cont[t], h_prev) @ w_hc.T + x_part[t]
        if static is not None:
            gates += static
        acts[t] = lstm_gate_activations(gates, cont[t])
        c[t], h[t] = lstm_unit_forward(c_prev, acts[t])
        h_prev, c_prev = h[t], c[t]
    return h, c, (acts, h, c, h0, c0)


def lstm_backward(dh_top, x, cont, params, cache, x_static=None):
    """Gradients of ``lstm_forward`` given dE/dh (T, N, H) (none from c)."""
    xp = array_module(dh_top)
    acts, h, c, h0, c0 = cache
    w_hc = params["W_hc"]
    dgates = xp.empty_like(acts)
    dw_hc = xp.zeros_like(w_hc)
    dh_next = xp.zeros_like(h0)
    dc_next = xp.zeros_like(c0)
    for t in reversed(range(cont.shape[0])):
        h_prev, c_prev = (h[t - 1], c[t - 1]) if t else (h0, c0)
        dc_next, dgates[t] = lstm_unit_backward(
            c_prev, acts[t], c[t], dc_next, dh_top[t] + dh_next)
        dw_hc += dgates[t].T @ _conted(cont[t], h_prev)
        dh_next = _conted(cont[t], dgates[t] @ w_hc)
    grads = {"W_hc": dw_hc, "h_0": dh_next, "c_0": dc_next}
    _project_backward(dgates, x, params["W_xc"], x_static,
                      params.get("W_xc_static"),
                      ("W_xc", "b_c", "W_xc_static"), grads)
    return grads


def rnn_forward(x, cont, h0, params, x_static=None):
    """Run the RNN over T timesteps.

    Returns (o (T, N, H), h (T, N, H), cache for ``rnn_backward``).
    """
    xp = array_module(x)
    w_hh = params["W_hh"]
    x_part, static = _project(x, params["W_xh"], params["b_h"], x_static,
                              params.get("W_xh_static"))
    h = xp.empty_like(x_part)
    h_prev = h0
    for t in range(cont.shape[0]):
        pre = _conted(cont[t], h_prev) @ w_hh.T + x_part[t]
        if static is not None:
            pre += static
        h[t] = xp.tanh(pre)
        h_prev = h[t]
    o = xp.tanh(h @ params["W_ho"].T + params["b_o"])
    return o, h, (o, h, h0)


def rnn_backward(do, x, cont, params, cache, x_static=None):
    """Gradients of ``rnn_forward`` given dE/do (T, N, H)."""
    xp = array_module(do)
    o, h, h0 = cache
    w_hh = params["W_hh"]
    do_pre = do * (1 - o * o)
    rows = do_pre.reshape(-1, do_pre.shape[-1])
    grads = {"W_ho": rows.T @ h.reshape(rows.shape[0], -1),
             "b_o": rows.sum(axis=0)}
    dh_from_o = do_pre @ params["W_ho"]
    dpre = xp.empty_like(h)
    dw_hh = xp.zeros_like(w_hh)
    dh_next = xp.zeros_like(h0)
    for t in reversed(range(cont.shape[0])):
        h_prev = h[t - 1] if t else h0
        dpre[t] = (dh_from_o[t] + dh_next) * (1 - h[t] * h[t])
        dw_hh += dpre[t].T @ _conted(cont[t], h_prev)
        dh_next = _conted(cont[t], dpre[t] @ w_hh)
    grads["W_hh"] = dw_hh
    grads["h_0"] = dh_next
    _project_backward(dpre, x, params["W_xh"], x_static,
                      params.get("W_xh_static"),
                      ("W_xh", "b_h", "W_xh_static"), grads)
    return grads
