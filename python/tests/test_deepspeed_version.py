"""The DeepSpeed switch acts only on DeepSpeed versions its tests ran on:
another version gets a RuntimeWarning and keeps DeepSpeed's native op,
unless the switch is forced. Checked on a stand-in `deepspeed` package with
the shape the switch patches, so it runs without DeepSpeed."""

import os
import subprocess
import sys
import textwrap

import pytest

import tensorswap.deepspeed

FAKE = {
    "deepspeed/__init__.py": '__version__ = "{version}"\n',
    "deepspeed/ops/__init__.py": textwrap.dedent(
        """
        def _probe_compatible_ops():
            return {"async_io": False, "pin_memory": False}
        __compatible_ops__ = _probe_compatible_ops()
        """
    ),
    "deepspeed/ops/op_builder/__init__.py": "from .builder import OpBuilder, AsyncIOBuilder\n",
    "deepspeed/ops/op_builder/builder.py": textwrap.dedent(
        """
        class OpBuilder:
            _loaded_ops = {}
            def load(self):
                return self._loaded_ops.get(self.NAME, "native")
        class AsyncIOBuilder(OpBuilder):
            NAME = "async_io"
            def is_compatible(self, verbose=False):
                return False
        """
    ),
}

CHECK = textwrap.dedent(
    """
    import warnings
    warnings.simplefilter("always")
    {install}
    import deepspeed.ops
    from deepspeed.ops.op_builder import AsyncIOBuilder
    import tensorswap.dnvme
    print("ours" if AsyncIOBuilder().load() is tensorswap.dnvme else "native")
    """
)


@pytest.fixture
def run(tmp_path):
    """Runs `code` in a fresh interpreter that imports the stand-in
    DeepSpeed of `version`."""

    def run(code, version, **env):
        for name, text in FAKE.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text.replace("{version}", version))
        environ = dict(os.environ)
        environ.pop("TENSORSWAP_DEEPSPEED", None)
        environ["PYTHONPATH"] = os.pathsep.join([str(tmp_path), environ.get("PYTHONPATH", "")])
        environ.update(env)
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ,
                              timeout=120)

    return run


def test_a_tested_version_is_switched_without_a_word(run):
    done = run(CHECK.format(install=""), tensorswap.deepspeed.TESTED_DEEPSPEED[0], TENSORSWAP_DEEPSPEED="1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ours"
    assert "RuntimeWarning" not in done.stderr


def test_an_untested_version_keeps_its_native_op_and_says_why(run):
    done = run(CHECK.format(install=""), "0.1.0", TENSORSWAP_DEEPSPEED="1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "native"
    assert "RuntimeWarning" in done.stderr and "not 0.1.0" in done.stderr, done.stderr
    assert "TENSORSWAP_DEEPSPEED=force" in done.stderr
    assert done.stderr.count("RuntimeWarning") == 1, "said once per process"


def test_forcing_switches_an_untested_version(run):
    done = run(CHECK.format(install=""), "0.1.0", TENSORSWAP_DEEPSPEED="force")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ours"
    forced = run(CHECK.format(install="import tensorswap.deepspeed; tensorswap.deepspeed.install(force=True)"),
                 "0.1.0")
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.strip() == "ours"


def test_a_local_build_suffix_is_the_same_version(run):
    version = tensorswap.deepspeed.TESTED_DEEPSPEED[0] + "+abc123"
    done = run(CHECK.format(install=""), version, TENSORSWAP_DEEPSPEED="1")
    assert done.stdout.strip() == "ours", done.stderr
