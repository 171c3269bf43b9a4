#!/usr/bin/env python
"""Regenerate kaffe/proto/caffe_pb2.py from kaffe/proto/caffe.proto.

The output of protoc depends on its version, so the compiler is pinned: we use
the protoc bundled with grpcio-tools at exactly GRPCIO_TOOLS_VERSION.

Usage (from anywhere):
    python scripts/gen_proto.py           # rewrite kaffe/proto/caffe_pb2.py
    python scripts/gen_proto.py --check   # exit 1 if the committed file is stale

Exit codes: 0 ok, 1 stale (--check), 2 wrong/missing grpcio-tools or protoc
failure.
"""
import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile

# The one place the compiler version is pinned (bundles libprotoc 35.1).
GRPCIO_TOOLS_VERSION = "1.85.1"

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTO_DIR = os.path.join(REPO_ROOT, "kaffe", "proto")
PROTO_NAME = "caffe.proto"
OUTPUT_NAME = "caffe_pb2.py"


def install_hint():
    """How to get the pinned compiler."""
    return ("install the pinned compiler with:\n"
            "    python -m pip install grpcio-tools=={}".format(GRPCIO_TOOLS_VERSION))


class GenError(Exception):
    """A problem with the toolchain (exit status 2)."""


def installed_grpcio_tools_version():
    """The installed grpcio-tools version, or None if it is not installed."""
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # Python < 3.8
        return None
    try:
        return version("grpcio-tools")
    except PackageNotFoundError:
        return None


def check_toolchain():
    """Raise GenError unless grpcio-tools is installed at the pinned version."""
    found = installed_grpcio_tools_version()
    if found is None:
        raise GenError("grpcio-tools is not installed; " + install_hint())
    if found != GRPCIO_TOOLS_VERSION:
        raise GenError("grpcio-tools {} is installed but {} is pinned; {}".format(
            found, GRPCIO_TOOLS_VERSION, install_hint()))


def generate(out_dir):
    """Run the pinned protoc on caffe.proto, writing caffe_pb2.py into out_dir.

    Returns the path of the generated file.
    """
    check_toolchain()
    cmd = [sys.executable, "-m", "grpc_tools.protoc",
           "-I", PROTO_DIR,
           "--python_out=" + out_dir,
           os.path.join(PROTO_DIR, PROTO_NAME)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    if proc.returncode != 0:
        raise GenError("protoc failed (exit {}):\n{}{}".format(
            proc.returncode, proc.stdout, proc.stderr))
    out = os.path.join(out_dir, OUTPUT_NAME)
    if not os.path.isfile(out):
        raise GenError("protoc succeeded but did not write " + out)
    return out


def is_up_to_date():
    """True if the committed caffe_pb2.py equals a fresh generation."""
    committed = os.path.join(PROTO_DIR, OUTPUT_NAME)
    tmp = tempfile.mkdtemp(prefix="kaffe-gen-proto-")
    try:
        fresh = generate(tmp)
        return os.path.isfile(committed) and filecmp.cmp(fresh, committed,
                                                         shallow=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if caffe_pb2.py is stale")
    args = parser.parse_args(argv)
    rel_out = os.path.relpath(os.path.join(PROTO_DIR, OUTPUT_NAME), os.getcwd())
    try:
        if args.check:
            if is_up_to_date():
                print("{} is up to date".format(rel_out))
                return 0
            print("{} is stale: it does not match caffe.proto compiled with "
                  "grpcio-tools {}.\nRegenerate it with: python "
                  "scripts/gen_proto.py".format(rel_out, GRPCIO_TOOLS_VERSION),
                  file=sys.stderr)
            return 1
        generate(PROTO_DIR)
        print("wrote {}".format(rel_out))
        return 0
    except GenError as exc:
        print("gen_proto: error: {}".format(exc), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
