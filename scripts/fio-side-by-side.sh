#!/usr/bin/env bash
# Runs fio (io_uring and libaio, O_DIRECT) and `tensorswap bench` side by
# side on the same folder with the same size, block size and queue depth,
# alternating (fio io_uring, fio libaio, ours, ...) so that all see the same
# disk weather; prints each pair's rates, the median ratio ours / best of fio
# for write and read (and ours / each fio engine: where runs vary more than
# the engines differ, the best of two runs beats any one run, so the faster
# engine by median rate is named too), and the CPU seconds each spends per
# GB moved.
#
# With --verify fio writes a CRC32C into every block and checks it on the
# read (--verify=crc32c), as our files do per 4 KiB: like with like. Without
# it fio checks nothing; OURS_EXTRA=--no-checksums then makes ours check
# nothing too.
#
# Each run of either tool starts from a fresh, preallocated file, writes it
# once and then reads it back, so both see the same file state.
#
#   scripts/fio-side-by-side.sh [--folder DIR] [--size 1G] [--bs 1M] [--qd 8]
#                               [--io-size SIZE] [--pairs 3] [--engine uring]
#                               [--verify] [--dry-run]
#
# --dry-run prints the two commands of a pair and exits (no build, no fio).
# The binary is taken from $CARGO_TARGET_DIR (default: target/ of the repo).
#
# Without --io-size, tensorswap submits one request of --size split into
# --bs pieces (fio: one job streaming --bs blocks at --qd). With --io-size,
# tensorswap submits size/io-size separate requests, each with its own
# ticket, kept --qd in flight; fio runs at --bs equal to --io-size.
# FIO_EXTRA adds fio options, e.g. FIO_EXTRA=--fixedbufs to give fio registered
# buffers as our engine has (fio's default is unregistered), or huge-page
# buffers as ours have (fio's default is malloc, 4 KiB pages), as root:
#   echo 64 > /proc/sys/vm/nr_hugepages; mkdir -p /mnt/huge
#   mount -t hugetlbfs none /mnt/huge
#   FIO_EXTRA=--mem=mmaphuge:/mnt/huge/fio-buf scripts/fio-side-by-side.sh ...
# Needs fio (apt-get install fio) and python3.
set -euo pipefail

folder=${TMPDIR:-/tmp}; size=1G; bs=1M; qd=8; io_size=; pairs=3; engine=uring; verify=0; dry_run=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --folder) folder=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --bs) bs=$2; shift 2 ;;
    --qd) qd=$2; shift 2 ;;
    --io-size) io_size=$2; shift 2 ;;
    --pairs) pairs=$2; shift 2 ;;
    --engine) engine=$2; shift 2 ;;
    --verify) verify=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
ours_bin="${CARGO_TARGET_DIR:-$root/target}/release/tensorswap"
fio_bs=${io_size:-$bs}
# fio's checksums: written with each block (no read-back pass), checked on read.
fio_verify=(); ((verify)) && fio_verify=(--verify=crc32c --verify_state_save=0)
fio_verify_write=(); ((verify)) && fio_verify_write=(--verify=crc32c --do_verify=0 --verify_state_save=0)
ours_args=(bench --only files --json --folder "$folder" --size "$size" --block-size "$bs"
           --queue-depth "$qd" --engine "$engine" --loops 1)
[[ -n $io_size ]] && ours_args+=(--io-size "$io_size")
# OURS_EXTRA adds bench options, e.g. OURS_EXTRA=--no-checksums (fio
# checksums nothing; our files record and check a CRC32C per 4 KiB).
read -r -a ours_extra <<<"${OURS_EXTRA:-}"
ours_args+=("${ours_extra[@]}")
if ((dry_run)); then
  echo "ours: $ours_bin ${ours_args[*]}"
  for e in io_uring libaio; do
    echo "fio: fio --name=side --ioengine=$e --direct=1 --bs=$fio_bs --iodepth=$qd --size=$size --numjobs=1 ${FIO_EXTRA:-} (write: ${fio_verify_write[*]:-} read: ${fio_verify[*]:-})"
  done
  exit 0
fi
command -v fio >/dev/null || { echo "fio is not installed (apt-get install -y fio)" >&2; exit 1; }
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
[[ -x $ours_bin ]] || { echo "built, but $ours_bin is missing" >&2; exit 1; }
work=$(mktemp -d "$folder/fio-side-by-side.XXXXXX")
trap 'rm -rf "$work"' EXIT

fio_run() { # $1 = io engine -> "write_GBps read_GBps cpu_seconds" on a fresh file
  rm -f "$work/fio.dat"
  for op in write read; do
    if [[ $op == write ]]; then checks=("${fio_verify_write[@]}"); else checks=("${fio_verify[@]}"); fi
    fio --name=side --filename="$work/fio.dat" --ioengine="$1" --direct=1 \
        --rw="$op" --bs="$fio_bs" --iodepth="$qd" --size="$size" --numjobs=1 \
        --output-format=json "${checks[@]}" ${FIO_EXTRA:-} 2>/dev/null |
      python3 -c "
import json, sys
j = json.load(sys.stdin)['jobs'][0]
print(j['$op']['bw_bytes'] / 1e9, (j['usr_cpu'] + j['sys_cpu']) / 100 * j['job_runtime'] / 1e3)"
  done | paste -sd' ' | awk '{ print $1, $3, $2 + $4 }'
}
ours_run() { # -> "write_GBps read_GBps cpu_seconds" on a fresh file
  # CPU seconds: the bench's own figure for its timed passes (cpu_pct of
  # this process, all threads), not the set-up and verification around them.
  "$ours_bin" "${ours_args[@]}" |
    python3 -c "
import json, sys
rows = {r['op']: r for r in map(json.loads, filter(str.strip, sys.stdin))}
cpu = sum(r['cpu_pct'] / 100 * r['seconds'] for r in rows.values())
print(rows['write']['gbps'], rows['read']['gbps'], cpu)"
}

echo "folder $folder, size $size, fio bs $fio_bs, qd $qd ${fio_verify[*]:-} ${FIO_EXTRA:-}, ours: block $bs${io_size:+, io-size $io_size}, engine $engine ${OURS_EXTRA:-}"
printf '%5s %6s %12s %12s %10s %7s\n' pair op "uring GB/s" "libaio GB/s" "ours GB/s" "ours/best"
results=()
for ((p = 1; p <= pairs; p++)); do
  # Who goes first alternates, so that no tool always meets a warm disk.
  if ((p % 2)); then
    read -r uw ur uc < <(fio_run io_uring); read -r lw lr lc < <(fio_run libaio); read -r ow or oc < <(ours_run)
  else
    read -r ow or oc < <(ours_run); read -r lw lr lc < <(fio_run libaio); read -r uw ur uc < <(fio_run io_uring)
  fi
  for op in write read; do
    if [[ $op == write ]]; then u=$uw l=$lw o=$ow; else u=$ur l=$lr o=$or; fi
    r=$(python3 -c "print($o / max($u, $l))")
    printf '%5d %6s %12.2f %12.2f %10.2f %6.2fx\n' "$p" "$op" "$u" "$l" "$o" "$r"
    results+=("$op $r $(python3 -c "print($o / $u, $o / $l)") $u $l")
  done
  results+=("cpu $uc $lc $oc")
done
printf '%s\n' "${results[@]}" | python3 -c "
import statistics, sys
ratios, cpu = {}, []
for line in sys.stdin:
    op, *v = line.split()
    if op == 'cpu':
        cpu.append([float(x) for x in v])
    else:
        ratios.setdefault(op, []).append([float(x) for x in v])
for op in ('write', 'read'):
    best, uring, libaio = (statistics.median(r[i] for r in ratios[op]) for i in range(3))
    # The faster engine by median rate: the per-pair best of two noisy runs
    # is biased upwards, against any one engine, even an equal one.
    uring_first = statistics.median(r[3] for r in ratios[op]) >= statistics.median(r[4] for r in ratios[op])
    faster, vs_faster = ('io_uring', uring) if uring_first else ('libaio', libaio)
    print(f'median ours / best of fio {op}: {best:.2f}x over {len(ratios[op])} pairs '
          f'(ours / fio io_uring {uring:.2f}x, ours / fio libaio {libaio:.2f}x; '
          f'ours / the faster fio engine, {faster}: {vs_faster:.2f}x)')
gb = 2 * $(python3 -c "
import re
s = '$size'.upper().rstrip('B')
m = re.fullmatch(r'([0-9.]+)([KMGT]?)I?', s)
print(float(m[1]) * 1024 ** ' KMGT'.index(m[2] or ' ') / 1e9)")
for i, tool in enumerate(('fio io_uring', 'fio libaio', 'ours')):
    print(f'CPU seconds per GB moved, {tool}: {statistics.median(c[i] for c in cpu) / gb:.3f} (median over pairs; user + system)')
"
