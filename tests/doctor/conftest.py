import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def digits_db(tmp_path_factory):
    """The MNIST-like LMDB (labels 0..9), written once per session."""
    pytest.importorskip("lmdb", reason="lmdb (kaffe[data]) not installed")
    import doctor_recipes as recipes
    images, labels = recipes.digits()
    return recipes.write_lmdb(tmp_path_factory.mktemp("digits") / "lmdb",
                              images, labels)
