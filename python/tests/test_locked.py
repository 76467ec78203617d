"""Locked tensors: managed process-wide, views count, shared with
pin_handle; a freed tensor stays usable (no use-after-free)."""

import torch

from tensorswap import aio_handle, pin_handle


def test_locked_tensors_are_zeroed_typed_and_pinned_with_their_views():
    h = aio_handle(1024, 2, False, False, 1)
    t = h.new_cpu_locked_tensor(4096, torch.empty(0, dtype=torch.float16))
    assert t.dtype == torch.float16 and t.shape == (4096,)
    assert t.data_ptr() % 4096 == 0
    assert int(t.count_nonzero()) == 0
    assert h.is_pinned(t)
    assert h.is_pinned(t.narrow(0, 1024, 1024))
    assert not h.is_pinned(torch.empty(4096, dtype=torch.float16))
    assert h.free_cpu_locked_tensor(t)
    assert not h.free_cpu_locked_tensor(t)
    assert not h.is_pinned(t)
    t.fill_(1.0)  # still valid memory: it lives as long as the tensor
    assert float(t.sum()) == 4096


def test_the_manager_is_shared_by_handles_and_pin_handle():
    a, b, pin = aio_handle(), aio_handle(), pin_handle()
    t = a.new_cpu_locked_tensor(100, torch.empty(0))
    u = pin.new_cpu_locked_tensor(100, torch.empty(0))
    assert b.is_pinned(t) and pin.is_pinned(t)
    assert a.is_pinned(u) and b.is_pinned(u.narrow(0, 10, 10))
    assert pin.free_cpu_locked_tensor(t) and a.free_cpu_locked_tensor(u)
    assert not b.is_pinned(t)


def test_an_empty_locked_tensor():
    h = aio_handle()
    t = h.new_cpu_locked_tensor(0, torch.empty(0))
    assert t.numel() == 0 and t.dtype == torch.float32
    # No memory, nothing managed: there is nothing to free.
    assert not h.free_cpu_locked_tensor(t)
