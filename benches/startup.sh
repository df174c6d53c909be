#!/usr/bin/env bash
# Start-up of `wsandbox run` for the three kinds of module (text, core,
# component), each a hello, timed by hyperfine in one run so the numbers
# compare. Run by hand: bash benches/startup.sh
source "$(dirname "$0")/prelude.sh"
hyperfine -N --warmup 5 --runs 50 \
    -n wat "$ws run guests/wat/hello.wat" \
    -n core "$ws run $guests/wasm32-wasip1/release/hello.wasm" \
    -n component "$ws run $guests/wasm32-wasip2/release/hello.wasm"
