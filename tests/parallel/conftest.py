"""Fixtures of the kaffe.parallel tests: ``mpiexec`` skips (with the reason)
where mpi4py or mpiexec is missing."""
import pytest

from mpi_jobs import find_mpiexec


@pytest.fixture
def mpiexec():
    """The mpiexec command (skips without mpi4py or mpiexec)."""
    pytest.importorskip("mpi4py", reason="mpi4py (kaffe[mpi]) not installed")
    path = find_mpiexec()
    if path is None:
        pytest.skip("no mpiexec on PATH (pip install 'kaffe[mpi]' brings "
                    "MPICH's)")
    return path
