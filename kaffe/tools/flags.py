"""Options spelled as Caffe's gflags spells them, for argparse subcommands.

gflags accepts ``--name=value``, ``--name value``, a single dash
(``-name=value``), and for booleans ``--name``, ``--name=true|false`` and
``--noname``. These helpers register all of those spellings (the extra ones
hidden from ``--help``) so that command lines written for Caffe's tools work
unchanged.
"""
import argparse

_TRUE = ("true", "True", "TRUE", "1", "yes", "y", "t")
_FALSE = ("false", "False", "FALSE", "0", "no", "n", "f")


def add_value_flag(parser, name, **kwargs):
    """``--name VALUE``, ``--name=VALUE``, ``-name VALUE``, ``-name=VALUE``."""
    action = parser.add_argument(f"--{name}", dest=name, **kwargs)
    hidden = dict(kwargs, help=argparse.SUPPRESS, default=argparse.SUPPRESS)
    parser.add_argument(f"-{name}", dest=name, **hidden)
    return action


def add_bool_flag(parser, name, help):
    """``--name`` / ``--name=true`` (also ``-name``...) set it, ``--noname`` /
    ``--name=false`` clear it; default false."""
    parser.add_argument(f"--{name}", dest=name, action="store_true",
                        default=False, help=help)
    hidden_on = [f"-{name}"] + [f"{dash}{name}={value}" for dash in ("--", "-")
                                for value in _TRUE]
    hidden_off = [f"{dash}no{name}" for dash in ("--", "-")] + [
        f"{dash}{name}={value}" for dash in ("--", "-") for value in _FALSE]
    parser.add_argument(*hidden_on, dest=name, action="store_true",
                        help=argparse.SUPPRESS)
    parser.add_argument(*hidden_off, dest=name, action="store_false",
                        help=argparse.SUPPRESS)


def require(args, name, why):
    """Refuse a missing value flag the way Caffe's tools do (a located error).

    Value flags are registered in two spellings (``--name`` and ``-name``),
    so argparse cannot mark them required itself.
    """
    from ..core.errors import KaffeConfigError
    if not getattr(args, name, None):
        raise KaffeConfigError(f"is required ({why})", field=f"--{name}",
                               fix=f"pass --{name}=...")


def add_net_state_flags(parser, what="the net"):
    """Caffe's --level, --stage and --gpu flags, shared by train/test/time."""
    add_value_flag(parser, "level", type=int, default=0,
                   help=f"{what}'s level (default 0)")
    add_value_flag(parser, "stage", default="", metavar="S1[,S2...]",
                   help=f"{what}'s stages, comma-separated")
    add_value_flag(parser, "gpu", default="", metavar="IDS",
                   help="GPU ids (not available: kaffe runs on the CPU)")


def stages(args):
    """The --stage flag as a list."""
    return [stage for stage in args.stage.split(",") if stage]
