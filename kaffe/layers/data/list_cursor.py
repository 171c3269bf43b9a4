"""The walk through a list file that ImageData and DenseImageData share."""
import logging

from ...data.transformer import child_generator

log = logging.getLogger("kaffe")


class ListCursor:
    """A position in ``self.lines`` (one entry per line of a list file) as
    Caffe's list-reading data layers keep it: shuffled at setup and after
    every pass with ``shuffle``, started at a random line below
    ``rand_skip``, back to the first entry after the last.

    Mixed into a data layer; the layer's parameter message (``p``) has
    shuffle and rand_skip.
    """

    def open_list(self, lines, p, field, what):
        """Start on ``lines``; ``field`` names the parameter message in
        errors and ``what`` the entries in the log ("images", "examples")."""
        self.lines = lines
        self.reshuffle = bool(p.shuffle)
        self.shuffle_generator = None
        if p.shuffle:
            log.info("Shuffling data")
            self.shuffle_generator = child_generator()
            self._shuffle()
        log.info("A total of %d %s.", len(self.lines), what)
        self.lines_id = 0
        if p.rand_skip:
            from ...core.random import rng
            skip = int(rng().integers(0, 2**32)) % p.rand_skip
            log.info("Skipping first %d data points.", skip)
            if skip >= len(self.lines):
                raise self.config_error(
                    f"skips more {what} than the list has",
                    field=f"{field}.rand_skip", received=p.rand_skip,
                    expected=f"a bound <= the {len(self.lines)} {what}")
            self.lines_id = skip

    def _shuffle(self):
        order = self.shuffle_generator.permutation(len(self.lines))
        self.lines = [self.lines[i] for i in order]

    def _advance(self):
        """On to the next entry; after the last, back to the first (and a
        new shuffle with ``shuffle``)."""
        self.lines_id += 1
        if self.lines_id >= len(self.lines):
            log.debug("Restarting data prefetching from start.")
            self.lines_id = 0
            if self.reshuffle:
                self._shuffle()
