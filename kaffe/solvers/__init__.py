"""Caffe's solvers: the training loop and its six update rules.

``get_solver(path)`` builds the class the solver's ``type`` names; the
classes take a solver.prototxt path or a SolverParameter, as pycaffe's do.
"""
from .adadelta import AdaDeltaSolver
from .adagrad import AdaGradSolver
from .adam import AdamSolver
from .nesterov import NesterovSolver
from .rmsprop import RMSPropSolver
from .sgd import SGDSolver
from .solver import (NONE, SNAPSHOT, STOP, Solver, SolverSource, get_solver,
                     load_solver, solver_class, solver_type_list)

__all__ = [
    "AdaDeltaSolver", "AdaGradSolver", "AdamSolver", "NONE",
    "NesterovSolver", "RMSPropSolver", "SGDSolver", "SNAPSHOT", "STOP",
    "Solver", "SolverSource", "get_solver", "load_solver", "solver_class",
    "solver_type_list",
]
