"""The switch that makes DeepSpeed use tensorswap's engine: every
``AsyncIOBuilder().load()`` (and ``PinMemoryBuilder().load()``) in the
process returns tensorswap's op, and ``deepspeed.ops.__compatible_ops__``
counts both as compatible. Nothing in DeepSpeed is edited: its op cache is
filled and its compatibility probe is wrapped, as DeepSpeed's modules are
imported.

Two ways to turn it on:

- ``TENSORSWAP_DEEPSPEED=1`` in the environment: a ``.pth`` file the wheel
  installs runs :func:`install` at the start of every Python process,
  worker processes that DeepSpeed or its test harness spawn included;
- :func:`install` from the program, before or after importing DeepSpeed;
  it also sets the variable, so processes started afterwards follow.

The switch patches DeepSpeed's internals, so it acts only on the DeepSpeed
versions whose own tests have run on it (:data:`TESTED_DEEPSPEED`). With
any other version it warns once (``RuntimeWarning``) and leaves DeepSpeed's
native op in place, unless forced: ``TENSORSWAP_DEEPSPEED=force`` or
``install(force=True)``.
"""

import importlib.abc
import importlib.machinery
import importlib.metadata
import os
import sys
import types
import warnings

#: The variable that turns the switch on in every process: ``1``, or
#: ``force`` to act on a DeepSpeed version it was not tested with.
ENV_VAR = "TENSORSWAP_DEEPSPEED"

#: The DeepSpeed versions whose tests run on the switch (``scripts/deepspeed-suite.sh``).
TESTED_DEEPSPEED = ("0.19.8",)

_ASYNC_IO = "async_io"
_PIN_MEMORY = "pin_memory"
_OPS = {}


def _op_modules():
    """The op modules DeepSpeed's builders return (made once): async_io is
    :mod:`tensorswap.dnvme`; pin_memory's has no ``__file__``, which
    DeepSpeed's pin-memory loader would ``dlopen``."""
    if not _OPS:
        from tensorswap import _native, dnvme

        pin = types.ModuleType("tensorswap_pin_memory", "DeepSpeed's pin_memory op on tensorswap")
        pin.pin_handle = _native.pin_handle
        _OPS[_ASYNC_IO] = dnvme
        _OPS[_PIN_MEMORY] = pin
    return _OPS


def _compatible(self, verbose=False):
    return True


_VERSION_VERDICT = {}


def _deepspeed_version():
    """The DeepSpeed version in this process (its package's own
    ``__version__`` when imported, else its installed metadata), without
    a local build suffix; None when it cannot be told."""
    version = getattr(sys.modules.get("deepspeed"), "__version__", None)
    if version is None:
        try:
            version = importlib.metadata.version("deepspeed")
        except importlib.metadata.PackageNotFoundError:
            return None
    return str(version).split("+")[0]


def _version_ok():
    """Whether the switch may patch this DeepSpeed: a tested version, or
    forced. Decided (and warned about) once per process."""
    if "ok" not in _VERSION_VERDICT:
        version = _deepspeed_version()
        forced = os.environ.get(ENV_VAR) == "force"
        ok = forced or version in TESTED_DEEPSPEED
        if not ok:
            warnings.warn(
                f"tensorswap's DeepSpeed switch was tested with DeepSpeed {', '.join(TESTED_DEEPSPEED)}, "
                f"not {version or 'this (unknown) version'}: DeepSpeed keeps its native async_io and "
                f"pin_memory ops. Set {ENV_VAR}=force (or call tensorswap.deepspeed.install(force=True)) "
                "to use tensorswap's engine anyway.",
                RuntimeWarning,
                stacklevel=2,
            )
        _VERSION_VERDICT["ok"] = ok
    return _VERSION_VERDICT["ok"]


def _patch(module):
    """Patches whatever of DeepSpeed `module` holds (idempotent), when the
    DeepSpeed version allows."""
    if not _version_ok():
        return
    ops = _op_modules()
    name = module.__name__
    builder = getattr(module, "OpBuilder", None)
    if name.endswith("op_builder.builder") and isinstance(builder, type):
        builder._loaded_ops.update(ops)
        # DeepSpeed's pin-memory loader caches its module here.
        sys._deepspeed_pin_memory_op_module = ops[_PIN_MEMORY]
    for value in list(vars(module).values()):
        if isinstance(value, type) and getattr(value, "NAME", None) in ops:
            if hasattr(value, "is_compatible"):
                value.is_compatible = _compatible
    if name == "deepspeed.ops":
        probe = module.__dict__.get("_probe_compatible_ops")
        if probe is not None and not getattr(probe, "_tensorswap", False):

            def probe_with_ours():
                found = probe()
                found.update(dict.fromkeys(ops, True))
                return found

            probe_with_ours._tensorswap = True
            module._probe_compatible_ops = probe_with_ours
        cached = module.__dict__.get("__compatible_ops__")
        if isinstance(cached, dict):
            cached.update(dict.fromkeys(ops, True))


def _wanted(fullname):
    return fullname == "deepspeed.ops" or fullname.startswith("deepspeed.ops.op_builder")


class _Loader(importlib.abc.Loader):
    """Runs a module's own loader, then patches the module."""

    def __init__(self, inner):
        self._inner = inner

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module):
        self._inner.exec_module(module)
        _patch(module)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds DeepSpeed's op modules as the other finders would, and wraps
    their loader with the patch."""

    def find_spec(self, fullname, path, target=None):
        if not _wanted(fullname):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader)
                return spec
        return None


def install(force=False):
    """Makes DeepSpeed use tensorswap's engine in this process and in the
    processes it starts from now on. Safe to call more than once.

    With a DeepSpeed version not in :data:`TESTED_DEEPSPEED`, it warns and
    does nothing unless `force` is true."""
    if force or os.environ.get(ENV_VAR) != "force":
        os.environ[ENV_VAR] = "force" if force else "1"
    if force:
        _VERSION_VERDICT.clear()
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
    # What DeepSpeed already imported is patched now.
    for fullname, module in list(sys.modules.items()):
        if module is not None and _wanted(fullname):
            _patch(module)


def installed():
    """Whether :func:`install` ran in this process (DeepSpeed's ops are
    replaced only if its version is tested, or the switch was forced)."""
    return any(isinstance(f, _Finder) for f in sys.meta_path)
