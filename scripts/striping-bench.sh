#!/usr/bin/env bash
# Shows how a store striped over N folders scales when each folder is a
# drive of a set speed: `tensorswap bench --throttle CAP` caps every
# folder's engine at CAP bytes per second (ThrottledEngine), and the swap
# workload runs over N = 1, 2 and 4 folders, the three interleaved in each
# round (the order rotates) so they all see the same machine weather.
# Prints, per N and op, the median over rounds of the aggregate rate (the
# bytes all folders moved over the op's time) divided by N x CAP.
#
#   scripts/striping-bench.sh [--root DIR] [--cap 200M] [--size 256M]
#                             [--rounds 5] [--counts "1 2 4"] [--dry-run]
#
# The folders are made under --root (default /dev/shm where it exists, so
# that the one disk of a small machine is not what sets the pace; else the
# temporary folder). --dry-run prints each N's command and exits.
# The binary is taken from $CARGO_TARGET_DIR (default: target/ of the repo).
# Needs python3.
set -euo pipefail

root_dir=/dev/shm; [[ -d $root_dir ]] || root_dir=${TMPDIR:-/tmp}
cap=200M; size=256M; rounds=5; counts="1 2 4"; dry_run=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --root) root_dir=$2; shift 2 ;;
    --cap) cap=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --counts) counts=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
repo=$(cd "$(dirname "$0")/.." && pwd)
bin="${CARGO_TARGET_DIR:-$repo/target}/release/tensorswap"
read -r -a ns <<<"$counts"

work=$(mktemp -d "$root_dir/striping-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
command_for() { # N -> the bench command line
  local args=(bench --json --backend cpu --size "$size" --throttle "$cap" --loops 1)
  for ((i = 0; i < $1; i++)); do
    mkdir -p "$work/drive$i"
    args+=(--folder "$work/drive$i")
  done
  echo "$bin ${args[*]}"
}
if ((dry_run)); then
  for n in "${ns[@]}"; do echo "N=$n: $(command_for "$n")"; done
  exit 0
fi
cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
[[ -x $bin ]] || { echo "built, but $bin is missing" >&2; exit 1; }

results=$work/results.jsonl
for ((r = 0; r < rounds; r++)); do
  for ((k = 0; k < ${#ns[@]}; k++)); do
    n=${ns[$(((k + r) % ${#ns[@]}))]}
    # shellcheck disable=SC2046 # the command line is split on purpose
    $(command_for "$n") | sed "s/^{/{\"round\":$r,\"n\":$n,/" >>"$results"
    echo "round $((r + 1))/$rounds: N=$n done" >&2
  done
done

python3 - "$results" <<'EOF'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
cap = rows[0]["cap_per_folder"]
print(f"each folder capped at {cap / 1e6:.0f} MB/s; aggregate / (N x cap), "
      f"median of {len({r['round'] for r in rows})} rounds (min..max)")
ops = ["swap_out", "swap_in", "engine_write", "engine_read"]
print(f"{'N':>3} " + " ".join(f"{op:>22}" for op in ops))
for n in sorted({r["n"] for r in rows}):
    cells = []
    for op in ops:
        ratios = [sum(f["bytes"] for f in r["folders"]) / r["seconds"] / (n * cap)
                  for r in rows if r["n"] == n and r["op"] == op]
        cells.append(f"{statistics.median(ratios):.3f} ({min(ratios):.2f}..{max(ratios):.2f})")
    print(f"{n:>3} " + " ".join(f"{c:>22}" for c in cells))
EOF
