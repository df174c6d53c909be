#!/usr/bin/env bash
# The WASI test suite's published tests (a checkout of
# github.com/WebAssembly/wasi-testsuite's branch `prod/testsuite-base`,
# which holds them prebuilt) under this tree's wsandbox and under the
# official wasmtime, in one run, with the suite's own runner: a line per
# test that passes under one and not the other, and the totals.
# Run by hand: bash benches/wasi-testsuite/run.sh TESTSUITE_DIR WASMTIME [SUITE]
# (SUITE: a directory of tests, tests/rust/testsuite/wasm32-wasip3 unless
# told; the runner needs Python 3.11 and `pip install colorama requests`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
suite_dir=${1:?usage: run.sh TESTSUITE_DIR WASMTIME [SUITE]}
wasmtime=$(realpath "${2:?usage: run.sh TESTSUITE_DIR WASMTIME [SUITE]}")
suite=${3:-tests/rust/testsuite/wasm32-wasip3}
(cd "$here/../.." && cargo build --release --quiet --bin wsandbox)
ws=$(realpath "$here/../../target/release/wsandbox")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cd "$suite_dir"
for runtime in wsandbox wasmtime; do
    case $runtime in
        wsandbox) adapter=$here/wsandbox.py ;;
        wasmtime) adapter=adapters/wasmtime.py ;;
    esac
    # A fresh copy of the tests each: some leave files behind (a link of
    # filesystem-hard-links' that the runner's cleaning spares) that
    # another test then finds.
    mkdir -p "$out/$runtime-tests"
    cp -r "$suite" "$out/$runtime-tests/"
    tests=$out/$runtime-tests/$(basename "$suite")
    # The suite's runner (as its `run-tests`), on SUITE alone.
    WSANDBOX=$ws WASMTIME=$wasmtime python3 - "$adapter" "$tests" "$out/$runtime" >"$out/$runtime.log" 2>&1 <<'PY' || true
import enum
import sys
from pathlib import Path
# Python 3.11's enums refuse `"value" in Enum`, which the runner asks
# (3.12 answers it).
_contains = enum.EnumType.__contains__
enum.EnumType.__contains__ = lambda cls, value: (
    _contains(cls, value) if isinstance(value, cls) else any(m.value == value for m in cls))
sys.path.insert(0, "test-runner")
from wasi_test_runner.harness import run_tests
from wasi_test_runner.runtime_adapter import RuntimeAdapter
adapter, suite, log = sys.argv[1:4]
sys.exit(run_tests([RuntimeAdapter(adapter)], [Path(suite)], color=False, json_log_file=log,
                   verbose=False, expectations=[]))
PY
done
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
def results(runtime):
    """Each test's outcome (pass, fail, skip) and first failure."""
    report = json.load(open(f"{out}/{runtime}"))
    return {test["name"]: (test["outcome"], (test["failures"] or [""])[0].splitlines()[:1])
            for suite in report["results"] for test in suite["tests"]}
ws, wt = results("wsandbox"), results("wasmtime")
for name in sorted(set(ws) | set(wt)):
    (a, why_a), (b, why_b) = ws.get(name, ("absent", [])), wt.get(name, ("absent", []))
    if a != b:
        print(f"{name}: wsandbox {a} {why_a}, wasmtime {b} {why_b}")
count = lambda r, o: sum(1 for outcome, _ in r.values() if outcome == o)
for runtime, r in (("wsandbox", ws), ("wasmtime", wt)):
    print(f"{runtime}: {count(r, 'pass')} passed, {count(r, 'fail')} failed, {count(r, 'skip')} skipped, of {len(r)}")
PY
