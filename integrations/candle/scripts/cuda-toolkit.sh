#!/usr/bin/env bash
# Prepares what tensorswap-candle's `cuda` feature needs to build on a
# machine with no CUDA toolkit and no GPU (CI), and prints the environment:
#   eval "$(integrations/candle/scripts/cuda-toolkit.sh)"
#   cargo build -p tensorswap-candle --features cuda
#
# candle's CUDA kernels need nvcc, which PyPI ships in NVIDIA's CUDA 13
# wheels (13.4: the newest cudarc 0.19 knows); libcufile comes along for the
# workspace's all-features build (backend-cuda's gds). They are installed once into
# $TENSORSWAP_CACHE (default ~/.cache/tensorswap; ~700 MB download, 1.2 GB
# installed) and reused. candle links the CUDA libraries: the wheels ship
# them under versioned names only, so unversioned links are added, and a
# link-time stub of the driver (libcuda.so: every cu* symbol cudarc declares,
# each returning CUDA_ERROR_STUB_LIBRARY) goes into lib/stubs. The stub is
# never loaded where a real driver is installed (the real libcuda.so.1
# comes first on the loader's path); without one, binaries run with
# LD_LIBRARY_PATH=$TENSORSWAP_CUDA_LIBS and see no GPU. CUDA_COMPUTE_CAP
# (default 90, the H200 we are lent) spares the kernel build nvidia-smi.
set -euo pipefail
_cache=${TENSORSWAP_CACHE:-$HOME/.cache/tensorswap}
_site=$_cache/cuda13
cu=$_site/nvidia/cu13
if [ ! -x "$cu/bin/nvcc" ] || [ ! -e "$cu/lib/libcufile.so.0" ]; then
    python3 -m pip install --quiet --disable-pip-version-check --upgrade --target "$_site" \
        --cache-dir "$_cache/pip" \
        nvidia-cuda-nvcc==13.4.92 nvidia-nvvm==13.4.92 nvidia-cuda-runtime==13.4.92 \
        nvidia-cuda-crt==13.4.92 nvidia-cuda-nvrtc==13.4.92 nvidia-cuda-cccl nvidia-curand nvidia-cublas \
        nvidia-cufile >&2
fi
_lib=$cu/lib
for versioned in "$_lib"/lib*.so.*; do
    plain=${versioned%%.so.*}.so
    [ -e "$plain" ] || ln -s "$(basename "$versioned")" "$plain"
done
stubs=$_lib/stubs
if [ ! -e "$stubs/libcuda.so" ]; then
    mkdir -p "$stubs"
    # The driver's symbols come from cudarc's source, which a fresh machine
    # has only once cargo has fetched the workspace's dependencies.
    _find() { ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.*/src/driver/sys/mod.rs 2>/dev/null | tail -1; }
    _sys=$(_find || true)
    if [ -z "$_sys" ]; then
        cargo fetch --quiet --manifest-path "$(dirname "$0")/../../../Cargo.toml" >&2
        _sys=$(_find || true)
    fi
    [ -n "$_sys" ] || { echo "cuda-toolkit.sh: cudarc 0.19's source is not in cargo's registry" >&2; exit 1; }
    grep -o 'pub unsafe fn cu[A-Za-z0-9_]*' "$_sys" | sed 's/pub unsafe fn //' | sort -u \
        | sed 's/.*/int &(void) { return 34; }/' > "$stubs/libcuda.c"
    cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stubs/libcuda.so" "$stubs/libcuda.c"
    ln -sf libcuda.so "$stubs/libcuda.so.1"
fi
cat <<ENV
export PATH=$cu/bin:\$PATH
export CUDA_ROOT=$cu CUDA_PATH=$cu CUDA_HOME=$cu
export CUDA_COMPUTE_CAP=\${CUDA_COMPUTE_CAP:-90}
export LIBRARY_PATH=$_lib:$stubs\${LIBRARY_PATH:+:\$LIBRARY_PATH}
export TENSORSWAP_CUDA_LIBS=$_lib:$stubs
ENV
