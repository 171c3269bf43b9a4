"""pycaffe's batch runners on Net: forward_all and forward_backward_all.

They cut arrays of any number of items into the net's batch size (the first
dimension of its first blob), zero-pad the last batch, run the net and
concatenate the results, the padding stripped.
"""
import numpy as np

from ..errors import KaffeConfigError, KaffeShapeError


class PycaffeBatches:
    """Net's forward_all / forward_backward_all (a part of :class:`Net`)."""

    def forward_all(self, blobs=None, **kwargs):
        """pycaffe's forward_all: run the inputs through in batches.

        Args:
            blobs: names of extra blobs to return, as for :meth:`forward`.
            kwargs: input blob name -> array of any number of items (all the
                same number); without any, one forward of the net's own data.

        Returns:
            {blob name: array} for the outputs and ``blobs``, the batches
            concatenated. A last partial batch is zero-padded to the batch
            size for the forward, and the padding stripped from the result.
        """
        names = set(self.outputs + list(blobs or []))
        collected = {name: [] for name in names}
        for batch in self._batch(kwargs) if kwargs else [{}]:
            outs = self.forward(blobs=blobs, **batch)
            for name, value in outs.items():
                collected[name].append(value.copy())
        return _concatenate(collected, _padding(self, kwargs))

    def forward_backward_all(self, blobs=None, diffs=None, **kwargs):
        """pycaffe's forward_backward_all: forward and backward in batches.

        Args:
            blobs: extra blobs whose data to return, as for :meth:`forward`.
            diffs: extra blobs whose diff to return, as for :meth:`backward`.
            kwargs: input arrays (for forward) and output diffs (for
                backward), by blob name; where either kind is missing the
                net's own values are used.

        Returns:
            (all_blobs, all_diffs): {blob name: array}, padding stripped as
            in :meth:`forward_all`.
        """
        inputs = {name: kwargs[name] for name in self.inputs if name in kwargs}
        top_diffs = {name: kwargs[name] for name in self.outputs
                     if name in kwargs}
        unknown = set(kwargs) - set(inputs) - set(top_diffs)
        if unknown:
            raise KaffeConfigError(
                "keyword arguments must name the net's inputs or outputs",
                received=sorted(unknown),
                expected=sorted(self.inputs + self.outputs))
        out_names = set(self.outputs + list(blobs or []))
        diff_names = set(self.inputs + list(diffs or []))
        all_outs = {name: [] for name in out_names}
        all_diffs = {name: [] for name in diff_names}
        forward_batches = list(self._batch(inputs)) if inputs else [{}]
        backward_batches = list(self._batch(top_diffs)) if top_diffs else [{}]
        for i in range(max(len(forward_batches), len(backward_batches))):
            fb = forward_batches[i] if i < len(forward_batches) else {}
            bb = backward_batches[i] if i < len(backward_batches) else {}
            for name, value in self.forward(blobs=blobs, **fb).items():
                all_outs[name].append(value.copy())
            for name, value in self.backward(diffs=diffs, **bb).items():
                all_diffs[name].append(value.copy())
        pad = _padding(self, inputs or top_diffs)
        return _concatenate(all_outs, pad), _concatenate(all_diffs, pad)

    def _batch(self, blobs):
        """Yield {name: batch-sized array} batches of ``blobs`` (pycaffe's).

        The batch size is the first dimension of the net's first blob; a
        last partial batch is padded with zeros.
        """
        if not blobs:
            return
        arrays = {name: np.asarray(value) for name, value in blobs.items()}
        lengths = {name: len(a) for name, a in arrays.items()}
        if len(set(lengths.values())) > 1:
            raise KaffeShapeError(
                "arrays passed together must hold the same number of items",
                received=", ".join(f"{n}: {k}" for n, k in lengths.items()))
        num = next(iter(lengths.values()))
        batch_size = self._batch_size()
        for start in range(0, num - num % batch_size, batch_size):
            yield {name: a[start:start + batch_size]
                   for name, a in arrays.items()}
        remainder = num % batch_size
        if remainder:
            padded = {}
            for name, a in arrays.items():
                padding = np.zeros((batch_size - remainder,) + a.shape[1:],
                                   dtype=a.dtype)
                padded[name] = np.concatenate([a[num - remainder:], padding])
            yield padded

    def _batch_size(self):
        first = next(iter(self.blobs.values()), None)
        if first is None or not first.shape or first.shape[0] < 1:
            raise KaffeShapeError(
                "has no batch size to split the arrays by",
                field="first blob", received=first.shape if first else None,
                fix="give the net an input with a batch dimension")
        return first.shape[0]


def _padding(net, arrays):
    """How many zero items forward_all appended to the last batch."""
    if not arrays:
        return 0
    num = len(next(iter(arrays.values())))
    remainder = num % net._batch_size()
    return net._batch_size() - remainder if remainder else 0


def _concatenate(collected, pad):
    """{name: [batch arrays]} -> {name: one array}, minus ``pad`` items.

    A 0-axis blob (a loss) has no items: it gives one value per batch.
    """
    out = {}
    for name, parts in collected.items():
        if parts and parts[0].ndim == 0:
            out[name] = np.stack(parts)
            continue
        array = np.concatenate(parts) if parts else np.zeros((0,))
        out[name] = array[:len(array) - pad] if pad else array
    return out
