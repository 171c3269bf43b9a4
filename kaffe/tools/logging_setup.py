"""glog-style log lines for the ``kaffe`` logger, as Caffe's tools print them.

::

    I1125 21:03:18.381027 12345 net.py:123] Creating Layer conv1

The level letter (I, W, E, F), month and day, time with microseconds, process
id, and the file:line that logged. Caffe's log parsers (``parse_log.py``) read
this layout. The CLI runs each command inside :func:`glog_to_stderr`, which puts
the logger back as it was afterwards (so calling ``kaffe.tools.cli.main`` from
Python or a test leaves no handler behind); scripts may call
:func:`setup_logging` once instead.
"""
import contextlib
import datetime
import logging
import sys

LOGGER_NAME = "kaffe"

_LETTERS = {logging.DEBUG: "I", logging.INFO: "I", logging.WARNING: "W",
            logging.ERROR: "E", logging.CRITICAL: "F"}


class GlogFormatter(logging.Formatter):
    """Formats a record as ``I1125 21:03:18.381027 12345 net.py:123] msg``."""

    def format(self, record):
        letter = _LETTERS.get(record.levelno)
        if letter is None:
            letter = "I" if record.levelno < logging.WARNING else "E"
        when = datetime.datetime.fromtimestamp(record.created)
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        return (f"{letter}{when:%m%d %H:%M:%S.%f} {record.process} "
                f"{record.filename}:{record.lineno}] {message}")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record, or
    through :data:`writer` while one is set (a progress bar's ``write``, so
    that log lines print above the bar instead of through it)."""

    writer = None

    def __init__(self):
        super().__init__(sys.stderr)

    def emit(self, record):
        writer = _StderrHandler.writer
        if writer is None:
            super().emit(record)
            return
        try:
            writer(self.format(record))
        except Exception:
            self.handleError(record)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def setup_logging(level=logging.INFO):
    """Send the ``kaffe`` logger's records at ``level`` and above to stderr.

    Idempotent: a second call replaces the handler the first one installed.
    Returns the logger.
    """
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        if isinstance(handler, _StderrHandler):
            logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(GlogFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


@contextlib.contextmanager
def glog_to_stderr(level=logging.INFO):
    """:func:`setup_logging` for the duration of a ``with`` block."""
    logger = logging.getLogger(LOGGER_NAME)
    saved = list(logger.handlers), logger.level, logger.propagate
    setup_logging(level)
    try:
        yield logger
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]


@contextlib.contextmanager
def logs_written_by(writer):
    """Send the log lines through ``writer(line)`` inside a ``with`` block."""
    saved = _StderrHandler.writer
    _StderrHandler.writer = writer
    try:
        yield
    finally:
        _StderrHandler.writer = saved
