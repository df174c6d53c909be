"""wsandbox for Python host programs: untrusted WebAssembly plugins, each
kept in a sandboxed worker process (``wsandbox worker``, behind Linux
namespaces, seccomp and Landlock outside, WASI inside) and called like a
function.

>>> from wsandbox import Plugin
>>> with Plugin("words.wasm", {"timeout": "10s"}, call_timeout=2.0) as words:
...     words.handle(b"the cat saw the dog")
"""

from ._plugin import (
    CallError,
    HostFunction,
    OutOfFuel,
    Plugin,
    PluginError,
    PolicyLike,
    ProtocolError,
    Refused,
    StartError,
    Timeout,
    Trapped,
    WorkerDied,
)
from ._values import Err, Ok, Result, ResultError, Variant

__version__ = "0.1.0"

__all__ = [
    "CallError",
    "Err",
    "HostFunction",
    "Ok",
    "OutOfFuel",
    "Plugin",
    "PluginError",
    "PolicyLike",
    "ProtocolError",
    "Refused",
    "Result",
    "ResultError",
    "StartError",
    "Timeout",
    "Trapped",
    "Variant",
    "WorkerDied",
]
