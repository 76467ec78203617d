#!/usr/bin/env python3
"""PyTorch baseline for `tensorswap bench --backend cuda --only device`:
pinned host <-> GPU copies with `non_blocking=True`, timed with CUDA events.

Prints one JSON object per direction, in the shape tensorswap's --json uses:
{"op": "upload"|"download", "backend": "torch", "bytes": N, "seconds": median, "gbps": ..., "reps": R}
"""
import argparse
import json
import statistics

import torch


def timed(copy, reps):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(reps):
        start.record()
        copy()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bytes", type=int, default=256 << 20)
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    n = args.bytes
    host = torch.empty(n, dtype=torch.uint8).pin_memory()
    host.fill_(7)
    dev = torch.empty(n, dtype=torch.uint8, device="cuda")
    # Warm-up (context, allocator, first-touch of the pinned pages).
    dev.copy_(host, non_blocking=True)
    host.copy_(dev, non_blocking=True)
    torch.cuda.synchronize()
    ops = {
        "upload": lambda: dev.copy_(host, non_blocking=True),
        "download": lambda: host.copy_(dev, non_blocking=True),
    }
    for op, copy in ops.items():
        seconds = timed(copy, args.reps)
        print(json.dumps({"op": op, "backend": "torch", "bytes": n, "seconds": seconds,
                          "gbps": n / seconds / 1e9, "reps": args.reps}))


if __name__ == "__main__":
    main()
