#!/usr/bin/env bash
# Runs fio (io_uring, O_DIRECT) and `tensorswap bench` side by side on the same
# folder with the same size, block size and queue depth, alternating
# (fio, ours, fio, ours, ...) so that both see the same disk weather, and
# prints the median ratio ours/fio for write and read.
#
# Each run of either tool starts from a fresh, preallocated file, writes it
# once and then reads it back, so both see the same file state.
#
#   scripts/fio-side-by-side.sh [--folder DIR] [--size 1G] [--bs 1M] [--qd 8]
#                               [--io-size SIZE] [--pairs 3] [--engine uring]
#                               [--dry-run]
#
# --dry-run prints the two commands of a pair and exits (no build, no fio).
# The binary is taken from $CARGO_TARGET_DIR (default: target/ of the repo).
#
# Without --io-size, tensorswap submits one request of --size split into
# --bs pieces (fio: one job streaming --bs blocks at --qd). With --io-size,
# tensorswap submits size/io-size separate requests, each with its own
# ticket, kept --qd in flight; fio runs at --bs equal to --io-size.
# FIO_EXTRA adds fio options, e.g. FIO_EXTRA=--fixedbufs to give fio registered
# buffers as our engine has (fio's default is unregistered).
# Needs fio (apt-get install fio) and python3.
set -euo pipefail

folder=${TMPDIR:-/tmp}; size=1G; bs=1M; qd=8; io_size=; pairs=3; engine=uring; dry_run=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --folder) folder=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --bs) bs=$2; shift 2 ;;
    --qd) qd=$2; shift 2 ;;
    --io-size) io_size=$2; shift 2 ;;
    --pairs) pairs=$2; shift 2 ;;
    --engine) engine=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
ours_bin="${CARGO_TARGET_DIR:-$root/target}/release/tensorswap"
fio_bs=${io_size:-$bs}
ours_args=(bench --only files --json --folder "$folder" --size "$size" --block-size "$bs"
           --queue-depth "$qd" --engine "$engine" --loops 1)
[[ -n $io_size ]] && ours_args+=(--io-size "$io_size")
if ((dry_run)); then
  echo "ours: $ours_bin ${ours_args[*]}"
  echo "fio: fio --name=side --ioengine=io_uring --direct=1 --bs=$fio_bs --iodepth=$qd --size=$size --numjobs=1 ${FIO_EXTRA:-}"
  exit 0
fi
command -v fio >/dev/null || { echo "fio is not installed (apt-get install -y fio)" >&2; exit 1; }
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
[[ -x $ours_bin ]] || { echo "built, but $ours_bin is missing" >&2; exit 1; }
work=$(mktemp -d "$folder/fio-side-by-side.XXXXXX")
trap 'rm -rf "$work"' EXIT

fio_gbps() { # -> "write_GBps read_GBps" (10^9 bytes/s) on a fresh file
  rm -f "$work/fio.dat"
  for op in write read; do
    fio --name=side --filename="$work/fio.dat" --ioengine=io_uring --direct=1 \
        --rw="$op" --bs="$fio_bs" --iodepth="$qd" --size="$size" --numjobs=1 \
        --output-format=json ${FIO_EXTRA:-} 2>/dev/null |
      python3 -c "import json,sys; j=json.load(sys.stdin)['jobs'][0]; print(j['$op']['bw_bytes']/1e9)"
  done | paste -sd' '
}
ours_gbps() { # -> "write_GBps read_GBps" (10^9 bytes/s) on a fresh file
  "$ours_bin" "${ours_args[@]}" |
    python3 -c "
import json, sys
rows = {r['op']: r['gbps'] for r in map(json.loads, filter(str.strip, sys.stdin))}
print(rows['write'], rows['read'])"
}

echo "folder $folder, size $size, fio bs $fio_bs, qd $qd ${FIO_EXTRA:-}, ours: block $bs${io_size:+, io-size $io_size}, engine $engine"
printf '%5s %6s %10s %10s %7s\n' pair op "fio GB/s" "ours GB/s" ratio
results=()
for ((p = 1; p <= pairs; p++)); do
  read -r fw fr < <(fio_gbps)
  read -r ow or < <(ours_gbps)
  for op in write read; do
    if [[ $op == write ]]; then f=$fw o=$ow; else f=$fr o=$or; fi
    r=$(python3 -c "print($o/$f)")
    printf '%5d %6s %10.2f %10.2f %6.2fx\n' "$p" "$op" "$f" "$o" "$r"
    results+=("$op $r")
  done
done
printf '%s\n' "${results[@]}" | python3 -c '
import sys, statistics
ratios = {}
for line in sys.stdin:
    op, r = line.split(); ratios.setdefault(op, []).append(float(r))
for op in ("write", "read"):
    print(f"median ours/fio {op}: {statistics.median(ratios[op]):.2f}x over {len(ratios[op])} pairs")
'
