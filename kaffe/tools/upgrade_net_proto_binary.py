"""``kaffe upgrade_net_proto_binary IN OUT``: rewrite a binary .caffemodel in
the current format, as Caffe's ``tools/upgrade_net_proto_binary``.

The same upgrades as ``kaffe upgrade_net_proto_text`` (V0 and V1 layers with
their weight blobs, input fields, ...), on a binary NetParameter; the blobs
are kept as they are. Exit status 0, 1 (fields dropped, file still written)
or 2 (unreadable input, nothing written).
"""
HELP = "upgrade a V0/V1 binary .caffemodel to the current format"
DESCRIPTION = """\
Read a binary NetParameter (.caffemodel) written in any of Caffe's older
formats, upgrade it as Caffe does when it loads weights, and write the
current format to OUT. The weights are copied unchanged."""
EPILOG = """\
example:
  kaffe upgrade_net_proto_binary old.caffemodel new.caffemodel"""


def add_arguments(parser):
    parser.add_argument("input", metavar="IN.caffemodel",
                        help="the binary net (weights) to upgrade")
    parser.add_argument("output", metavar="OUT.caffemodel",
                        help="where to write the upgraded binary net")


def run(args):
    from ..proto import caffe_pb2
    from ..proto.io import read_binary, write_binary
    from .upgrade_net_proto_text import upgrade_file
    return upgrade_file(
        args.input, args.output,
        read=lambda path: read_binary(path, caffe_pb2.NetParameter,
                                      "NetParameter (caffemodel)"),
        write=write_binary, kind="binary")
