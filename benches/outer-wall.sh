#!/usr/bin/env bash
# What the outer wall costs at start-up, measured in one hyperfine run:
#   bare      the same engine without the wall (examples/bare_run.rs)
#   wsandbox  `wsandbox run`, both walls
#   unshare   the kernel's own price: unshare -Urpfnmiu --mount-proc true
#   true      a process that does nothing
# on a WebAssembly-text hello (compiling it is negligible, so start-up
# dominates; wsandbox runs with --no-cache, so it compiles as bare does).
# Run by hand: bash benches/outer-wall.sh [--runs N]
source "$(dirname "$0")/prelude.sh"
runs=${2:-200}
hello=guests/wat/hello.wat
hyperfine -N --warmup 20 --runs "$runs" --export-json target/outer-wall.json \
    -n bare "$bare $hello" \
    -n wsandbox "$ws run --no-cache $hello" \
    -n unshare "unshare -Urpfnmiu --mount-proc true" \
    -n true "true"
python3 - <<'PY'
import json
r = {x["command"]: x for x in json.load(open("target/outer-wall.json"))["results"]}
ms = lambda n: r[n]["median"] * 1000
print(f"median ms: bare {ms('bare'):.2f}, wsandbox {ms('wsandbox'):.2f}, unshare {ms('unshare'):.2f}, true {ms('true'):.2f}")
print(f"wall cost (wsandbox - bare): {ms('wsandbox') - ms('bare'):.2f} ms; "
      f"kernel price (unshare - true): {ms('unshare') - ms('true'):.2f} ms; "
      f"ratio wsandbox/bare: {ms('wsandbox') / ms('bare'):.2f}")
PY
