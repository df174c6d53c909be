"""A runtime adapter of the WASI test suite's runner for wsandbox
(github.com/WebAssembly/wasi-testsuite, `adapters/`): a test runs under
both walls with what its configuration grants — its directory, its
variables and arguments — and, for a test of `wasi:http` clients, an
`--allow-http` rule for each local server the runner stands up (its
`HTTP_SERVER_<NAME>` variable). `WSANDBOX` names the binary."""

import os
import shlex
import subprocess
from typing import Dict, List, Optional, Tuple

WSANDBOX = shlex.split(os.getenv("WSANDBOX", "wsandbox"))


def get_name() -> str:
    return "wsandbox"


def get_version() -> str:
    result = subprocess.run(WSANDBOX[0:1] + ["--version"], encoding="UTF-8",
                            capture_output=True, check=True)
    return result.stdout.splitlines()[0].split(" ")[1]


def get_wasi_versions() -> List[str]:
    return ["wasm32-wasip1", "wasm32-wasip3"]


def get_wasi_worlds() -> List[str]:
    return ["wasi:cli/command", "wasi:http/service"]


def compute_argv(test_path: str,
                 args_env_root: Tuple[List[str], Dict[str, str], Optional[str]],
                 proposals: List[str],
                 wasi_world: str,
                 wasi_version: str) -> List[str]:
    args, env, root = args_env_root
    serve = wasi_world == "wasi:http/service"
    argv = list(WSANDBOX)
    argv += ["serve", "--addr", "127.0.0.1:0"] if serve else ["run"]
    for name, value in env.items():
        argv += ["--env", f"{name}={value}"]
        if name.startswith("HTTP_SERVER_"):
            argv += ["--allow-http", value]
    if root:
        argv += ["--dir", f"{root}::/"]
    argv.append(test_path)
    if not serve:
        argv += args
    return argv
