"""DeepSpeed's own swappers (AsyncPartitionedParameterSwapper,
PartitionedOptimizerSwapper, PipelinedOptimizerSwapper) driven standalone on
the CPU (a one-process gloo group), on tensorswap's engine and on
DeepSpeed's native op, every byte checked against an in-memory reference;
then the time of a swapped optimizer step on each, alternating in one run.

    python python/bench/deepspeed_swappers.py [--groups 4] [--numel 1048576] [--steps 9] [--folder DIR]

Needs torch, DeepSpeed 0.19.8 and this package; the native op is built by
DeepSpeed's JIT loader (libaio-dev). scripts/deepspeed-suite.sh runs it.
"""

import argparse
import contextlib
import os
import socket
import statistics
import sys
import tempfile
import time
import types

import torch


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_dist():
    os.environ.update(
        RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", LOCAL_SIZE="1",
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()),
    )
    import deepspeed.comm as dist

    dist.init_distributed(dist_backend="gloo", auto_mpi_discovery=False, verbose=False)


def engines():
    """The two op modules: DeepSpeed's native one (JIT-built) and ours."""
    from deepspeed.ops.op_builder import AsyncIOBuilder
    from deepspeed.ops.op_builder.builder import OpBuilder

    native = AsyncIOBuilder().load(verbose=False)
    import tensorswap.deepspeed as switch

    ours = switch._op_modules()["async_io"]
    assert native is not ours, "DeepSpeed loaded tensorswap's op: unset TENSORSWAP_DEEPSPEED"
    return {"native": native, "tensorswap": ours}, OpBuilder


@contextlib.contextmanager
def using(op_builder, module):
    """DeepSpeed's builders load `module` inside the block."""
    cache = op_builder._loaded_ops
    before = cache.get("async_io")
    cache["async_io"] = module
    try:
        yield
    finally:
        cache["async_io"] = before


def aio_config():
    from deepspeed.runtime.swap_tensor.aio_config import AIO_DEFAULT_DICT

    config = dict(AIO_DEFAULT_DICT)
    config.update(block_size=1 << 20, queue_depth=8, intra_op_parallelism=1)
    return config


class Check(Exception):
    pass


def expect_equal(what, got, want):
    if not torch.equal(got, want):
        diff = (got != want).nonzero()
        raise Check(f"{what}: {diff.numel()} elements differ, first at {diff[0].tolist() if diff.numel() else '?'}")


# --- optimizer swappers -------------------------------------------------------


class OptimizerRig:
    """One optimizer swapper over `groups` fp32 sub-groups of `numel`, with
    torch's Adam; `reference` is the same optimizer on in-memory copies."""

    def __init__(self, kind, folder, groups, numel, seed):
        from deepspeed.runtime.swap_tensor.partitioned_optimizer_swapper import PartitionedOptimizerSwapper
        from deepspeed.runtime.swap_tensor.pipelined_optimizer_swapper import PipelinedOptimizerSwapper
        from deepspeed.runtime.zero.offload_config import DeepSpeedZeroOffloadOptimizerConfig

        gen = torch.Generator().manual_seed(seed)
        start = [torch.randn(numel, generator=gen) for _ in range(groups)]
        self.params = [torch.nn.Parameter(t.clone()) for t in start]
        for i, p in enumerate(self.params):
            p.ds_id = str(i)
        self.ref = [torch.nn.Parameter(t.clone()) for t in start]
        self.opt = torch.optim.Adam(self.params, lr=1e-3)
        self.ref_opt = torch.optim.Adam(self.ref, lr=1e-3)
        pipelined = kind == "pipelined"
        config = DeepSpeedZeroOffloadOptimizerConfig(
            device="nvme", nvme_path=folder, buffer_count=16 if pipelined else 8, pin_memory=True,
            pipeline_read=pipelined, pipeline_write=pipelined,
        )
        cls = PipelinedOptimizerSwapper if pipelined else PartitionedOptimizerSwapper
        self.pipelined = pipelined
        self.swapper = cls(config, aio_config(), folder, self.opt, numel, "cpu", torch.float32, None)
        self.swapper.initialize_parameters(parameters=self.params, src_tensors=[t.clone() for t in start])
        for p in self.params:
            p.data = torch.empty(0)
        self.gen = torch.Generator().manual_seed(seed + 1)

    def _step_group(self, opt, param):
        group = opt.param_groups[0]
        group["params"] = [param]
        opt.step()

    def step(self):
        """One swapped optimizer step over every sub-group (and the same
        step on the reference)."""
        grads = [torch.randn(p.ds_tensor_numel if hasattr(p, "ds_tensor_numel") else r.numel(), generator=self.gen)
                 for p, r in zip(self.params, self.ref)]
        for p, g in zip(self.params, grads):
            self.swapper.swap_out_gradients(parameter=p, gradient_offsets=[0], gradient_tensors=[g.clone()])
        self.swapper.flush_gradients()
        n = len(self.params)
        for i, p in enumerate(self.params):
            nxt = self.params[i + 1] if self.pipelined and i + 1 < n else None
            if self.pipelined:
                self.swapper.swap_in_optimizer_state(parameter=p, async_parameter=nxt)
            else:
                self.swapper.swap_in_optimizer_state(parameter=p)
            self._step_group(self.opt, p)
            if self.pipelined:
                self.swapper.swap_out_optimizer_state(parameter=p, async_swap=nxt is not None)
            else:
                self.swapper.swap_out_optimizer_state(parameter=p)
        for r, g in zip(self.ref, grads):
            r.grad = g
            self._step_group(self.ref_opt, r)
            r.grad = None

    def check(self):
        """Every sub-group's parameter and Adam state, swapped in, equals the
        reference's, bit for bit."""
        for i, (p, r) in enumerate(zip(self.params, self.ref)):
            if self.pipelined:
                self.swapper.swap_in_optimizer_state(parameter=p, async_parameter=None)
            else:
                self.swapper.swap_in_optimizer_state(parameter=p)
            expect_equal(f"sub-group {i} parameter", p.data, r.data)
            for key in ("exp_avg", "exp_avg_sq"):
                expect_equal(f"sub-group {i} {key}", self.opt.state[p][key], self.ref_opt.state[r][key])
            self.swapper.swap_out_optimizer_state(parameter=p, async_swap=False) if self.pipelined else \
                self.swapper.swap_out_optimizer_state(parameter=p)


# --- parameter swapper --------------------------------------------------------


def param_swapper_round_trip(folder, count, numel, seed):
    """fp16 partitions swapped out and back in through
    AsyncPartitionedParameterSwapper's buffers, checked byte for byte."""
    from deepspeed.runtime.swap_tensor.partitioned_param_swapper import (
        AsyncPartitionedParameterSwapper, PartitionedParamStatus)
    from deepspeed.runtime.zero.offload_config import DeepSpeedZeroOffloadParamConfig

    ds_config = types.SimpleNamespace(
        zero_config=types.SimpleNamespace(offload_param=DeepSpeedZeroOffloadParamConfig(
            device="nvme", nvme_path=folder, buffer_count=count, buffer_size=numel)),
        aio_config=aio_config(),
    )
    swapper = AsyncPartitionedParameterSwapper(ds_config, torch.float16)
    gen = torch.Generator().manual_seed(seed)
    want = [torch.randn(numel - 17 * i, generator=gen).half() for i in range(count)]
    params = []
    for i, w in enumerate(want):
        p = types.SimpleNamespace(ds_id=i, ds_tensor=torch.empty(0, dtype=torch.float16))
        p.ds_tensor.ds_numel = w.numel()
        p.ds_tensor.status = PartitionedParamStatus.AVAILABLE
        buf = swapper.get_buffer(p, w.numel())
        buf.copy_(w)
        p.ds_tensor.data = buf
        params.append(p)
    swapper.swap_out_and_release(params)
    for p in params:
        assert p.ds_tensor.status == PartitionedParamStatus.NOT_AVAILABLE
    swapper.swap_in(params, async_op=True)
    swapper.synchronize_reads()
    for p, w in zip(params, want):
        expect_equal(f"fp16 partition {p.ds_id}", p.ds_tensor.data, w)
    swapper.remove_partition_and_release_buffers(params)


# --- the run ------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=4, help="optimizer sub-groups")
    parser.add_argument("--numel", type=int, default=1 << 20, help="fp32 elements per sub-group")
    parser.add_argument("--steps", type=int, default=9, help="timed steps per engine (after one warm-up)")
    parser.add_argument("--folder", default=None, help="swap folder (default: a temporary one)")
    args = parser.parse_args()

    init_dist()
    modules, op_builder = engines()
    base = args.folder or tempfile.mkdtemp(prefix="tensorswap-ds-swappers-")
    print(f"deepspeed swappers: {args.groups} sub-groups of {args.numel} fp32 elements, in {base}")

    for label, module in modules.items():
        with using(op_builder, module):
            folder = os.path.join(base, label, "param")
            param_swapper_round_trip(folder, 4, args.numel, seed=7)
            print(f"  {label:10} AsyncPartitionedParameterSwapper: 4 fp16 partitions out and back, every byte checked")

    rigs = {}
    for kind in ("partitioned", "pipelined"):
        for label, module in modules.items():
            with using(op_builder, module):
                rigs[(kind, label)] = OptimizerRig(kind, os.path.join(base, label, kind), args.groups, args.numel, seed=11)

    times = {key: [] for key in rigs}
    order = list(rigs)
    for step in range(args.steps + 1):
        # Alternate which engine goes first.
        for key in (order if step % 2 == 0 else order[::-1]):
            start = time.perf_counter()
            rigs[key].step()
            took = time.perf_counter() - start
            if step > 0:
                times[key].append(took)
    for key, rig in rigs.items():
        rig.check()
    for kind in ("partitioned", "pipelined"):
        name = "PartitionedOptimizerSwapper" if kind == "partitioned" else "PipelinedOptimizerSwapper"
        medians = {label: statistics.median(times[(kind, label)]) for label in modules}
        for label in modules:
            print(f"  {label:10} {name}: {args.steps + 1} steps, parameters and Adam state equal to the in-memory reference; "
                  f"median step {medians[label] * 1e3:.1f} ms")
        print(f"  {name}: swapped step tensorswap / native = {medians['tensorswap'] / medians['native']:.2f} "
              f"(median of {args.steps} steps each, alternating)")


if __name__ == "__main__":
    try:
        main()
    except Check as e:
        print(f"deepspeed swappers: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
