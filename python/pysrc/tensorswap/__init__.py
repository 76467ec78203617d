"""tensorswap: tensors moved between GPU memory, pinned host memory and
NVMe files.

This package gives Python users tensorswap's I/O engine behind DeepSpeed's
DeepNVMe API: :class:`aio_handle` (and the `pin_memory` op's
:class:`pin_handle`) take the same calls and return the same values as
DeepSpeed 0.19.8's, without its aborts and silent losses.
:func:`tensorswap.deepspeed.install` (or ``TENSORSWAP_DEEPSPEED=1`` in the
environment) makes DeepSpeed itself use them.

Tensors are handled through their Python methods only: the package never
links libtorch, and imports torch only when a tensor is made.
"""

from tensorswap._native import LockedBlock, __version__, aio_handle, pin_handle

__all__ = ["aio_handle", "pin_handle", "LockedBlock", "__version__"]
