"""kaffe.optional: every optional dependency is imported in one place, and a
missing one is refused with one message format and its install command."""
import pathlib
import re

import pytest

from kaffe.errors import KaffeConfigError, KaffeError
from kaffe.optional import PACKAGES, available, install_hint, require

KAFFE = pathlib.Path(__file__).resolve().parents[1] / "kaffe"


def test_missing_package_is_a_kaffe_error_with_its_install_command():
    with pytest.raises(KaffeConfigError) as info:
        require("h5py_not_a_real_module", "reading something", field="--x")
    message = str(info.value)
    assert "reading something needs the h5py_not_a_real_module package" \
        in message
    assert info.value.field == "--x"
    assert info.value.fix == "pip install h5py_not_a_real_module"


def test_known_packages_name_their_extra():
    assert install_hint("h5py") == "pip install kaffe[hdf5] (or pip install h5py)"
    assert install_hint("PIL.Image") == \
        "pip install kaffe[data] (or pip install Pillow)"
    assert install_hint("pydot") == "pip install pydot"
    assert install_hint("h5py", "data") == \
        "pip install kaffe[data] (or pip install h5py)"


def test_a_fix_adds_an_alternative_and_the_error_class_can_be_chosen():
    with pytest.raises(KaffeError) as info:
        require("no_such_module_kaffe", "a job", fix="or do without",
                error=KaffeError)
    assert type(info.value) is KaffeError
    assert info.value.fix == "pip install no_such_module_kaffe; or do without"


def test_available_returns_the_module_or_none():
    assert available("no_such_module_kaffe") is None
    assert available("json").dumps([1]) == "[1]"


def test_no_other_module_catches_an_import_error():
    """The optional imports are guarded here and only here (a Python layer's
    own module is the user's, not an optional dependency)."""
    offenders = []
    for path in KAFFE.rglob("*.py"):
        if path.name == "optional.py" or path.name.endswith("_pb2.py"):
            continue
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"except (ImportError|ModuleNotFoundError)",
                                 text):
            line = text.count("\n", 0, match.start()) + 1
            offenders.append(f"{path.relative_to(KAFFE)}:{line}")
    assert all(o.startswith("layers/common/python_layer.py:")
               for o in offenders)


def test_every_extra_named_exists_in_pyproject():
    text = (KAFFE.parent / "pyproject.toml").read_text(encoding="utf-8")
    for package, extra in PACKAGES.values():
        if extra is not None:
            assert re.search(rf"^{re.escape(extra)} = \[", text, re.M), extra
