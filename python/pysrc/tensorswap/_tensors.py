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


def as_tensor(buffer, for_read):
    """A tensor over the memory of a NumPy array or another object with the
    buffer protocol (shared, not copied); a read needs a writable one."""
    try:
        view = memoryview(buffer)
    except TypeError:
        raise TypeError(
            "tensorswap: a buffer must be a torch.Tensor, a NumPy array or an "
            f"object with the buffer protocol; {type(buffer).__name__} has "
            "neither data_ptr() nor the buffer protocol"
        ) from None
    if for_read and view.readonly:
        raise TypeError(
            f"tensorswap: {type(buffer).__name__} is read-only; a read needs a "
            "writable buffer"
        )
    if type(buffer).__module__ == "numpy" and hasattr(buffer, "__array_interface__"):
        # Keeps the dtype and the strides (a strided array is bounced).
        import warnings

        with warnings.catch_warnings():
            # A read-only array is fine to write from.
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(buffer)
    if not view.c_contiguous:
        raise ValueError(
            f"tensorswap: the {type(buffer).__name__} buffer is not contiguous"
        )
    if view.nbytes == 0:
        return torch.empty(0, dtype=torch.uint8)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.frombuffer(view.cast("B"), dtype=torch.uint8)
