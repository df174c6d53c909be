#!/usr/bin/env bash
# Start-up of `wsandbox run` for the three kinds of module (text, core,
# component), each a hello, timed by hyperfine in one run so the numbers
# compare. Run by hand: bash benches/startup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }
rustup target add wasm32-wasip1 wasm32-wasip2 >/dev/null
# The example pulls in the dev-dependency that builds the guests.
cargo build --release --quiet --bin wsandbox --example bare_run
out=$(ls -d target/release/build/wsandbox-guests-*/out | head -1)
ws=target/release/wsandbox
hyperfine -N --warmup 5 --runs 50 \
    -n wat "$ws run guests/wat/hello.wat" \
    -n core "$ws run $out/target/wasm32-wasip1/release/hello.wasm" \
    -n component "$ws run $out/target/wasm32-wasip2/release/hello.wasm"
