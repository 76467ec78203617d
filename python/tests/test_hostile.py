"""Hostile use of aio_handle: fork, threads sharing a handle, memory freed
while an operation is pending, views whose bytes are not their values,
odd names and buffers. Each test failed before its fix."""

import multiprocessing
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest
import torch

from conftest import random_file
from tensorswap import aio_handle

# Where fork children need to end: a hang fails the test, not the suite.
CHILD_TIMEOUT = 60


def as_bytes(t):
    return bytes(t.contiguous().view(torch.uint8).numpy())


# -- after fork -------------------------------------------------------------


def _run(script):
    """Runs `script` in its own process group, killed whole (forked
    children included, which would hold its pipes open) if it hangs."""
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = child.communicate(timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        out, err = child.communicate()
        pytest.fail(f"hung for {CHILD_TIMEOUT} s: {out}{err}")
    assert child.returncode == 0, out + err
    return out


def test_a_handle_used_after_fork_raises_in_the_child(folder):
    path, _ = random_file(folder, "f", 1 << 20)
    out = _run(f"""
import os, torch
from tensorswap import aio_handle
h = aio_handle()
buf = torch.empty(1 << 20, dtype=torch.uint8)
assert h.sync_pread(buf, {path!r}) == 1
pid = os.fork()
if pid == 0:
    try:
        h.sync_pread(buf, {path!r})
    except RuntimeError as e:
        print("child raised:", e, flush=True)
        os._exit(0 if "make a new aio_handle" in str(e) else 3)
    os._exit(4)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
assert h.sync_pread(buf, {path!r}) == 1, "the parent's handle still works"
print("ok")
""")
    assert "child raised: this aio_handle was created in process" in out
    assert out.strip().endswith("ok")


def test_a_child_that_never_touches_the_handle_exits_while_a_read_is_in_flight(folder):
    path, _ = random_file(folder, "f", 32 << 20)
    _run(f"""
import os, sys, torch
from tensorswap import aio_handle
h = aio_handle(4096, 1, True, False, 1)
buf = torch.empty(32 << 20, dtype=torch.uint8)
assert h.async_pread(buf, {path!r}) == 0
pid = os.fork()
if pid == 0:
    sys.exit(0)  # the interpreter's exit drops the handle
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
assert h.wait() == 1
""")


def _child_reads(h, path, queue):
    buf = torch.empty(4096, dtype=torch.uint8)
    try:
        h.sync_pread(buf, path)
        queue.put("no error")
    except RuntimeError as e:
        queue.put(str(e))


def test_multiprocessing_fork_children_get_the_error(folder):
    path, _ = random_file(folder, "f", 4096)
    h = aio_handle()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork in a process with threads.
        warnings.simplefilter("ignore", DeprecationWarning)
        child = ctx.Process(target=_child_reads, args=(h, path, queue))
        child.start()
    child.join(CHILD_TIMEOUT)
    assert child.exitcode == 0
    assert "make a new aio_handle" in queue.get(timeout=5)


def _spawned(path, queue):
    # A spawned process makes its own handle: that one works.
    h = aio_handle()
    buf = torch.empty(4096, dtype=torch.uint8)
    queue.put(h.sync_pread(buf, path))


def test_multiprocessing_spawn_children_make_their_own_handle(folder):
    path, _ = random_file(folder, "f", 4096)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_spawned, args=(path, queue))
    child.start()
    child.join(CHILD_TIMEOUT)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == 1


# -- threads sharing a handle -----------------------------------------------


def test_wait_returns_only_after_every_earlier_operation_landed(folder):
    size = 24 << 20
    path, data = random_file(folder, "f", size)
    h = aio_handle(4096, 1, True, False, 1)
    stop = threading.Event()

    def waiter():
        while not stop.is_set():
            h.wait()

    thief = threading.Thread(target=waiter)
    thief.start()
    try:
        for _ in range(20):
            dst = torch.zeros(size, dtype=torch.uint8)
            assert h.async_pread(dst, path) == 0
            time.sleep(0.002)  # the other thread's wait() may reap it now
            h.wait()
            assert as_bytes(dst) == data, "wait() returned before the read landed"
    finally:
        stop.set()
        thief.join()


# -- memory freed while an operation is pending -----------------------------


@pytest.mark.parametrize("size", [100_000, 64 << 20])
@pytest.mark.parametrize("free", ["storage", "grow"])
def test_freeing_a_tensors_memory_during_a_read_never_lands_elsewhere(folder, free, size):
    path, data = random_file(folder, "f", size)
    h = aio_handle(4096, 1, True, False, 1)
    for _ in range(3):
        t = torch.zeros(size, dtype=torch.uint8)
        assert h.async_pread(t, path) == 0
        if free == "storage":
            t.untyped_storage().resize_(0)
        else:
            t.resize_(size * 2)
        fresh = [torch.zeros(size, dtype=torch.uint8) for _ in range(3)]
        with pytest.raises(RuntimeError, match="freed or moved"):
            h.wait()
        assert all(int(f.count_nonzero()) == 0 for f in fresh), "the read landed in another tensor"


def test_locked_tensors_take_io_in_place_and_cannot_be_resized_meanwhile(folder):
    path, data = random_file(folder, "f", 1 << 20)
    h = aio_handle()
    t = h.new_cpu_locked_tensor(1 << 20, torch.empty(0, dtype=torch.uint8))
    assert not t.untyped_storage().resizable()
    assert h.async_pread(t, path) == 0
    with pytest.raises(RuntimeError, match="not resizable"):
        t.untyped_storage().resize_(0)
    assert h.wait() == 1
    assert as_bytes(t) == data


# -- views whose bytes are not their values ----------------------------------


def test_conjugate_and_negative_views_are_written_as_their_values(folder):
    h = aio_handle()
    x = torch.tensor([1 + 2j, 3 - 4j], dtype=torch.complex64)
    path = os.path.join(folder, "conj")
    assert h.sync_pwrite(x.conj(), path) == 1
    assert open(path, "rb").read() == as_bytes(x.conj().resolve_conj())
    n = torch.tensor([1.0, -2.0, 3.0])
    path = os.path.join(folder, "neg")
    assert h.sync_pwrite(torch._neg_view(n), path) == 1
    assert open(path, "rb").read() == as_bytes(-n)


def test_a_read_into_a_conjugate_view_shows_the_files_values(folder):
    h = aio_handle()
    x = torch.tensor([1 + 2j, 3 - 4j], dtype=torch.complex64)
    path = os.path.join(folder, "f")
    assert h.sync_pwrite(x, path) == 1
    base = torch.zeros(2, dtype=torch.complex64)
    view = base.conj()
    assert h.sync_pread(view, path) == 1
    assert torch.equal(view.resolve_conj(), x)


def test_a_meta_tensor_is_refused(folder):
    path, _ = random_file(folder, "f", 16)
    h = aio_handle()
    with pytest.raises(ValueError, match="meta tensor"):
        h.sync_pread(torch.empty(16, dtype=torch.uint8, device="meta"), path)


# -- names and descriptors --------------------------------------------------


def test_bool_is_not_a_file_name_nor_a_descriptor(folder):
    h = aio_handle()
    buf = torch.zeros(8, dtype=torch.uint8)
    with pytest.raises(TypeError, match="not bool"):
        h.async_pwrite(buf, True)
    with pytest.raises(TypeError, match="not bool"):
        h.async_pwrite(buf, fd=True)
    with pytest.raises(TypeError, match="not bool"):
        h.sync_pread(buf, False)
    assert h.wait() == 0


def test_a_descriptor_out_of_range_says_so():
    h = aio_handle()
    with pytest.raises(ValueError, match="out of range"):
        h.async_pwrite(torch.zeros(8, dtype=torch.uint8), fd=2**31)


def test_a_nul_in_a_name_is_refused_with_the_reason(folder):
    h = aio_handle()
    with pytest.raises(ValueError, match="NUL"):
        h.sync_pwrite(torch.zeros(8, dtype=torch.uint8), os.path.join(folder, "a\0b"))


def test_pathlike_and_bytes_names_work_including_non_utf8(folder):
    h = aio_handle()
    data = torch.arange(16, dtype=torch.uint8)
    as_path = pathlib.Path(folder) / "p.bin"
    assert h.sync_pwrite(data, as_path) == 1
    odd = os.fsencode(folder) + b"/\xff\xfe.bin"
    assert h.sync_pwrite(data, odd) == 1
    back = torch.zeros(16, dtype=torch.uint8)
    for name in (as_path, odd, str(as_path).encode()):
        assert h.sync_pread(back, name) == 1
        assert torch.equal(back, data)
        back.zero_()


# -- buffers that are not tensors -------------------------------------------


def test_numpy_arrays_and_buffers_are_taken(folder):
    h = aio_handle()
    path = os.path.join(folder, "np")
    a = np.arange(1000, dtype=np.float32)
    assert h.sync_pwrite(a, path) == 1
    assert open(path, "rb").read() == a.tobytes()
    b = np.zeros(1000, dtype=np.float32)
    assert h.sync_pread(b, path) == 1
    assert np.array_equal(a, b)
    ba = bytearray(4000)
    assert h.sync_pread(ba, path) == 1
    assert bytes(ba) == a.tobytes()
    assert h.sync_pwrite(bytes(ba), path) == 1


def test_what_cannot_be_a_buffer_is_a_type_error(folder):
    path, _ = random_file(folder, "f", 64)
    h = aio_handle()
    with pytest.raises(TypeError, match="buffer protocol"):
        h.sync_pread([1, 2, 3], path)
    with pytest.raises(TypeError, match="read-only"):
        h.sync_pread(bytes(64), path)
    with pytest.raises(TypeError, match="read-only"):
        ro = np.zeros(64, dtype=np.uint8)
        ro.setflags(write=False)
        h.sync_pread(ro, path)


# -- the engine in use, and files left behind -------------------------------


def test_the_engine_in_use_is_told():
    assert aio_handle().get_engine() in ("uring", "threads")


def test_a_failed_write_leaves_no_empty_file_of_its_own(folder):
    h = aio_handle()
    path = os.path.join(folder, "huge-offset")
    with pytest.raises(OSError):
        h.sync_pwrite(torch.zeros(4096, dtype=torch.uint8), path, 2**62)
    assert not os.path.exists(path)
    # A file that was there stays, whatever happens to the write.
    kept, data = random_file(folder, "kept", 100)
    with pytest.raises(OSError):
        h.sync_pwrite(torch.zeros(4096, dtype=torch.uint8), kept, 2**62)
    assert open(kept, "rb").read() == data


def test_without_memlock_the_fallback_and_the_advice_are_said(tmp_path):
    # An unprivileged user with a memlock limit of 0: io_uring cannot start
    # on kernels that charge its rings to the limit, and locked tensors stay
    # unlocked. Needs root (to become one) and setpriv.
    setpriv = next((p for p in ("/usr/bin/setpriv", "/bin/setpriv") if os.path.exists(p)), None)
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv to run as an unprivileged user")
    os.chmod(tmp_path, 0o777)
    script = """
import resource, warnings, torch
from tensorswap import aio_handle
resource.setrlimit(resource.RLIMIT_MEMLOCK, (0, 0))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    first = aio_handle()
    second = aio_handle()
    t = first.new_cpu_locked_tensor(1 << 20, torch.empty(0, dtype=torch.uint8))
print("engine", first.get_engine(), second.get_engine())
for w in caught:
    print("warning", w.message)
"""
    done = subprocess.run(
        [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        cwd=tmp_path,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    warned = [line for line in lines if line.startswith("warning")]
    locked = [w for w in warned if "page-locked" in w]
    assert len(locked) == 1 and "ulimit -l" in locked[0], warned
    assert not any("pinning off" in w for w in warned), warned
    engines = next(line for line in lines if line.startswith("engine")).split()[1:]
    fallback = [w for w in warned if "io_uring is not available" in w]
    if engines[0] == "threads":
        assert len(fallback) == 1, f"the fallback is said once: {warned}"
        assert "get_engine()" in fallback[0]
    else:
        assert not fallback, warned
