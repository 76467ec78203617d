"""The DeepSpeed switch: TENSORSWAP_DEEPSPEED=1 (through the .pth file) or
tensorswap.deepspeed.install() makes AsyncIOBuilder().load() return
tensorswap's op, in the process and in the workers it starts."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("deepspeed", reason="DeepSpeed is not installed (scripts/deepspeed-suite.sh installs it)")

CHECK = """
import multiprocessing as mp
import deepspeed
from deepspeed.ops.op_builder import AsyncIOBuilder, PinMemoryBuilder
import tensorswap

def probe(_):
    from deepspeed.ops.op_builder import AsyncIOBuilder
    return AsyncIOBuilder().load().aio_handle is tensorswap.aio_handle

if __name__ == "__main__":
    {install}
    assert deepspeed.ops.__compatible_ops__[AsyncIOBuilder.NAME] is True
    assert deepspeed.ops.__compatible_ops__[PinMemoryBuilder.NAME] is True
    assert AsyncIOBuilder().load().aio_handle is tensorswap.aio_handle
    assert PinMemoryBuilder().load().pin_handle is tensorswap.pin_handle
    with mp.get_context("forkserver").Pool(1) as pool:
        assert pool.map(probe, [0]) == [True], "a forkserver worker got DeepSpeed's own op"
    print("ours")
"""


@pytest.fixture
def run(tmp_path):
    """Runs `code` as a script file (forkserver workers re-import it)."""

    def run(code, **env):
        environ = dict(os.environ, DS_ACCELERATOR="cpu")
        environ.pop("TENSORSWAP_DEEPSPEED", None)
        environ.update(env)
        script = tmp_path / "check.py"
        script.write_text(code)
        return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=environ,
                              timeout=300)

    return run


def test_the_environment_variable_reaches_every_process(run):
    done = run(CHECK.format(install="pass"), TENSORSWAP_DEEPSPEED="1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ours" in done.stdout


def test_install_after_importing_deepspeed_works_too(run):
    code = CHECK.format(install="import tensorswap.deepspeed; tensorswap.deepspeed.install()")
    done = run(code)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ours" in done.stdout


def test_without_the_switch_deepspeed_keeps_its_own_op(run):
    code = """
import sys
import deepspeed
from deepspeed.ops.op_builder.builder import OpBuilder
assert "async_io" not in OpBuilder._loaded_ops
assert not any(type(f).__name__ == "_Finder" for f in sys.meta_path)
print("theirs")
"""
    done = run(code)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "theirs" in done.stdout
