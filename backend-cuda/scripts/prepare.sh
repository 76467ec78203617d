#!/usr/bin/env bash
# Builds what the GPU machine runs (it has no Rust toolchain) into
# gpu-bin/, a folder to name in the device tool's `carry`:
#   echo gpu-bin >> .git/info/exclude   # once
#   backend-cuda/scripts/prepare.sh
# then, on the GPU machine: backend-cuda/scripts/run-on-gpu.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf gpu-bin && mkdir gpu-bin
cargo build --release --features gds
cp target/release/tensorswap gpu-bin/
for test in conformance; do
    bin=$(cargo test --release -p tensorswap-cuda --features gds --test "$test" --no-run --message-format=json 2>/dev/null \
        | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
    cp "$bin" "gpu-bin/cuda-$test"
done
unit=$(cargo test --release -p tensorswap-cuda --features gds --lib --no-run --message-format=json 2>/dev/null \
    | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
cp "$unit" gpu-bin/cuda-unit
# The device tool carries at most 64 MiB: drop the debug info.
strip --strip-debug gpu-bin/*
ls -la gpu-bin
