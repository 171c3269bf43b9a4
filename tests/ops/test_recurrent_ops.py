"""kaffe.ops.recurrent: the gradients the layers do not pass on (h_0, c_0)."""
import numpy as np

from kaffe.ops.recurrent import (lstm_backward, lstm_forward, rnn_backward,
                                 rnn_forward, sigmoid)
from kaffe.testing.gradient import numeric_gradient

STEPS, STREAMS, FEATURES, HIDDEN = 3, 2, 3, 2


def _setup(gates, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((STEPS, STREAMS, FEATURES))
    cont = np.ones((STEPS, STREAMS))
    cont[1, 0] = 0
    rows = gates * HIDDEN
    return rng, x, cont, rows


def test_sigmoid_is_stable_and_exact():
    v = np.array([-1000.0, -3.0, 0.0, 2.0, 1000.0])
    with np.errstate(over="ignore"):
        expected = 1.0 / (1.0 + np.exp(-v))
    np.testing.assert_allclose(sigmoid(v), expected, rtol=1e-15, atol=1e-300)


def test_lstm_initial_state_gradients():
    rng, x, cont, rows = _setup(4, 0)
    params = {"W_xc": rng.standard_normal((rows, FEATURES)),
              "b_c": rng.standard_normal(rows),
              "W_hc": rng.standard_normal((rows, HIDDEN))}
    h0, c0 = rng.standard_normal((2, STREAMS, HIDDEN))
    weights = rng.standard_normal((STEPS, STREAMS, HIDDEN))

    def loss():
        return float((lstm_forward(x, cont, h0, c0, params)[0]
                      * weights).sum())

    cache = lstm_forward(x, cont, h0, c0, params)[2]
    grads = lstm_backward(weights, x, cont, params, cache)
    np.testing.assert_allclose(grads["h_0"], numeric_gradient(loss, h0),
                               rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(grads["c_0"], numeric_gradient(loss, c0),
                               rtol=1e-6, atol=1e-9)


def test_rnn_initial_state_gradient():
    rng, x, cont, rows = _setup(1, 1)
    params = {"W_xh": rng.standard_normal((rows, FEATURES)),
              "b_h": rng.standard_normal(rows),
              "W_hh": rng.standard_normal((rows, HIDDEN)),
              "W_ho": rng.standard_normal((rows, HIDDEN)),
              "b_o": rng.standard_normal(rows)}
    h0 = rng.standard_normal((STREAMS, HIDDEN))
    weights = rng.standard_normal((STEPS, STREAMS, HIDDEN))

    def loss():
        return float((rnn_forward(x, cont, h0, params)[0] * weights).sum())

    cache = rnn_forward(x, cont, h0, params)[2]
    grads = rnn_backward(weights, x, cont, params, cache)
    np.testing.assert_allclose(grads["h_0"], numeric_gradient(loss, h0),
                               rtol=1e-6, atol=1e-9)
