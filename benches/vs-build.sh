#!/usr/bin/env bash
# This tree's wsandbox against another build of it (a commit before a
# change), in one run:
#   start-up  `wsandbox run --no-cache` of a WebAssembly-text hello,
#             `wsandbox run` (warm cache) of a Rust core hello and of the
#             same hello as a component, both builds alternating in ROUNDS
#             hyperfine rounds;
#   serve     `wsandbox serve` of the probe component's hello route (GET /),
#             requests per second at 1, 8 and 64 connections with wrk, the
#             two servers alternately, ROUNDS runs each of SECONDS seconds.
# Ratios are this / other: under 1 is faster for start-up, over 1 is more
# requests for serve.
# Build the other one first, e.g.:
#   git worktree add /tmp/before COMMIT && (cd /tmp/before && cargo build --release --bin wsandbox)
# Run by hand: bash benches/vs-build.sh OTHER_WSANDBOX [SECONDS] [ROUNDS]
source "$(dirname "$0")/prelude.sh"
other=${1:?usage: benches/vs-build.sh OTHER_WSANDBOX [SECONDS] [ROUNDS]}
seconds=${2:-5}
rounds=${3:-4}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
logs=$(mktemp -d)
XDG_CACHE_HOME=$logs/cache
export XDG_CACHE_HOME
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$logs"' EXIT

hello=guests/wat/hello.wat
core=$guests/wasm32-wasip1/release/hello.wasm
hello_component=$guests/wasm32-wasip2/release/hello.wasm
for round in $(seq "$rounds"); do
    hyperfine -N --style none --warmup 10 --runs 50 --export-json "$logs/start-$round.json" \
        -n "this --no-cache" "$ws run --no-cache $hello" \
        -n "other --no-cache" "$other run --no-cache $hello" \
        -n "this" "$ws run $core" \
        -n "other" "$other run $core" \
        -n "this component" "$ws run $hello_component" \
        -n "other component" "$other run $hello_component" >/dev/null
done

component=$guests/wasm32-wasip2/release/probe_http.wasm
start_server this "$ws" serve --addr 127.0.0.1:0 "$component"
start_server other "$other" serve --addr 127.0.0.1:0 "$component"
wrk_rounds "$seconds" "$rounds" "$logs/serve" this other

python3 - "$logs" "$rounds" <<'PY'
import json, statistics, sys
from collections import defaultdict
logs, rounds = sys.argv[1], int(sys.argv[2])
times = defaultdict(list)
for r in range(1, rounds + 1):
    for result in json.load(open(f"{logs}/start-{r}.json"))["results"]:
        times[result["command"]].extend(result["times"])
ms = lambda name: statistics.median(times[name]) * 1000
for case in ("--no-cache", "", "component"):
    this, other = f"this {case}".strip(), f"other {case}".strip()
    print(f"start-up {case or 'warm cache':>10}: this {ms(this):.2f} ms, other {ms(other):.2f} ms, "
          f"this/other {ms(this) / ms(other):.3f} (medians of {len(times[this])} runs each)")
runs = defaultdict(list)
for line in open(f"{logs}/serve"):
    c, name, rps, p99, errors = line.split()
    assert errors == "0", f"failed requests in a run: {line}"
    runs[(int(c), name)].append(float(rps))
mean = lambda xs: sum(xs) / len(xs)
for c in sorted({c for c, _ in runs}):
    this, other = mean(runs[(c, "this")]), mean(runs[(c, "other")])
    print(f"serve {c:>2} connections: this {this:.0f} req/s, other {other:.0f} req/s, this/other {this / other:.3f}")
PY
