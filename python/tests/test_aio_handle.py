"""aio_handle: DeepSpeed's calls, defaults and return values."""

import os

import pytest
import torch

from conftest import random_file
from tensorswap import aio_handle


def as_bytes(t):
    return bytes(t.contiguous().view(torch.uint8).numpy())


def test_defaults_and_getters_are_deepspeeds():
    h = aio_handle()
    assert h.get_block_size() == 1 << 20
    assert h.get_queue_depth() == 128
    assert h.get_single_submit() is False
    assert h.get_overlap_events() is False
    assert h.get_intra_op_parallelism() == 1
    assert h.get_alignment() == 512
    h = aio_handle(4096, 4, True, True, 3)
    assert (h.get_block_size(), h.get_queue_depth(), h.get_intra_op_parallelism()) == (4096, 4, 3)
    assert (h.get_single_submit(), h.get_overlap_events()) == (True, True)
    assert h.get_alignment() == 3 * 512


@pytest.mark.parametrize("bad", [0, -1])
def test_a_bad_setting_is_a_value_error(bad):
    with pytest.raises(ValueError, match="block_size"):
        aio_handle(bad, 8, False, False, 1)


@pytest.mark.parametrize("parallelism", [1, 2, 4])
def test_sync_and_async_round_trips(folder, parallelism):
    h = aio_handle(1024, 2, False, True, parallelism)
    path, data = random_file(folder, "ref", 64 * 1024)
    buf = torch.empty(len(data), dtype=torch.uint8)
    assert h.sync_pread(buf, path) == 1
    assert as_bytes(buf) == data

    out = os.path.join(folder, "out")
    assert h.async_pwrite(buf, out) == 0
    assert h.wait() == 1
    assert open(out, "rb").read() == data

    back = torch.zeros(len(data), dtype=torch.uint8)
    assert h.async_pread(back, out, 0) == 0
    assert h.wait() == 1
    assert as_bytes(back) == data


def test_pread_pwrite_with_validate_and_read_write(folder):
    h = aio_handle(4096, 4, False, False, 2)
    path, data = random_file(folder, "ref", 8192)
    buf = torch.empty(8192, dtype=torch.uint8)
    assert h.pread(buf, path, True, False) == 1
    assert h.pwrite(buf, os.path.join(folder, "w"), True, False) == 1
    assert h.pwrite(buf, os.path.join(folder, "w2"), False, True) == 0
    assert h.wait() == 1
    assert open(os.path.join(folder, "w2"), "rb").read() == data
    # The non-parallel calls return 0.
    other = torch.empty(8192, dtype=torch.uint8)
    assert h.read(other, path, True) == 0
    assert as_bytes(other) == data
    assert h.write(other, os.path.join(folder, "w3"), True) == 0
    assert open(os.path.join(folder, "w3"), "rb").read() == data


def test_a_synchronous_call_also_completes_earlier_asynchronous_ones(folder):
    h = aio_handle(1024, 2, False, False, 1)
    paths = [random_file(folder, f"f{i}", 4096) for i in range(3)]
    bufs = [torch.empty(4096, dtype=torch.uint8) for _ in paths]
    assert h.async_pread(bufs[0], paths[0][0]) == 0
    assert h.async_pread(bufs[1], paths[1][0]) == 0
    assert h.sync_pread(bufs[2], paths[2][0]) == 3
    assert h.wait() == 0
    for buf, (_, data) in zip(bufs, paths):
        assert as_bytes(buf) == data


def test_writes_never_truncate_and_land_at_their_offset(folder):
    h = aio_handle(1024, 2, False, False, 1)
    path, data = random_file(folder, "f", 10_000)
    patch = torch.full((100,), 7, dtype=torch.uint8)
    assert h.sync_pwrite(patch, path, 300) == 1
    got = open(path, "rb").read()
    assert len(got) == 10_000
    assert got == data[:300] + bytes([7] * 100) + data[400:]


def test_write_by_descriptor(folder):
    h = aio_handle(1024, 2, True, True, 2)
    path = os.path.join(folder, "fd")
    fd = os.open(path, os.O_DIRECT | os.O_CREAT | os.O_WRONLY)
    try:
        data = torch.randint(0, 255, (6144,), dtype=torch.uint8)
        assert h.async_pwrite(buffer=data, fd=fd, file_offset=1024) == 0
        assert h.wait() == 1
        # Positionally, an int where the name goes is a descriptor too.
        assert h.async_pwrite(data[:1024], fd, 0) == 0
        assert h.wait() == 1
    finally:
        os.close(fd)
    got = open(path, "rb").read()
    assert got == as_bytes(data[:1024]) + as_bytes(data)


def test_dtypes_and_shapes_move_their_bytes(folder):
    h = aio_handle(4096, 4, False, False, 2)
    for dtype in [torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.float64]:
        src = torch.randn(6, 10).to(dtype)
        path = os.path.join(folder, f"{dtype}")
        assert h.sync_pwrite(src, path) == 1
        dst = torch.zeros(6, 10, dtype=dtype)
        assert h.sync_pread(dst, path) == 1
        assert torch.equal(src, dst)


def test_the_op_modules_functions(folder):
    from tensorswap import dnvme

    path, data = random_file(folder, "f", 8192)
    buf = torch.empty(8192, dtype=torch.uint8)
    assert dnvme.aio_read(buf, path, 1024, 2, False, False, True) == 0
    assert as_bytes(buf) == data
    out = os.path.join(folder, "out")
    assert dnvme.aio_write(buf, out, 1024, 2, True, True, False) == 0
    assert open(out, "rb").read() == data
    dest = torch.zeros(8, 4).t()
    assert dnvme.deepspeed_memcpy(dest, torch.ones(4, 8)) == 0
    assert float(dest.sum()) == 32
