"""The solver types by name: ``type: "SGD"`` → SGDSolver.

Each update rule registers its class with :func:`register_solver`;
:func:`get_solver` reads a solver definition and builds the class its
``type`` names.
"""
import difflib

import numpy as np

from ..errors import KaffeConfigError
from .solver_io import load_solver

_SOLVER_CLASSES = {}


def register_solver(type_name):
    """Class decorator: make ``cls`` the solver of ``type: "<type_name>"``."""
    def decorate(cls):
        cls.type = type_name
        _SOLVER_CLASSES[type_name] = cls
        return cls
    return decorate


def solver_type_list():
    """The registered solver types, sorted."""
    return sorted(_SOLVER_CLASSES)


def solver_class(type_name, source=None):
    """The solver class registered for ``type_name``; close matches on error."""
    cls = _SOLVER_CLASSES.get(type_name)
    if cls is not None:
        return cls
    known = solver_type_list()
    close = [t for t in known if t.lower() == type_name.lower()] or \
        difflib.get_close_matches(type_name, known, n=1, cutoff=0.5)
    fix = ("did you mean " + " or ".join(f"'{t}'" for t in close) + "?"
           if close else "use one of " + ", ".join(known) +
           " (types are case-sensitive)")
    where = source.where("type", "solver_type") if source else {}
    raise KaffeConfigError(
        "is not a known solver type", field="type", received=type_name,
        expected="one of " + ", ".join(known), fix=fix, **where)


def get_solver(solver, dtype=np.float32, source=None):
    """Build the solver that ``type`` (after the solver_type upgrade) names.

    Args:
        solver: a solver.prototxt path or a caffe_pb2.SolverParameter.
        dtype: the nets' float type (float32 as Caffe; float64 for checks).
        source: with a SolverParameter that :func:`load_solver` read and the
            caller then changed (as ``caffe train`` sets train_state and
            weights), the SolverSource it returned, so that errors keep
            naming the file and line.

    Returns:
        An SGDSolver, NesterovSolver, AdaGradSolver, RMSPropSolver,
        AdaDeltaSolver or AdamSolver.
    """
    if source is None:
        param, source = load_solver(solver)
    else:
        param = solver
    cls = solver_class(param.type, source)
    return cls(param, dtype=dtype, source=source)
