"""Where DeepSpeed's engine aborts the process or drops bytes, ours gives
DeepSpeed's documented return value (-1, with a warning saying why) or a
Python exception, and loses nothing."""

import gc
import os
import subprocess
import sys
import threading

import pytest
import torch

from conftest import random_file
from tensorswap import aio_handle


def as_bytes(t):
    return bytes(t.contiguous().view(torch.uint8).numpy())


def test_a_read_past_the_end_of_the_file_is_minus_one_and_touches_nothing(folder):
    h = aio_handle(1024, 2, False, False, 1)
    path, _ = random_file(folder, "short", 1000)
    buf = torch.full((2000,), 5, dtype=torch.uint8)
    with pytest.warns(RuntimeWarning, match="past the end"):
        assert h.sync_pread(buf, path) == -1
    with pytest.warns(RuntimeWarning, match="past the end"):
        assert h.async_pread(buf, path, 500) == -1
    assert h.wait() == 0
    assert as_bytes(buf) == bytes([5] * 2000)


def test_wait_with_nothing_pending_is_zero():
    h = aio_handle()
    assert h.wait() == 0
    assert h.wait() == 0


def test_a_missing_file_is_minus_one(folder):
    h = aio_handle()
    buf = torch.empty(10, dtype=torch.uint8)
    with pytest.warns(RuntimeWarning, match="No such file"):
        assert h.sync_pread(buf, os.path.join(folder, "missing")) == -1
    with pytest.warns(RuntimeWarning, match="No such file"):
        assert h.read(buf, os.path.join(folder, "missing"), False) == -1
    with pytest.warns(RuntimeWarning, match="No such file"):
        assert h.sync_pwrite(buf, os.path.join(folder, "no", "folder")) == -1


def test_bad_offsets_and_lengths_are_minus_one(folder):
    h = aio_handle(1024, 2, False, False, 4)
    path, _ = random_file(folder, "f", 4096)
    with pytest.warns(RuntimeWarning, match="negative"):
        assert h.sync_pread(torch.empty(16, dtype=torch.uint8), path, -1) == -1
    with pytest.warns(RuntimeWarning, match="not divisible"):
        assert h.sync_pread(torch.empty(15, dtype=torch.uint8), path) == -1
    with pytest.warns(RuntimeWarning, match="not open"):
        assert h.async_pwrite(torch.empty(16, dtype=torch.uint8), fd=-1) == -1


def test_a_handle_dropped_with_work_in_flight_finishes_it(folder):
    path, data = random_file(folder, "big", 8 << 20)
    buf = torch.zeros(len(data), dtype=torch.uint8)
    h = aio_handle(4096, 2, True, False, 1)
    assert h.async_pread(buf, path) == 0
    out = os.path.join(folder, "out")
    assert h.async_pwrite(torch.full((1 << 20,), 3, dtype=torch.uint8), out) == 0
    del h
    gc.collect()
    assert as_bytes(buf) == data
    assert open(out, "rb").read() == bytes([3] * (1 << 20))


@pytest.mark.parametrize("direct_fd", [False, True])
def test_unaligned_buffers_offsets_and_lengths_work_under_o_direct(folder, direct_fd):
    h = aio_handle(4096, 4, False, False, 1)
    backing = torch.randint(0, 255, (20_000,), dtype=torch.uint8)
    src = backing[3:3 + 10_001]  # an odd address and an odd length
    assert src.data_ptr() % 512 != 0
    path = os.path.join(folder, "unaligned")
    if direct_fd:
        fd = os.open(path, os.O_DIRECT | os.O_CREAT | os.O_WRONLY)
        try:
            assert h.async_pwrite(src, fd=fd, file_offset=777) == 0
            assert h.wait() == 1
        finally:
            os.close(fd)
    else:
        assert h.sync_pwrite(src, path, 777) == 1
    assert open(path, "rb").read()[777:] == as_bytes(src)
    dst_backing = torch.zeros(20_000, dtype=torch.uint8)
    dst = dst_backing[5:5 + 10_001]
    assert h.sync_pread(dst, path, 777) == 1
    assert torch.equal(dst, src)
    assert int(dst_backing[:5].sum()) == 0 and int(dst_backing[5 + 10_001:].sum()) == 0


def test_an_io_error_raises_from_wait_after_everything_finished(folder):
    # A file-size limit makes the write past 64 KiB fail with EFBIG; in a
    # child process, so the limit stays there.
    script = f"""
import errno, os, resource, signal, torch
from tensorswap import aio_handle
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, resource.RLIM_INFINITY))
h = aio_handle(4096, 2, False, False, 1)
ok = os.path.join({folder!r}, "ok")
assert h.async_pwrite(torch.full((4096,), 1, dtype=torch.uint8), ok) == 0
assert h.async_pwrite(torch.full((1 << 20,), 2, dtype=torch.uint8), os.path.join({folder!r}, "big")) == 0
try:
    h.wait()
except OSError as e:
    assert e.errno == errno.EFBIG, e
    print("raised", e)
else:
    raise SystemExit("wait() did not raise")
assert open(ok, "rb").read() == bytes([1] * 4096), "the other write was lost"
assert h.wait() == 0
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "raised" in done.stdout


def test_non_contiguous_and_strided_tensors_go_through_a_bounce_buffer(folder):
    h = aio_handle(1024, 2, False, False, 2)
    src = torch.arange(0, 64 * 48, dtype=torch.float32).reshape(64, 48).t()
    assert not src.is_contiguous()
    path = os.path.join(folder, "t")
    assert h.sync_pwrite(src, path) == 1
    assert open(path, "rb").read() == as_bytes(src)
    dst = torch.zeros(64, 48, dtype=torch.float32).t()
    assert h.sync_pread(dst, path) == 1
    assert torch.equal(dst, src)


def test_a_tensor_in_flight_stays_alive_when_the_caller_lets_go(folder):
    path, data = random_file(folder, "f", 4 << 20)
    h = aio_handle(4096, 1, True, False, 1)
    param = torch.nn.Parameter(torch.zeros(len(data), dtype=torch.uint8), requires_grad=False)
    assert h.async_pread(param.data, path) == 0
    # DeepSpeed rebinds param.data while reads are in flight; then the old
    # storage has no owner but the operation.
    param.data = torch.empty(0, dtype=torch.uint8)
    gc.collect()
    # Memory freed under the read would now be handed out again here.
    fresh = [torch.zeros(len(data), dtype=torch.uint8) for _ in range(4)]
    assert h.wait() == 1
    assert all(int(t.sum()) == 0 for t in fresh), "the read landed in freed memory"


def test_the_gil_is_released_while_waiting(folder):
    path, _ = random_file(folder, "f", 32 << 20)
    h = aio_handle(4096, 1, True, False, 1)
    buf = torch.empty(32 << 20, dtype=torch.uint8)
    ticks = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(1)

    t = threading.Thread(target=count)
    t.start()
    try:
        before = len(ticks)
        assert h.sync_pread(buf, path) == 1
        during = len(ticks) - before
    finally:
        stop.set()
        t.join()
    assert during > 0, "no Python ran while the read waited"
