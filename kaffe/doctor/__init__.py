"""``kaffe doctor``: why training goes wrong, with the numbers that show it.

* :mod:`.record` — a Recorder that samples per-layer statistics through the
  net's and the solver's public callbacks;
* :mod:`.store` — a recorded run in memory or in a ``--stats`` directory;
* :mod:`.describe` — the net (through ``net.graph``) and weight files as the
  checks see them;
* :mod:`.checks` — one small function per kind of finding;
* :mod:`.findings` — the Finding, its kinds and severities, the ordering;
* :mod:`.run` — the three ways in: a solver, a deploy net, a directory.
"""
from .findings import KINDS, SEVERITIES, Finding, healthy, ordered, \
    report_json
from .record import Recorder
from .run import diagnose_model, diagnose_solver, diagnose_stats
from .store import Run, StatsWriter, read_run

__all__ = ["KINDS", "SEVERITIES", "Finding", "Recorder", "Run",
           "StatsWriter", "diagnose_model", "diagnose_solver",
           "diagnose_stats", "healthy", "ordered", "read_run",
           "report_json"]
