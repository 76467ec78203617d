"""What the wheel ships beside the code: one version, and type stubs that
match the native module."""

import ast
import importlib.metadata
import importlib.resources

import tensorswap
from tensorswap import _native


def test_the_package_has_one_version():
    assert tensorswap.__version__ == _native.__version__
    assert tensorswap.__version__ == importlib.metadata.version("tensorswap")


def test_the_package_says_it_is_typed():
    assert importlib.resources.files("tensorswap").joinpath("py.typed").is_file()


def test_the_stubs_name_every_public_method_of_the_native_classes():
    stub = importlib.resources.files("tensorswap").joinpath("_native.pyi").read_text()
    tree = ast.parse(stub)
    stubbed = {
        node.name: {item.name for item in node.body if isinstance(item, ast.FunctionDef)}
        for node in tree.body
        if isinstance(node, ast.ClassDef)
    }
    for cls in (_native.aio_handle, _native.pin_handle, _native.LockedBlock):
        public = {name for name in dir(cls) if not name.startswith("_")}
        assert cls.__name__ in stubbed, f"{cls.__name__} has no stub"
        missing = public - stubbed[cls.__name__]
        assert not missing, f"{cls.__name__}: no stub for {sorted(missing)}"
        extra = stubbed[cls.__name__] - public - {"__init__"}
        assert not extra, f"{cls.__name__}: stubs for what it lacks: {sorted(extra)}"
