"""DeepSpeed's ``async_io`` op module (what ``AsyncIOBuilder().load()``
returns) on tensorswap's engine: ``aio_handle``, and the module-level
``aio_read``, ``aio_write`` and ``deepspeed_memcpy`` that DeepSpeed's
``ds_aio_basic`` benchmark calls."""

from tensorswap._native import aio_handle

__all__ = ["aio_handle", "aio_read", "aio_write", "deepspeed_memcpy"]


def aio_read(buffer, filename, block_size, queue_depth, single_submit, overlap_events, validate):
    """Reads the whole of `buffer` from `filename` with a handle of these
    settings; 0, or -1 (with a warning) when refused."""
    handle = aio_handle(block_size, queue_depth, single_submit, overlap_events, 1)
    return handle.read(buffer, filename, validate)


def aio_write(buffer, filename, block_size, queue_depth, single_submit, overlap_events, validate):
    """Writes the whole of `buffer` to `filename` (never truncating) with a
    handle of these settings; 0, or -1 (with a warning) when refused."""
    handle = aio_handle(block_size, queue_depth, single_submit, overlap_events, 1)
    return handle.write(buffer, filename, validate)


def deepspeed_memcpy(dest, src):
    """Copies `src` into `dest`; 0. (DeepSpeed's copies into a contiguous
    copy of a non-contiguous `dest`, which the caller never sees; this
    copies into `dest` itself.)"""
    dest.copy_(src)
    return 0
