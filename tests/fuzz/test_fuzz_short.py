"""The fuzz harness's short run: a few hundred mutated files of every kind
through the API and the CLI; none may fail (see kaffe/testing/fuzz and
docs/robustness.md; scripts/fuzz.py is the long run)."""
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"),
    reason="the harness limits its worker with Linux rlimits")


def test_short_fuzz_run_has_no_failures(tmp_path):
    from kaffe.testing.fuzz.runner import fuzz
    stats = fuzz(tmp_path, 240, seed=14, cli_fraction=0.25, timeout=20.0)
    assert stats.cases >= 200, stats.report()
    assert stats.counts["kaffe"] > 0, stats.report()   # files were refused
    assert stats.failures == 0, stats.report()
