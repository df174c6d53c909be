#!/usr/bin/env bash
# What the outer wall costs at start-up, measured in one run:
#   bare      the same engine without the wall (examples/bare_run.rs)
#   wsandbox  `wsandbox run`, both walls
#   unshare   the kernel's own price: unshare -Urpfnmiu --mount-proc true
#   true      a process that does nothing
# on a WebAssembly-text hello (compiling it is negligible, so start-up
# dominates; wsandbox runs with --no-cache, so it compiles as bare does).
# The four alternate in ROUNDS rounds of RUNS/ROUNDS runs each, so that a
# slower or faster spell of this shared machine falls on all of them; the
# medians are over every run of every round.
# Run by hand: bash benches/outer-wall.sh [RUNS [ROUNDS]]
source "$(dirname "$0")/prelude.sh"
runs=${1:-400}
rounds=${2:-8}
hello=guests/wat/hello.wat
for round in $(seq "$rounds"); do
    hyperfine -N --style none --warmup 10 --runs $((runs / rounds)) \
        --export-json "target/outer-wall-$round.json" \
        -n bare "$bare $hello" \
        -n wsandbox "$ws run --no-cache $hello" \
        -n unshare "unshare -Urpfnmiu --mount-proc true" \
        -n true "true" >/dev/null 2>&1
done
python3 - "$rounds" <<'PY'
import json, statistics, sys
times = {}
for round in range(1, int(sys.argv[1]) + 1):
    for result in json.load(open(f"target/outer-wall-{round}.json"))["results"]:
        times.setdefault(result["command"], []).extend(result["times"])
ms = lambda n: statistics.median(times[n]) * 1000
print(f"median ms over {len(times['bare'])} runs each: bare {ms('bare'):.2f}, "
      f"wsandbox {ms('wsandbox'):.2f}, unshare {ms('unshare'):.2f}, true {ms('true'):.2f}")
wall, kernel = ms('wsandbox') - ms('bare'), ms('unshare') - ms('true')
print(f"wall cost (wsandbox - bare): {wall:.2f} ms; kernel price (unshare - true): {kernel:.2f} ms; "
      f"wall / kernel: {wall / kernel:.2f}; ratio wsandbox/bare: {ms('wsandbox') / ms('bare'):.2f}")
PY
