#!/usr/bin/env bash
# Start-up of `wsandbox run` for the three kinds of module (text, core,
# component), each a hello, with the compilation cache (warm after the
# warm-up runs) and without it (--no-cache: every run compiles), timed by
# hyperfine in one run so the numbers compare. The cache is a temporary
# one. Run by hand: bash benches/startup.sh
source "$(dirname "$0")/prelude.sh"
XDG_CACHE_HOME=$(mktemp -d)
export XDG_CACHE_HOME
trap 'rm -rf "$XDG_CACHE_HOME"' EXIT
core=$guests/wasm32-wasip1/release/hello.wasm
component=$guests/wasm32-wasip2/release/hello.wasm
hyperfine -N --warmup 5 --runs 50 \
    -n wat "$ws run guests/wat/hello.wat" \
    -n core "$ws run $core" \
    -n component "$ws run $component" \
    -n "wat --no-cache" "$ws run --no-cache guests/wat/hello.wat" \
    -n "core --no-cache" "$ws run --no-cache $core" \
    -n "component --no-cache" "$ws run --no-cache $component"
