"""The package's layering: leaves are leaves, old import paths still work."""
import ast
import pathlib

import kaffe
import kaffe.backend
import kaffe.core.backend
import kaffe.core.errors
import kaffe.core.geometry
import kaffe.errors
import kaffe.ops.geometry

PACKAGE = pathlib.Path(kaffe.__file__).parent


def imported_modules(path, package):
    """Absolute names of every module ``path`` imports (any depth)."""
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) -
                                           node.level + 1]
                module = ".".join(base + ([node.module] if node.module
                                          else []))
            else:
                module = node.module
            names.append(module)
            names.extend(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_proto_and_ops_import_nothing_from_kaffe_core():
    offenders = []
    for folder in ("proto", "ops"):
        for path in sorted((PACKAGE / folder).glob("*.py")):
            for name in imported_modules(path, f"kaffe.{folder}"):
                if name == "kaffe.core" or name.startswith("kaffe.core."):
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []


def test_errors_and_backend_are_leaves():
    for module in ("errors.py", "backend.py", "ops/geometry.py"):
        kaffe_imports = [name for name in imported_modules(
            PACKAGE / module, "kaffe") if name.startswith("kaffe")]
        assert kaffe_imports == [], module


def test_old_import_paths_name_the_same_objects():
    for name in ("KaffeError", "KaffeConfigError", "KaffeShapeError",
                 "KaffeFormatError"):
        assert getattr(kaffe.core.errors, name) is getattr(kaffe.errors, name)
        assert getattr(kaffe, name) is getattr(kaffe.errors, name)
    for name in ("array_module", "gpu_available", "to_numpy"):
        assert getattr(kaffe.core.backend, name) is getattr(kaffe.backend,
                                                            name)
    for name in ("ConvGeometry", "PoolGeometry", "pooled_size"):
        assert getattr(kaffe.core.geometry, name) is getattr(
            kaffe.ops.geometry, name)
