"""Run by ``tensorswap_deepspeed.pth`` at interpreter start-up when
``TENSORSWAP_DEEPSPEED=1``: installs the DeepSpeed switch."""

from tensorswap.deepspeed import install

install()
