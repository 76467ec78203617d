#!/usr/bin/env bash
# Everything the CUDA backend must show on a GPU, in one go (device time is
# short): conformance (required, not skippable), unit tests, `info`, upload
# and download at 256 MiB alternating with PyTorch's pinned non_blocking
# copies, and the end-to-end swap on the pinned and the direct (GDS) path.
# Output goes to $OUT (or ./gpu-out).
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-gpu-out}
mkdir -p "$out"
bin=gpu-bin
scratch=${SCRATCH:-/tmp/tensorswap-gpu}
mkdir -p "$scratch"
log() { echo "== $*" | tee -a "$out/summary.txt"; }

log "machine"
nvidia-smi -L 2>&1 | tee -a "$out/summary.txt"
ls /usr/local/cuda/lib64/libcufile* /usr/lib/x86_64-linux-gnu/libcufile* 2>/dev/null | tee -a "$out/summary.txt"
lsmod 2>/dev/null | grep nvidia_fs | tee -a "$out/summary.txt"

log "info"
"$bin/tensorswap" info 2>&1 | tee "$out/info.txt"

log "conformance (TENSORSWAP_REQUIRE=cuda)"
TENSORSWAP_REQUIRE=cuda TENSORSWAP_TEST_DIR="$scratch" "$bin/cuda-conformance" 2>&1 | tee "$out/conformance.txt" | tail -45
log "unit tests"
"$bin/cuda-unit" 2>&1 | tail -15 | tee "$out/unit.txt"

log "upload/download 256 MiB: tensorswap vs torch, alternating"
for round in 1 2 3; do
    python3 backend-cuda/scripts/torch_copy.py --bytes $((256 << 20)) >> "$out/copies.jsonl" 2>>"$out/torch.err"
    "$bin/tensorswap" bench --backend cuda --only device --min-size 256M --max-size 256M --json >> "$out/copies.jsonl" 2>>"$out/bench.err"
done
python3 - "$out/copies.jsonl" <<'PY' | tee -a "$out/summary.txt"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
for op in ("upload", "download"):
    ours = [r["gbps"] for r in rows if r["op"] == op and r["backend"] == "cuda"]
    torch = [r["gbps"] for r in rows if r["op"] == op and r["backend"] == "torch"]
    if ours and torch:
        a, b = statistics.median(ours), statistics.median(torch)
        print(f"{op:9} tensorswap {a:6.2f} GB/s  torch {b:6.2f} GB/s  ratio {a / b:.3f}  (rounds {len(ours)})")
PY

log "swap, pinned path"
"$bin/tensorswap" bench --backend cuda --size 4G --folder "$scratch" 2>&1 | tee "$out/swap-pinned.txt" | tail -8
log "swap, use_gds"
"$bin/tensorswap" bench --backend cuda --size 4G --folder "$scratch" --gds 2>&1 | tee "$out/swap-gds.txt" | tail -9
