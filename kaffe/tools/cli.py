"""The ``kaffe`` command: one subcommand per tool, as Caffe's ``caffe`` binary.

Each subcommand is a module ``kaffe/tools/<command>.py`` with

* ``HELP``: one line for ``kaffe --help``;
* ``add_arguments(parser)``: its options (an argparse subparser);
* ``run(args)``: does the work and returns the exit status (None = 0);
* optionally ``LOG_LEVEL``: how much of the ``kaffe`` logger to show without
  ``-v`` (default INFO, as Caffe's tools log; ``-v`` always shows INFO);
* optionally ``PARALLEL = True``: under ``mpiexec -n N`` (N > 1) the command
  runs as one of N workers (:func:`kaffe.parallel.init` before ``run``; only
  worker 0 logs; an error on any worker ends the whole job).

and one line in :data:`COMMANDS`. Command modules import heavy things inside
``run`` so that ``kaffe --help`` stays fast.

A user's mistake (a KaffeError, or an OSError about a file) prints
``kaffe: error: <message>`` to stderr and exits with status 2, without a
traceback; argparse's usage errors exit 2 as well. Any other exception is a
bug in kaffe: it prints one line, ``kaffe: internal error: ... please
report ...``, and exits 1; ``--debug`` also prints the traceback.
"""
import argparse
import importlib
import logging
import os
import sys

# command name -> module under kaffe.tools (one function-set per command).
COMMANDS = {
    "train": "train",
    "test": "test",
    "time": "time",
    "device_query": "device_query",
    "explain": "explain",
    "draw": "draw",
    "viz": "viz",
    "plot": "plot",
    "convert_mnist_data": "convert_mnist_data",
    "convert_imageset": "convert_imageset",
    "compute_image_mean": "compute_image_mean",
    "extract_features": "extract_features",
    "upgrade_net_proto_text": "upgrade_net_proto_text",
    "upgrade_net_proto_binary": "upgrade_net_proto_binary",
    "classify": "classify",
    "detect": "detect",
    "export": "export",
    "import": "import_",
    "doctor": "doctor",
    "types": "types",
}


def build_parser():
    """The argparse parser with every registered subcommand."""
    from .. import __version__
    parser = argparse.ArgumentParser(
        prog="kaffe",
        description="Caffe, rebuilt in Python: train, test and explain nets "
                    "written as Caffe prototxt files.")
    parser.add_argument("--version", action="version",
                        version=f"kaffe {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true",
                        help="show kaffe's INFO log (glog format, on stderr)")
    common.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an unexpected "
                             "internal error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name, module_name in COMMANDS.items():
        module = _command_module(module_name)
        sub = subparsers.add_parser(
            name, parents=[common], help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            epilog=getattr(module, "EPILOG", None),
            formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
        sub.set_defaults(_module=module)
    return parser


def _command_module(module_name):
    return importlib.import_module(f"{__package__}.{module_name}")


def main(argv=None):
    """Run the ``kaffe`` command line; return the exit status."""
    from ..core.errors import KaffeError
    from .logging_setup import glog_to_stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:          # --help, --version, usage errors
        return e.code if isinstance(e.code, int) else 2
    module = args._module
    level = logging.INFO if args.verbose else getattr(
        module, "LOG_LEVEL", logging.INFO)
    comm = None
    try:
        with glog_to_stderr(level):
            comm = _join_workers(module)
            status = module.run(args)
            sys.stdout.flush()
    except KaffeError as e:
        return _fail(str(e), comm)
    except BrokenPipeError:
        # The reader went away (`kaffe explain net.prototxt | head`).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as e:
        if e.filename is not None:
            return _fail(f"{e.filename}: {e.strerror or e}", comm)
        return _fail(str(e), comm)
    except KeyboardInterrupt:
        if comm is not None and comm.size > 1:
            comm.abort(None, 130)
        return 130
    except MemoryError as e:
        from ..memory import out_of_memory
        return _fail(str(out_of_memory(e, f"running kaffe {args.command}")),
                     comm)
    except Exception as e:  # noqa: BLE001 (never a traceback for a file)
        return _internal(e, args, comm)
    return 0 if status is None else status


def _internal(exc, args, comm=None):
    """An error that is kaffe's fault, not the input's: one line, exit 1;
    ``--debug`` shows the traceback."""
    import traceback
    if getattr(args, "debug", False):
        traceback.print_exception(exc, file=sys.stderr)
    where = traceback.extract_tb(exc.__traceback__)
    place = ""
    if where:
        frame = where[-1]
        place = f" at {os.path.basename(frame.filename)}:{frame.lineno}"
    text = " ".join(str(exc).split())[:300]
    print(f"kaffe: internal error: {type(exc).__name__}{place}: {text} "
          f"(this is a bug in kaffe; please report it with the command and "
          f"its input files; --debug shows the traceback)", file=sys.stderr)
    if comm is not None and comm.size > 1:
        comm.abort(None, 1)
    return 1


def _join_workers(module):
    """Under mpiexec, join the job as one worker of a PARALLEL command
    (workers other than 0 then log errors only); else None."""
    if not getattr(module, "PARALLEL", False):
        return None
    from ..parallel import init, launched_size
    if launched_size() <= 1:
        return None
    comm = init()
    if comm.rank != 0:
        logging.getLogger("kaffe").setLevel(logging.ERROR)
    return comm


def _fail(message, comm=None):
    if comm is not None and comm.size > 1:
        # The other workers may be waiting for this one: end them all.
        comm.abort(f"worker {comm.rank} of {comm.size}: {message}", 2)
    print(f"kaffe: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
