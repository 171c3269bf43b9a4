"""docs/graph.md's example runs and says what it shows."""
import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_blocks(path):
    with open(path, encoding="utf-8") as f:
        return re.findall(r"```python\n(.*?)```", f.read(), re.S)


def test_the_graph_example_runs(monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    example = python_blocks(os.path.join(REPO, "docs", "graph.md"))[0]
    scope = {}
    exec(compile(example, "docs/graph.md", "exec"), scope)
    out = capsys.readouterr().out
    assert " 1 conv1    Convolution    ('data',) -> ('conv1',) " \
        "[(64, 20, 24, 24)]" in out
    assert "     1: (20,) lr_mult 2.0 decay_mult 1.0 owner None" in out
    assert scope["g"].output_spatial((12, 12)) == (8, 8)
    assert scope["pool1"].output_spatial((24, 24)) == (12, 12)
    assert scope["loss"] == 0.0        # LeNet's deploy net has no loss


def test_the_readme_graph_example_runs(monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    blocks = python_blocks(os.path.join(REPO, "README.md"))
    example = next(b for b in blocks if "net.graph" in b)
    import kaffe
    scope = {"kaffe": kaffe}
    exec(compile(example, "README.md", "exec"), scope)
    assert "conv1 Convolution ('data',) -> ('conv1',) False False" in \
        capsys.readouterr().out
    assert scope["net"].blob_shapes()["pool1"] == (64, 20, 12, 12)
