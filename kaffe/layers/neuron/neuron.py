"""NeuronLayer: the family of element-wise layers (top has the bottom's shape)."""
from ...core.layer import Layer


class NeuronLayer(Layer):
    """An element-wise function of one bottom; may run in place (top = bottom).

    In place the forward overwrites the input x with the output y. A layer
    whose backward needs x calls ``keep_input`` at the start of its forward
    and reads x in its backward through ``forward_input``.

    Attributes:
        bottom_memory: the copy of the input kept by ``keep_input`` when the
            layer runs in place (Caffe's ``bottom_memory_``), else None.
    """

    exact_num_bottom_blobs = 1
    exact_num_top_blobs = 1
    bottom_memory = None

    def reshape(self, bottom, top):
        top[0].reshape_like(bottom[0])

    def keep_input(self, bottom, top):
        """Keep a copy of the input if the layer runs in place.

        Call at the start of forward. Out of place no copy is made (and an
        old one is dropped): the input stays in bottom[0].data. Nor is one
        made where the net found the layer needs no backward
        (``needs_backward`` False: inference).
        """
        in_place = top[0] is bottom[0] and self.needs_backward
        self.bottom_memory = bottom[0].data.copy() if in_place else None

    def forward_input(self, top, bottom):
        """The input x as the last forward saw it: the copy kept by
        ``keep_input`` in place, else bottom[0].data."""
        if top[0] is not bottom[0]:
            return bottom[0].data
        if self.bottom_memory is None:
            raise self.config_error(
                "ran backward in place after a forward that kept no copy of "
                "its input (its net found the layer needs no backward)",
                field="top", fix="set needs_backward = True on the layer "
                "(or force_backward: true in the net) before its forward")
        return self.bottom_memory
