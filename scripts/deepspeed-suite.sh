#!/usr/bin/env bash
# The Python package's own tests, then DeepSpeed's own aio and
# pinned-manager tests (tests/unit/v1/nvme/ of DeepSpeed's tree, unmodified)
# on tensorswap's engine, and on DeepSpeed's native op for comparison: every
# test that passes natively must pass on ours. Prints the counts of both.
#
#   scripts/deepspeed-suite.sh            # both engines
#   scripts/deepspeed-suite.sh ours       # tensorswap's only
#
# Environment:
#   TENSORSWAP_CACHE            where the virtual environment, pip's cache and
#                               the native op's build live (default
#                               ~/.cache/tensorswap); a rerun downloads nothing
#   TENSORSWAP_DEEPSPEED_TESTS  DeepSpeed's tests/ folder (default
#                               ../shared/deepspeed/tests beside the repo,
#                               else /work/shared/deepspeed/tests)
#   TENSORSWAP_REQUIRE          naming `deepspeed`: a missing test tree or a
#                               native op that cannot build is a failure,
#                               not a skip
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
which=${1:-both}
cache=${TENSORSWAP_CACHE:-$HOME/.cache/tensorswap}
venv=$cache/deepspeed-venv
tests=${TENSORSWAP_DEEPSPEED_TESTS:-}
if [ -z "$tests" ]; then
    for candidate in "$repo/../shared/deepspeed/tests" /work/shared/deepspeed/tests; do
        [ -d "$candidate" ] && { tests=$candidate; break; }
    done
fi
required=false
case ",${TENSORSWAP_REQUIRE:-}," in *,deepspeed,*) required=true ;; esac

skip() {
    if $required; then
        echo "deepspeed-suite: FAILED: $1 (TENSORSWAP_REQUIRE names deepspeed)" >&2
        exit 1
    fi
    echo "deepspeed-suite: skipped: $1"
    exit 0
}

[ -n "$tests" ] && [ -d "$tests/unit/v1/nvme" ] ||
    skip "DeepSpeed's test tree is not at ${tests:-../shared/deepspeed/tests} (set TENSORSWAP_DEEPSPEED_TESTS)"

# torch 2.15.0 from PyPI (its CUDA libraries come along, and it runs on the
# CPU), DeepSpeed 0.19.8 with no prebuilt ops, pytest.
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
export PIP_CACHE_DIR=$cache/pip PIP_DISABLE_PIP_VERSION_CHECK=1
if ! "$venv/bin/python" -c 'import torch, deepspeed, pytest; assert torch.__version__.startswith("2.15.0") and deepspeed.__version__ == "0.19.8"' 2>/dev/null; then
    DS_BUILD_OPS=0 "$venv/bin/python" -m pip install -q torch==2.15.0 deepspeed==0.19.8 pytest
fi
"$venv/bin/python" -m pip install -q "$repo/python"
echo "deepspeed-suite: the package's own tests ..."
"$venv/bin/python" -m pytest -p no:cacheprovider -q "$repo/python/tests"

export DS_ACCELERATOR=cpu
# DeepSpeed's JIT builds (its native op, the shm comm op the distributed
# tests use) need the venv's ninja.
export PATH=$venv/bin:$PATH
# The native op's JIT build is kept between runs.
export TORCH_EXTENSIONS_DIR=$cache/torch-extensions
out=$(mktemp -d)
# DeepSpeed's tests leave torch.distributed's shared-memory buffers behind
# in /dev/shm (RAM); the ones this run made go with it.
touch "$out/started"
cleanup() {
    if [[ -d /dev/shm ]]; then
        find /dev/shm -maxdepth 1 -name 'deepspeed_allreduce_buffer_*' -user "$(id -u)" \
            -newer "$out/started" -delete 2>/dev/null || true
    fi
    rm -rf "$out"
}
trap cleanup EXIT

# One engine's run: $1 = label; the rest, the environment that picks it.
run() {
    local label=$1
    shift
    echo "deepspeed-suite: DeepSpeed's nvme tests on $label ..."
    (cd "$tests" && env "$@" "$venv/bin/python" -m pytest -p no:cacheprovider -m "not nightly" -q \
        -o junit_family=xunit1 --junitxml="$out/$label.xml" \
        unit/v1/nvme/test_aio.py unit/v1/nvme/test_pinned_manager.py >"$out/$label.log" 2>&1) || {
        tail -40 "$out/$label.log"
        echo "deepspeed-suite: FAILED on $label (the log's end is above)" >&2
        return 1
    }
}

run tensorswap TENSORSWAP_DEEPSPEED=1
if [ "$which" = both ]; then
    # DeepSpeed's native op needs libaio's headers to build.
    if "$venv/bin/python" -c 'import deepspeed; from deepspeed.ops.op_builder import AsyncIOBuilder; raise SystemExit(not deepspeed.ops.__compatible_ops__[AsyncIOBuilder.NAME])' >/dev/null 2>&1; then
        run native TENSORSWAP_DEEPSPEED=0
    else
        which=ours
        native_missing="DeepSpeed's native async_io op cannot build here (libaio headers missing: apt-get install libaio-dev)"
    fi
fi

"$venv/bin/python" - "$out" "$which" <<'PY'
import sys
import xml.etree.ElementTree as ET

out, which = sys.argv[1], sys.argv[2]

def outcomes(label):
    found = {}
    for case in ET.parse(f"{out}/{label}.xml").iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            found[name] = "failed"
        elif case.find("skipped") is not None:
            found[name] = "skipped"
        else:
            found[name] = "passed"
    return found

def counts(found, file):
    mine = [v for k, v in found.items() if file in k.split("::")[0].split(".")]
    return {s: mine.count(s) for s in ("passed", "skipped", "failed")}

ours = outcomes("tensorswap")
labels = [("tensorswap", ours)]
if which == "both":
    labels.append(("native", outcomes("native")))
for label, found in labels:
    for file in ("test_aio", "test_pinned_manager"):
        c = counts(found, file)
        print(f"deepspeed-suite: {label:10} {file + '.py':24} {c['passed']} passed, {c['skipped']} skipped, {c['failed']} failed")
bad = [k for k, v in ours.items() if v == "failed"]
if which == "both":
    native = dict(labels[1][1])
    bad += [k for k, v in native.items() if v == "passed" and ours.get(k) != "passed"]
if bad:
    print("deepspeed-suite: FAILED: these do not pass on tensorswap:", *sorted(set(bad)), sep="\n  ")
    sys.exit(1)
print("deepspeed-suite: every test that passes" + (" on DeepSpeed's native op" if which == "both" else "") + " passes on tensorswap's engine")
PY
if [ -n "${native_missing:-}" ]; then
    $required && { echo "deepspeed-suite: FAILED: $native_missing" >&2; exit 1; }
    echo "deepspeed-suite: not compared: $native_missing"
fi
if [ "$which" = both ]; then
    # DeepSpeed's own swappers driven standalone on both engines, every
    # byte checked, and the swapped optimizer step timed alternately.
    echo "deepspeed-suite: DeepSpeed's swappers on both engines ..."
    if env -u TENSORSWAP_DEEPSPEED "$venv/bin/python" "$repo/python/bench/deepspeed_swappers.py" \
        --folder "$out/swappers" >"$out/swappers.log" 2>&1; then
        grep -E '^(deepspeed swappers|  )' "$out/swappers.log"
    else
        tail -30 "$out/swappers.log"
        echo "deepspeed-suite: FAILED: DeepSpeed's swappers (the log's end is above)" >&2
        exit 1
    fi
fi
