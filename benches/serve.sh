#!/usr/bin/env bash
# What the walls cost a server, measured in one run with wrk: requests per
# second and p99 latency of the probe component's hello route (GET /) at 1,
# 8 and 64 connections, served by
#   bare      the same engine in-process, without the outer wall
#             (examples/bare_serve.rs)
#   wsandbox  `wsandbox serve`, both walls
# Each case runs the two servers alternately, ROUNDS times each, for
# SECONDS seconds a run; the ratios are of the means.
# Run by hand: bash benches/serve.sh [SECONDS] [ROUNDS]
source "$(dirname "$0")/prelude.sh"
seconds=${1:-5}
rounds=${2:-2}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
component=$guests/wasm32-wasip2/release/probe_http.wasm
logs=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$logs"' EXIT

# Starts a server ($1: a name, then its command) and sets addr_$1.
start() {
    local name=$1; shift
    "$@" 2>"$logs/$name.log" &
    for _ in $(seq 600); do
        [ -s "$logs/$name.log" ] && break
        sleep 0.1
    done
    local first
    first=$(head -1 "$logs/$name.log")
    case $first in http://*) ;; *) echo "$name did not start: $first" >&2; exit 1 ;; esac
    printf -v "addr_$name" '%s' "$first"
}
start bare "$bare_serve" 127.0.0.1:0 "$component"
start wsandbox "$ws" serve --addr 127.0.0.1:0 "$component"

# Warm both: the pools' slots, the caches, the connections.
for url in "$addr_bare" "$addr_wsandbox"; do wrk -t1 -c8 -d1s "$url/" >/dev/null; done

results=$logs/results
for connections in 1 8 64; do
    threads=$(( connections < 2 ? 1 : 2 ))
    for _ in $(seq "$rounds"); do
        for name in bare wsandbox; do
            url=addr_$name
            wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency "${!url}/" >"$logs/wrk.out"
            rps=$(awk '/^Requests\/sec/ {print $2}' "$logs/wrk.out")
            p99=$(awk '$1 == "99%" {print $2}' "$logs/wrk.out")
            errors=$(grep -cE 'Non-2xx|Socket errors' "$logs/wrk.out" || true)
            echo "$connections $name $rps $p99 $errors" >>"$results"
        done
    done
done

python3 - "$results" <<'PY'
import sys
from collections import defaultdict
def ms(text):
    for unit, factor in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    raise ValueError(text)
runs = defaultdict(list)
for line in open(sys.argv[1]):
    c, name, rps, p99, errors = line.split()
    assert errors == "0", f"failed requests in a run: {line}"
    runs[(int(c), name)].append((float(rps), ms(p99)))
mean = lambda xs: sum(xs) / len(xs)
print(f"{'conns':>5} {'bare req/s':>11} {'ws req/s':>10} {'ratio':>6}   {'bare p99':>9} {'ws p99':>9} {'ratio':>6}")
for c in sorted({c for c, _ in runs}):
    b, w = runs[(c, "bare")], runs[(c, "wsandbox")]
    brps, wrps = mean([r for r, _ in b]), mean([r for r, _ in w])
    bp99, wp99 = mean([p for _, p in b]), mean([p for _, p in w])
    print(f"{c:>5} {brps:>11.0f} {wrps:>10.0f} {wrps / brps:>6.3f}   {bp99:>7.2f}ms {wp99:>7.2f}ms {wp99 / bp99:>6.2f}")
PY
