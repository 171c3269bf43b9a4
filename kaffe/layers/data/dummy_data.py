"""DummyData: tops filled by fillers (constant ones once at setup, the
others at every forward)."""
from ...core.filler import check_filler, fill
from ...core.layer import Layer
from ...core.registry import register_layer
from ...proto import caffe_pb2


@register_layer("DummyData")
class DummyDataLayer(Layer):
    """Produces blobs of fixed shape filled by ``data_filler``.

    Reads dummy_data_param: shape (once or once per top) or the legacy
    num/channels/height/width lists; data_filler (0 → constant 0, 1 for all
    tops, or one per top). Constant-filled tops are filled once at setup;
    tops with a random filler are zero after setup and filled at every
    forward, as in Caffe (setting up draws no random numbers).
    """

    exact_num_bottom_blobs = 0
    min_top_blobs = 1

    def setup(self, bottom, top):
        p = self.layer_param.dummy_data_param
        n_top = len(top)
        n_fillers = len(p.data_filler)
        if n_fillers not in (0, 1, n_top):
            raise self.config_error(
                "must be given 0 times, once, or once per top",
                field="dummy_data_param.data_filler",
                received=f"{n_fillers} fillers", expected=f"0, 1 or {n_top}")
        legacy = [("num", p.num), ("channels", p.channels),
                  ("height", p.height), ("width", p.width)]
        if any(len(values) for _, values in legacy):
            if len(p.shape):
                given = ", ".join(name for name, values in legacy
                                  if len(values))
                raise self.config_error(
                    "cannot be combined with the legacy num/channels/height/"
                    "width fields", field="dummy_data_param.shape",
                    received=f"shape and {given}",
                    fix="use only shape { dim: … }")
            for name, values in legacy:
                if len(values) not in (1, n_top):
                    raise self.config_error(
                        "must be given once or once per top",
                        field=f"dummy_data_param.{name}",
                        received=f"{len(values)} values",
                        expected=f"1 or {n_top}")
            shapes = [tuple(values[0 if len(values) == 1 else i]
                            for _, values in legacy) for i in range(n_top)]
        else:
            if len(p.shape) not in (1, n_top):
                raise self.config_error(
                    "must be given once or once per top",
                    field="dummy_data_param.shape",
                    received=f"{len(p.shape)} shapes", expected=f"1 or {n_top}")
            shapes = [tuple(p.shape[0 if len(p.shape) == 1 else i].dim)
                      for i in range(n_top)]
        if n_fillers == 0:
            fillers = [caffe_pb2.FillerParameter(type="constant", value=0)]
        else:
            fillers = list(p.data_filler)
        self.fillers = [fillers[0 if len(fillers) == 1 else i]
                        for i in range(n_top)]
        for blob, shape in zip(top, shapes):
            blob.reshape(shape)
        self.refill = [f.type != "constant" for f in self.fillers]
        # As Caffe: only the constant tops are filled here, once; the others
        # stay zero until each forward fills them, so that setting up draws
        # no random numbers (the first forward's draws are the seed's first).
        for i, blob in enumerate(top):
            check_filler(self.fillers[i], layer=self,
                         field="dummy_data_param.data_filler")
            if not self.refill[i]:
                fill(blob, self.fillers[i], layer=self,
                     field="dummy_data_param.data_filler")

    def reshape(self, bottom, top):
        """Shapes are fixed at setup."""

    def forward(self, bottom, top):
        for i, blob in enumerate(top):
            if self.refill[i]:
                fill(blob, self.fillers[i], layer=self,
                     field="dummy_data_param.data_filler")

    def backward(self, top, propagate_down, bottom):
        """No bottoms: nothing to propagate."""
