"""RecurrentLayer: the base of RNN and LSTM (Caffe's recurrent_layer.cpp)."""
import logging

from ...core.filler import fill
from ...core.layer import Layer

log = logging.getLogger("kaffe")


class RecurrentLayer(Layer):
    """A recurrence over T timesteps of N independent streams.

    Reads recurrent_param: num_output (H), weight_filler, bias_filler,
    expose_hidden (debug_info is accepted; there is no inner net to log).
    Bottoms: x (T, N, …) (flattened from axis 2 to D features), cont (T, N)
    (0 = stream n starts a new sequence at t), an optional x_static (N, …)
    added at every timestep (flattened from axis 1), then with expose_hidden
    the initial states (1, N, H) named in ``state_names``.
    Tops: the output (T, N, H), then with expose_hidden the final states
    (1, N, H).

    As in Caffe:
      - T is fixed at setup; N may change from one forward to the next.
      - Without expose_hidden, the final states of one forward are the initial
        states of the next (zeros at first; ``reset()`` zeroes them): set
        cont = 0 at t = 0 to start fresh sequences. After a change of N the
        carried state is the old buffer read in the new shape (zeros once it
        outgrows its capacity), like Caffe's blobs.
      - With expose_hidden the initial states come from the bottoms and the
        final states go to the tops, but no gradient crosses them: the
        initial-state bottoms get a zero diff and the final-state tops' diffs
        are ignored (Caffe shares only their data with the inner net).
      - Nothing is back-propagated to cont.

    Subclasses name the states and parameters and run the recurrence
    (``param_specs``, ``run_forward``, ``run_backward``).
    """

    #: The recurrent states, in the order of the exposed bottoms and tops.
    state_names = ()

    def __init__(self, layer_param=None, **kwargs):
        super().__init__(layer_param, **kwargs)
        exposed = self._num_exposed()
        self.min_bottom_blobs = 2 + exposed
        self.max_bottom_blobs = 3 + exposed
        self.exact_num_top_blobs = 1 + exposed

    def allow_force_backward(self, bottom_index):
        return bottom_index != 1

    # -- what subclasses define ---------------------------------------------
    def param_specs(self, hidden, x_dim, static_dim):
        """[(name, shape, filler field)] of the parameter blobs, in order;
        ``static_dim`` is None without a static input."""
        raise TypeError(f"{type(self).__name__} does not define param_specs()")

    def run_forward(self, x, cont, states, params, x_static):
        """(output (T, N, H), final states [(N, H)], cache)."""
        raise TypeError(f"{type(self).__name__} does not define run_forward()")

    def run_backward(self, dtop, x, cont, params, cache, x_static):
        """A dict of gradients: each parameter name, "x", "x_static"."""
        raise TypeError(
            f"{type(self).__name__} does not define run_backward()")

    # -- the layer -----------------------------------------------------------
    def setup(self, bottom, top):
        p = self.layer_param.recurrent_param
        if p.num_output <= 0:
            raise self.config_error(
                "must be > 0", field="recurrent_param.num_output",
                received=p.num_output,
                fix="set num_output to the size of the hidden state")
        self.hidden = p.num_output
        self.expose_hidden = p.expose_hidden
        self.static_input = len(bottom) > 2 + self._num_exposed()
        x = bottom[0]
        self._check_axes(x, 0, "x", 3, "(T, N, features…)")
        self.T = x.shape[0]
        if self.T < 1:
            raise self.shape_error(
                "must hold at least one timestep", field="bottom[0] (x)",
                received=x.shape, expected="shape[0] >= 1")
        self.x_dim = x.count_axes(2)
        self.static_dim = None
        if self.static_input:
            self._check_axes(bottom[2], 2, "x_static", 2, "(N, features…)")
            self.static_dim = bottom[2].count_axes(1)
        log.info("Initializing recurrent layer: assuming input batch contains "
                 "%d timesteps of %d independent streams.", self.T, x.shape[1])
        specs = self.param_specs(self.hidden, self.x_dim, self.static_dim)
        self.param_names = [name for name, _, _ in specs]
        if self.blobs:
            self._check_loaded_blobs(specs)
            log.info("Skipping parameter initialization")
        else:
            for name, shape, filler in specs:
                blob = self.make_blob(shape)
                fill(blob, getattr(p, filler), layer=self,
                     field=f"recurrent_param.{filler}")
                self.blobs.append(blob)
        # Without expose_hidden, the final states carried to the next forward.
        self._states = [] if self.expose_hidden else [
            self.make_blob((1, x.shape[1], self.hidden))
            for _ in self.state_names]

    def reshape(self, bottom, top):
        x, cont = bottom[0], bottom[1]
        self._check_axes(x, 0, "x", 3, "(T, N, features…)")
        if x.shape[0] != self.T:
            raise self.shape_error(
                "changed its number of timesteps (shape[0]), which is fixed "
                "at setup", field="bottom[0] (x)", received=x.shape,
                expected=f"{self.T} timesteps",
                fix="feed the same T every time (N may change)")
        n = x.shape[1]
        if x.count_axes(2) != self.x_dim:
            raise self.shape_error(
                "changed its feature size (the product of its dims from "
                "axis 2 on), which the weights fix", field="bottom[0] (x)",
                received=x.shape, expected=f"{self.x_dim} features")
        if cont.shape != (self.T, n):
            raise self.shape_error(
                "must be (T, N), the first two dims of x",
                field="bottom[1] (cont)", received=cont.shape,
                expected=f"({self.T}, {n})")
        if self.static_input:
            x_static = bottom[2]
            self._check_axes(x_static, 2, "x_static", 2, "(N, features…)")
            if (x_static.shape[0] != n
                    or x_static.count_axes(1) != self.static_dim):
                raise self.shape_error(
                    "must be (N, …) with N = x's shape[1] and as many "
                    "features as at setup", field="bottom[2] (x_static)",
                    received=x_static.shape,
                    expected=f"{n} streams of {self.static_dim} features")
        state_shape = (1, n, self.hidden)
        for index, name in self._exposed_bottoms(bottom):
            if bottom[index].shape != state_shape:
                raise self.shape_error(
                    "must be (1, N, num_output)",
                    field=f"bottom[{index}] ({name}_0)",
                    received=bottom[index].shape, expected=state_shape)
        top[0].reshape((self.T, n, self.hidden))
        for blob in top[1:]:
            blob.reshape(state_shape)
        for blob in self._states:
            blob.reshape(state_shape)

    def forward(self, bottom, top):
        x, cont, x_static = self._inputs(bottom)
        if self.expose_hidden:
            states = [bottom[i].data[0].copy()
                      for i, _ in self._exposed_bottoms(bottom)]
        else:
            states = [blob.data[0].copy() for blob in self._states]
        out, finals, self._cache = self.run_forward(
            x, cont, states, self._params(), x_static)
        top[0].data[...] = out
        for blob, value in zip(top[1:] if self.expose_hidden else self._states,
                               finals):
            blob.data[0] = value

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            raise self.no_gradient_error(1, "the sequence continuation indicators (cont)")
        x, cont, x_static = self._inputs(bottom)
        grads = self.run_backward(top[0].diff, x, cont, self._params(),
                                  self._cache, x_static)
        for i, name in enumerate(self.param_names):
            if self.param_needs_backward(i):
                self.blobs[i].diff[...] += grads[name]
        if propagate_down[0]:
            bottom[0].diff[...] = grads["x"].reshape(bottom[0].shape)
        if self.static_input and propagate_down[2]:
            bottom[2].diff[...] = grads["x_static"].reshape(bottom[2].shape)
        # Caffe's inner net shares only the data of the initial states, so
        # their bottoms never receive a gradient.
        for index, _ in self._exposed_bottoms(bottom):
            if propagate_down[index]:
                bottom[index].diff[...] = 0

    def reset(self):
        """Zero the carried hidden states (Caffe's RecurrentLayer::Reset)."""
        for blob in self._states:
            blob.data[...] = 0

    # -- helpers -------------------------------------------------------------
    def _num_exposed(self):
        if self.layer_param.recurrent_param.expose_hidden:
            return len(self.state_names)
        return 0

    def _exposed_bottoms(self, bottom):
        """[(bottom index, state name)] of the exposed initial states."""
        if not self.expose_hidden:
            return []
        first = 2 + self.static_input
        return list(zip(range(first, len(bottom)), self.state_names))

    def _inputs(self, bottom):
        n = bottom[0].shape[1]
        x = bottom[0].data.reshape(self.T, n, self.x_dim)
        x_static = (bottom[2].data.reshape(n, self.static_dim)
                    if self.static_input else None)
        return x, bottom[1].data, x_static

    def _params(self):
        return {name: blob.data
                for name, blob in zip(self.param_names, self.blobs)}

    def _check_axes(self, blob, index, name, least, layout):
        if blob.num_axes < least:
            raise self.shape_error(
                f"must have at least {least} axes {layout}",
                field=f"bottom[{index}] ({name})", received=blob.shape,
                expected=f"at least {least} axes")

    def _check_loaded_blobs(self, specs):
        expected = [shape for _, shape, _ in specs]
        received = [blob.shape for blob in self.blobs]
        if received != expected:
            raise self.shape_error(
                "do not match the layer's parameters "
                f"({', '.join(name for name, _, _ in specs)})", field="blobs",
                received=received, expected=str(expected))
