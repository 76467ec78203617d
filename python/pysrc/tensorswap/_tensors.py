"""The torch operations the native module needs, done through torch's
Python API so that the package never links libtorch."""

import ctypes

import torch


def locked_tensor(block, num_elem, dtype):
    """A 1-D tensor of `num_elem` elements of `dtype` over a LockedBlock's
    memory; the tensor holds the block (and so its memory) alive."""
    raw = (ctypes.c_char * block.nbytes).from_address(block.address)
    raw._tensorswap_block = block
    if num_elem == 0:
        # torch.frombuffer refuses a count of 0: an empty view at the block.
        return torch.frombuffer(raw, dtype=torch.uint8)[:0].view(dtype)
    return torch.frombuffer(raw, dtype=dtype, count=num_elem)


def bounce_view(tensor, block):
    """A CPU tensor over `block` with `tensor`'s dtype and shape: where a
    tensor that cannot take I/O in place is copied to or from."""
    return locked_tensor(block, tensor.numel(), tensor.dtype).view(tensor.shape)
