#!/usr/bin/env bash
# What the lockdown (seccomp filter, Landlock, no capabilities, namespaces)
# costs a running guest, against the same engine without the outer wall
# (examples/bare_run.rs), in one hyperfine run:
#   compute  a compute-bound guest (guests/wat/compute.wat, ~1 s, no syscall)
#   io       1 GiB through the `cat` guest: a read and a write syscall
#            per 64 KiB, each through the seccomp filter
# Prints the ratios wsandbox/bare. Run by hand: bash benches/lockdown.sh
source "$(dirname "$0")/prelude.sh"
cat=$guests/wasm32-wasip1/release/cat.wasm
hyperfine -N --warmup 2 --runs "${RUNS:-15}" --export-json target/lockdown.json \
    -n compute-bare "$bare guests/wat/compute.wat" \
    -n compute-wsandbox "$ws run guests/wat/compute.wat"
hyperfine --warmup 1 --runs "${RUNS:-15}" --export-json target/lockdown-io.json \
    -n io-bare "head -c 1G /dev/zero | $bare $cat >/dev/null 2>&1" \
    -n io-wsandbox "head -c 1G /dev/zero | $ws run $cat >/dev/null 2>&1"
python3 - <<'PY'
import json
r = {}
for f in ["target/lockdown.json", "target/lockdown-io.json"]:
    r.update({x["command"]: x["median"] for x in json.load(open(f))["results"]})
for kind in ["compute", "io"]:
    bare, ws = r[f"{kind}-bare"], r[f"{kind}-wsandbox"]
    print(f"{kind}: bare {bare*1000:.0f} ms, wsandbox {ws*1000:.0f} ms, ratio wsandbox/bare {ws/bare:.3f}")
PY
