#!/usr/bin/env bash
# What the walls cost a server, measured in one run with wrk: requests per
# second and p99 latency of the probe component's hello route (GET /) at 1,
# 8 and 64 connections, served by
#   bare      the same engine in-process, without the outer wall
#             (examples/bare_serve.rs)
#   wsandbox  `wsandbox serve`, both walls
#   metrics   `wsandbox serve --admin-addr`: every request counted in the
#             metrics, /metrics scraped every second while it runs
# Each case runs the servers alternately, ROUNDS times each, for SECONDS
# seconds a run; the ratios are of the means (metrics: against wsandbox).
# Run by hand: bash benches/serve.sh [SECONDS] [ROUNDS]
source "$(dirname "$0")/prelude.sh"
seconds=${1:-5}
rounds=${2:-2}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
component=$guests/wasm32-wasip2/release/probe_http.wasm
logs=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$logs"' EXIT

start_server bare "$bare_serve" 127.0.0.1:0 "$component"
start_server wsandbox "$ws" serve --addr 127.0.0.1:0 "$component"
start_server metrics "$ws" serve --addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 "$component"
admin=$(sed -n 's/^admin: //p' "$logs/metrics.log")
( while sleep 1; do curl -s "$admin/metrics" >/dev/null || true; done ) &
results=$logs/results
wrk_rounds "$seconds" "$rounds" "$results" bare wsandbox metrics

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
print(f"{'conns':>5} {'bare req/s':>11} {'ws req/s':>10} {'ratio':>6}   {'bare p99':>9} {'ws p99':>9} {'ratio':>6}"
      f"   {'metrics req/s':>13} {'vs ws':>6} {'p99':>9}")
for c in sorted({c for c, _ in runs}):
    b, w, m = runs[(c, "bare")], runs[(c, "wsandbox")], runs[(c, "metrics")]
    brps, wrps, mrps = (mean([r for r, _ in x]) for x in (b, w, m))
    bp99, wp99, mp99 = (mean([p for _, p in x]) for x in (b, w, m))
    print(f"{c:>5} {brps:>11.0f} {wrps:>10.0f} {wrps / brps:>6.3f}   {bp99:>7.2f}ms {wp99:>7.2f}ms {wp99 / bp99:>6.2f}"
          f"   {mrps:>13.0f} {mrps / wrps:>6.3f} {mp99:>7.2f}ms")
PY
