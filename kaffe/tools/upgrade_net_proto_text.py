"""``kaffe upgrade_net_proto_text IN OUT``: rewrite a prototxt in the current
format, as Caffe's ``tools/upgrade_net_proto_text``.

Reads a NetParameter prototxt of any age (V0 ``layers { layer { ... } }``,
V1 ``layers { type: CONVOLUTION ... }``, input fields, deprecated transform
fields, BatchNorm param specs), applies the upgrades Caffe applies when it
loads a net (:func:`kaffe.proto.upgrade.upgrade_net_as_needed`) and writes
the result, atomically. An already current file is written unchanged (with a
log line saying so), as Caffe does.

Exit status, as Caffe's tool: 0 on success; 1 when the upgrade dropped
fields it could not place (logged above; the file is still written); 2 when
the input cannot be read or upgraded (nothing is written).
"""
import logging

HELP = "upgrade a V0/V1 net prototxt to the current format"
DESCRIPTION = """\
Read a net prototxt written in any of Caffe's older formats, upgrade it as
Caffe does when it loads it, and write the current format to OUT."""
EPILOG = """\
example:
  kaffe upgrade_net_proto_text old_deploy.prototxt deploy.prototxt"""

log = logging.getLogger("kaffe")


def add_arguments(parser):
    parser.add_argument("input", metavar="IN.prototxt",
                        help="the net definition to upgrade")
    parser.add_argument("output", metavar="OUT.prototxt",
                        help="where to write the upgraded definition")


def run(args):
    from ..proto import caffe_pb2
    from ..proto.io import read_text, write_text
    return upgrade_file(
        args.input, args.output,
        read=lambda path: read_text(path, caffe_pb2.NetParameter),
        write=write_text, kind="text")


class _ErrorCounter(logging.Handler):
    """Counts the ERROR records logged while it is attached."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record):
        self.count += 1


def upgrade_file(input_path, output_path, read, write, kind):
    """The shared body of the two upgrade tools.

    Args:
        read: path -> NetParameter (raises KaffeFormatError).
        write: (NetParameter, path) -> None, atomic.
        kind: "text" or "binary", for the log lines.

    Returns:
        the exit status: 0, or 1 if the upgrade logged problems.
    """
    from ..core.errors import KaffeError
    from ..proto.upgrade import net_needs_upgrade, upgrade_net_as_needed
    try:
        param = read(input_path)
    except KaffeError:
        log.error("Failed to parse input %s file as NetParameter: %s", kind,
                  input_path)
        raise
    success = True
    if net_needs_upgrade(param):
        counter = _ErrorCounter()
        log.addHandler(counter)
        try:
            upgrade_net_as_needed(param, input_path)
        finally:
            log.removeHandler(counter)
        if counter.count:
            success = False
            log.error("Encountered error(s) while upgrading prototxt; see "
                      "details above.")
    else:
        log.error("File already in latest proto format: %s", input_path)
    write(param, output_path)
    log.info("Wrote upgraded NetParameter %s proto to %s", kind, output_path)
    return 0 if success else 1
