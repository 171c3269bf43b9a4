"""CTCGreedyDecoder: best-path decoding of a CTC network's outputs."""
from ...core.backend import array_module, to_numpy
from ...core.layer import Layer
from ...core.registry import register_layer


@register_layer("CTCGreedyDecoder")
class CTCGreedyDecoderLayer(Layer):
    """The label sequence of the best path: per time step the most likely
    class, repeats merged, blanks dropped.

    From the CRNN-style OCR Caffe forks (senlinuc/caffe_ocr and the CTC
    layers it takes from BVLC/caffe PR #4681, ``ctc_decoder_layer.cpp``).
    Reads ctc_decoder_param: blank_index (negative: the last class),
    ctc_merge_repeated (merge a class repeated on consecutive steps).
    Bottoms: [0] scores (T, N, C), time-major (probabilities or any
    monotone scores); [1] optional sequence indicators (T, N): sequence n
    ends before the first step t > 0 whose indicator is 0 (without it every
    sequence has all T steps, as the single-bottom deploy nets use it).
    Tops: [0] (N, T, 1, 1): each sequence's labels, then −1 to the end;
    [1] optional (N, 1, 1, 1): minus the sum of the chosen scores.
    The maximum is the first one (strict >), as the fork's loop. The
    fork's three-bottom form (accuracy against targets) is not supported.
    There is no gradient (the fork stops with NOT_IMPLEMENTED).
    """

    min_bottom_blobs = 1
    max_bottom_blobs = 2
    min_top_blobs = 1
    max_top_blobs = 2

    def reshape(self, bottom, top):
        scores = bottom[0]
        if scores.num_axes != 3:
            raise self.shape_error(
                "bottom[0] must be (T, N, C): time, sequences, classes",
                field="bottom", received=scores.shape)
        steps, streams, classes = scores.shape
        if len(bottom) > 1 and (bottom[1].shape[:2] != (steps, streams)
                                or bottom[1].count != steps * streams):
            raise self.shape_error(
                "bottom[1] (the sequence indicators) must be (T, N)",
                field="bottom", received=bottom[1].shape,
                expected=f"({steps}, {streams})")
        blank = self.layer_param.ctc_decoder_param.blank_index
        self.blank = classes - 1 if blank < 0 else blank
        top[0].reshape((streams, steps, 1, 1))
        if len(top) > 1:
            top[1].reshape((streams, 1, 1, 1))

    def forward(self, bottom, top):
        scores = bottom[0].data
        xp = array_module(scores)
        steps, streams = scores.shape[:2]
        best = to_numpy(scores.argmax(axis=2))
        best_score = to_numpy(scores.max(axis=2))
        lengths = [steps] * streams
        if len(bottom) > 1:
            indicator = to_numpy(bottom[1].data).reshape(steps, streams)
            for n in range(streams):
                ends = [t for t in range(1, steps) if indicator[t, n] == 0]
                lengths[n] = ends[0] if ends else steps
        merge = self.layer_param.ctc_decoder_param.ctc_merge_repeated
        out = top[0].data.reshape(streams, steps)
        out[...] = -1
        for n in range(streams):
            previous = -1
            labels = []
            for t in range(lengths[n]):
                label = int(best[t, n])
                if label != self.blank and not (merge and label == previous):
                    labels.append(label)
                previous = label
            out[n, :len(labels)] = xp.asarray(labels, dtype=out.dtype)
        if len(top) > 1:
            totals = [-best_score[:lengths[n], n].sum(dtype=scores.dtype)
                      for n in range(streams)]
            top[1].data[...] = xp.asarray(totals, dtype=scores.dtype).reshape(
                top[1].shape)

    def backward(self, top, propagate_down, bottom):
        for i, wanted in enumerate(propagate_down):
            if wanted:
                raise self.no_gradient_error(
                    i, "the decoder's input" if i == 0 else
                    "the sequence indicators")

    def allow_force_backward(self, bottom_index):
        return False

    def explain(self, bottoms, tops):
        """The formula line for ``kaffe explain``."""
        steps, streams, classes = bottoms[0].shape
        merge = self.layer_param.ctc_decoder_param.ctc_merge_repeated
        return (f"{self.name}: per sequence (N = {streams}) the best of "
                f"{classes} classes at each of {steps} steps; "
                + ("repeats merged, " if merge else "")
                + f"blank {self.blank} dropped → labels padded with −1 to "
                f"({streams}, {steps})")
