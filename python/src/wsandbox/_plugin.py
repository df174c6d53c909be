"""A plugin in a sandboxed worker: the ``wsandbox worker`` process, behind
wsandbox's two walls, spoken to over a private socket pair."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

from . import _wire
from ._values import Err, Ok

#: A policy: a dict with the keys of a policy file (``{"timeout": "2s",
#: "memory": "64M", "dirs": [...]}``), or the path of a policy file.
PolicyLike = Union[Mapping[str, Any], str, "os.PathLike[str]", None]

#: A host function: it gets the plugin's arguments as Python values and
#: returns the function's result (``None`` for a function without one); an
#: exception it raises is the plugin's error value when the function
#: returns a ``result``, else it traps the plugin's call.
HostFunction = Callable[..., Any]

START_TIMEOUT = 60.0
MAX_ANSWER = 64 << 20
_BYTES_PER_VALUE = 64
_SEND_TIMEOUT = 30.0
_EXIT_GRACE = 2.0
_MAX_LINE = 4096


def _duration_text(seconds: float) -> str:
    """A duration as wsandbox writes one (``30s``, ``1.5s`` as ``1500ms``,
    ``2m``): the largest unit that holds it exactly, as the ``wsandbox``
    command's messages and policy files say it."""
    nanos = round(seconds * 1e9)
    for unit, size in (("h", 3600 * 10**9), ("m", 60 * 10**9), ("s", 10**9), ("ms", 10**6), ("us", 10**3)):
        if nanos >= size and nanos % size == 0:
            return f"{nanos // size}{unit}"
    return f"{nanos}ns"


class PluginError(Exception):
    """What went wrong with a plugin. After ``Trapped``, ``OutOfFuel``,
    ``Timeout`` and ``WorkerDied`` the worker is gone and the next call
    starts a fresh one; after ``CallError`` it lives on."""


class StartError(PluginError):
    """The worker could not be started, or ended before it was ready (a
    plugin importing a function its host does not offer among the reasons)."""


class ProtocolError(PluginError):
    """The worker sent what is not this protocol, or speaks another
    version (``found`` is then its version)."""

    def __init__(self, message: str, found: Optional[int] = None):
        super().__init__(message)
        self.found = found


class CallError(PluginError):
    """The call does not fit the plugin: an unknown export, arguments of
    the wrong number or type, a value that cannot cross."""


class Trapped(PluginError):
    """The plugin trapped (a host function's exception among the reasons,
    when the function returns no ``result``)."""


class OutOfFuel(PluginError):
    """The call burnt all the fuel the policy gives a call."""


class Timeout(PluginError, TimeoutError):
    """The call ran past its time limit (its host functions' time
    included); its worker was stopped."""


class WorkerDied(PluginError):
    """The worker died during a call."""


class Refused(Exception):
    """``handle``'s plugin refused the input: its one-line reason is
    ``reason``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _TimedOut(Exception):
    pass


class _Closed(Exception):
    pass


def _label(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(text: str) -> str:
    """``text`` on one line, its control characters escaped as wsandbox
    escapes them (``\\n``, ``\\u{1b}``)."""
    return "".join(
        c if c.isprintable() or c == " " else _ESCAPES.get(c, "\\u{%x}" % ord(c)) for c in text
    )


class Plugin:
    """A plugin: a component in a sandboxed worker, started on first use.

    ``module`` is the component's path, or its bytes (binary or text;
    named by their content hash, ``sha256:`` and 16 hex digits, in errors
    and logs). ``policy`` is what it is granted (a dict with the keys of a
    policy file, or a policy file's path; nothing unless told).
    ``call_timeout`` bounds each call, in seconds, and the plugin's
    instantiation. ``host_functions`` maps the functions the plugin may
    import (``"my:app/host.lookup"``, or a world's own ``"lookup"``) to
    Python callables. The worker is ``binary``, else ``$WSANDBOX_BIN``,
    else ``wsandbox`` on ``PATH``.

    Used as a context manager, the worker is stopped (and reaped) at the
    end of the block; otherwise call :meth:`close`.
    """

    def __init__(
        self,
        module: Union[str, "os.PathLike[str]", bytes],
        policy: PolicyLike = None,
        call_timeout: Optional[float] = None,
        *,
        host_functions: Optional[Mapping[str, HostFunction]] = None,
        name: Optional[str] = None,
        binary: Optional[str] = None,
        start_timeout: float = START_TIMEOUT,
        max_answer: int = MAX_ANSWER,
        cache: bool = True,
    ):
        if isinstance(module, (bytes, bytearray, memoryview)):
            self._bytes: Optional[bytes] = bytes(module)
            self._path = "-"
            self.hash: Optional[str] = hashlib.sha256(self._bytes).hexdigest()
            default_name = _label(self._bytes)
        else:
            self._bytes = None
            self._path = os.fspath(module)
            self.hash = None
            default_name = os.path.splitext(os.path.basename(self._path))[0] or "plugin"
        if policy is None:
            self._policy: Tuple[str, str] = ("json", "{}")
        elif isinstance(policy, Mapping):
            self._policy = ("json", json.dumps(dict(policy)))
        else:
            self._policy = ("file", os.path.abspath(os.fspath(policy)))
        self.name = _escaped(name if name is not None else default_name)[:64]
        self.call_timeout = call_timeout
        self.start_timeout = start_timeout
        self.max_answer = min(max_answer, _wire.MAX_FRAME)
        self._host: Dict[str, HostFunction] = dict(host_functions or {})
        self._binary = binary
        self._cache = cache
        self._worker: Optional[_Worker] = None
        self._lock = threading.Lock()
        self._calling: Optional[int] = None

    # -- the worker -------------------------------------------------------

    def start(self) -> None:
        """Starts the worker, if it is not running: compiles and
        instantiates the plugin behind both walls."""
        with self._lock:
            self._start()

    def _start(self) -> "_Worker":
        if self._worker is None:
            self._worker = _Worker(self)
        return self._worker

    @property
    def pid(self) -> Optional[int]:
        """The running worker's process id (the ``wsandbox`` process
        outside the sandbox; the sandboxed process is its child)."""
        return self._worker.process.pid if self._worker else None

    def exports(self) -> List[Tuple[str, str]]:
        """The plugin's exported functions with their signatures (WIT)."""
        with self._lock:
            return list(self._start().exports)

    def close(self) -> None:
        """Stops the worker (a later call starts a fresh one)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()

    def __enter__(self) -> "Plugin":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # -- calls ------------------------------------------------------------

    def call(self, name: str, *args: Any) -> Any:
        """Calls the export ``name`` (``greet``, ``values.add``,
        ``wsandbox:shapes/values.add``) with ``args`` and returns its
        result (``None`` if it has none). Python values are fitted to the
        parameters' types: ``int`` to any integer type, ``str`` to strings,
        chars and enum cases, ``bytes`` or a list to a ``list<u8>``, a
        ``dict`` to a record, a ``tuple`` to a tuple, a ``set`` of ``str``
        to flags, ``None`` or a value to an option, :class:`Ok`/:class:`Err`
        (or a plain value, for ``ok``) to a result, :class:`Variant` (or
        ``{case: payload}``, or the case's name alone) to a variant."""
        try:
            request = _wire.call(name, list(args))
        except _wire.WireError as e:
            raise CallError(f"cannot pass an argument to the plugin: {e}") from None
        kind, answer = self._ask(request)
        if kind != "returned":
            raise self._unexpected(kind)
        return answer[0] if answer else None

    def handle(self, data: bytes) -> bytes:
        """The plugin world's ``handle``: ``data`` in, the output out; the
        plugin's refusal is :class:`Refused`."""
        kind, answer = self._ask(_wire.handle(bytes(data)))
        if kind != "handled":
            raise self._unexpected(kind)
        if isinstance(answer, Err):
            raise Refused(answer.value)
        output: bytes = answer.value
        return output

    def metadata(self) -> Dict[str, str]:
        """The plugin world's ``metadata``: name, version and description."""
        info = self.call("wsandbox:plugin/guest@0.1.0.metadata")
        if not isinstance(info, dict):
            raise CallError("the plugin's `metadata` is not the plugin world's: is it a wsandbox plugin?")
        return info

    def _ask(self, request: bytes) -> Tuple[str, Any]:
        if self._calling == threading.get_ident():
            raise PluginError("a plugin cannot be called from its own host function: it is in a call already")
        with self._lock:
            self._calling = threading.get_ident()
            try:
                worker = self._start()
                try:
                    kind, answer = worker.ask(request, self.call_timeout, self.max_answer, self._host)
                except PluginError:
                    self._worker = None
                    worker.stop()
                    raise
                if kind == "failed":
                    failure, message, fatal = answer
                    if fatal:
                        self._worker = None
                        worker.stop()
                    raise {"call": CallError, "trap": Trapped, "fuel": OutOfFuel}[failure](message)
                return kind, answer
            finally:
                self._calling = None

    def _unexpected(self, kind: str) -> PluginError:
        self.close()
        return ProtocolError(f"an answer out of place: {kind}")


class _Worker:
    """A running worker: its process, its channel and its stderr's reader."""

    def __init__(self, plugin: Plugin):
        binary = plugin._binary or os.environ.get("WSANDBOX_BIN") or shutil.which("wsandbox")
        if not binary:
            raise StartError("no worker: pass binary=, set WSANDBOX_BIN, or put wsandbox on PATH")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        command = [binary, "worker"]
        if not plugin._cache:
            command.append("--no-cache")
        command += ["--channel-fd", str(theirs.fileno()), plugin._path]
        try:
            self.process = subprocess.Popen(
                command,
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        except OSError as e:
            ours.close()
            raise StartError(f"{binary}: {e}") from None
        finally:
            theirs.close()
        self.channel = ours
        self.buffer = bytearray()
        self.exports: List[Tuple[str, str]] = []
        self.last_line = ""
        self.stderr_done = threading.Event()
        threading.Thread(target=self._pass_on, args=(plugin.name,), daemon=True).start()
        try:
            self._begin(plugin)
        except BaseException:
            self.stop()
            raise

    def _pass_on(self, name: str) -> None:
        """Passes the worker's stderr on, a bounded, escaped line at a time."""
        stream = self.process.stderr
        assert stream is not None
        try:
            while True:
                line = stream.readline(_MAX_LINE + 1)
                if not line:
                    break
                cut = not line.endswith(b"\n")
                if cut:
                    # Skip the rest of a line too long to pass on.
                    while True:
                        rest = stream.readline(65536)
                        if not rest or rest.endswith(b"\n"):
                            break
                text = _escaped(line.rstrip(b"\n").decode("utf-8", "replace"))[:_MAX_LINE]
                if cut:
                    text += " [...]"
                self.last_line = text
                try:
                    sys.stderr.write(f"{name}: {text}\n")
                except Exception:
                    pass
        finally:
            self.stderr_done.set()

    # -- the channel ------------------------------------------------------

    def _send(self, frame: bytes, deadline: Optional[float]) -> None:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise _TimedOut()
        self.channel.settimeout(left)
        try:
            self.channel.sendall(frame)
        except socket.timeout:
            raise _TimedOut() from None

    def _read(self, n: int, deadline: Optional[float], between: bool) -> bytes:
        while len(self.buffer) < n:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise _TimedOut()
            self.channel.settimeout(left)
            try:
                chunk = self.channel.recv(max(65536, n - len(self.buffer)))
            except socket.timeout:
                raise _TimedOut() from None
            if not chunk:
                if between and not self.buffer:
                    raise _Closed()
                raise ProtocolError("the channel closed inside a frame")
            self.buffer += chunk
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def _frame(self, deadline: Optional[float], max_frame: int) -> bytes:
        (length,) = struct.unpack(">I", self._read(4, deadline, True))
        if length > max_frame:
            raise ProtocolError(f"a frame of {length} bytes (at most {max_frame})")
        return self._read(length, deadline, False)

    def _decode(self, body: bytes, max_answer: int) -> Tuple[str, Any]:
        budget = max(max_answer // _BYTES_PER_VALUE, 1024)
        try:
            return _wire.decode_from_worker(body, budget)
        except _wire.WireError as e:
            raise ProtocolError(str(e)) from None
        except RecursionError:
            raise ProtocolError("values nested too deep") from None

    # -- its life ---------------------------------------------------------

    def _begin(self, plugin: Plugin) -> None:
        deadline = time.monotonic() + plugin.start_timeout
        start = _wire.start(plugin._policy, sorted(plugin._host), plugin._bytes)
        try:
            self._send(start, deadline)
        except _TimedOut:
            raise StartError(f"the worker did not take its policy within {_duration_text(plugin.start_timeout)}") from None
        except OSError as e:
            raise StartError(f"{e}; {self.ended()}") from None
        try:
            body = self._frame(deadline, 1 << 20)
        except _TimedOut:
            raise StartError(f"the worker did not compile the plugin within {_duration_text(plugin.start_timeout)}") from None
        except (_Closed, OSError):
            raise StartError(self.ended()) from None
        if body[:1] == b"{":
            found = _wire.json_hello(body)
            raise ProtocolError(
                f"the plugin's worker speaks protocol {found}, this package speaks {_wire.PROTOCOL}: "
                "use the wsandbox binary of the same version",
                found,
            )
        kind, hello = self._decode(body, 1 << 16)
        if kind != "hello":
            raise ProtocolError(f"{kind} before hello")
        if hello != _wire.PROTOCOL:
            raise ProtocolError(
                f"the plugin's worker speaks protocol {hello}, this package speaks {_wire.PROTOCOL}: "
                "use the wsandbox binary of the same version",
                hello,
            )
        limit = plugin.call_timeout if plugin.call_timeout is not None else plugin.start_timeout
        try:
            kind, exports = self._decode(self._frame(time.monotonic() + limit, plugin.max_answer), plugin.max_answer)
        except _TimedOut:
            if plugin.call_timeout is not None:
                raise Timeout(f"the plugin's start ran past its time limit ({_duration_text(limit)})") from None
            raise StartError(f"the worker did not instantiate the plugin within {_duration_text(limit)}") from None
        except (_Closed, OSError):
            raise StartError(self.ended()) from None
        if kind != "ready":
            raise ProtocolError(f"{kind} before the exports")
        self.exports = exports

    def ask(
        self,
        request: bytes,
        limit: Optional[float],
        max_answer: int,
        host: Mapping[str, HostFunction],
    ) -> Tuple[str, Any]:
        """Sends ``request`` and returns the answer, running the host
        functions the plugin calls meanwhile; all within ``limit``."""
        deadline = None if limit is None else time.monotonic() + limit
        spelt = "none" if limit is None else _duration_text(limit)
        timed_out = f"the plugin's call ran past its time limit ({spelt}) and its worker was stopped"
        while True:
            try:
                self._send(request, deadline if deadline is not None else time.monotonic() + _SEND_TIMEOUT)
            except _TimedOut:
                if limit is None:
                    raise WorkerDied(f"the worker did not take the request within {_duration_text(_SEND_TIMEOUT)}") from None
                raise Timeout(timed_out) from None
            except OSError as e:
                raise WorkerDied(f"{e}; {self.ended()}") from None
            try:
                kind, answer = self._decode(self._frame(deadline, max_answer), max_answer)
            except _TimedOut:
                raise Timeout(timed_out) from None
            except (_Closed, OSError) as e:
                raise WorkerDied(self.ended() if isinstance(e, _Closed) else f"{e}; {self.ended()}") from None
            if kind != "host_call":
                return kind, answer
            name, args = answer
            request = _run_host(host, name, args)
            if deadline is not None and time.monotonic() >= deadline:
                raise Timeout(timed_out)

    def ended(self) -> str:
        """Waits (a moment, then kills it) for a worker that closed its
        channel; says how it ended."""
        try:
            code = self.process.wait(_EXIT_GRACE)
            status = f"exit status: {code}" if code >= 0 else f"signal: {-code}"
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            status = f"still running {_EXIT_GRACE} s after it closed its channel: killed"
        self.stderr_done.wait(1.0)
        line = self.last_line
        if line.startswith("wsandbox: "):
            line = line[len("wsandbox: "):]
        return f"{line} ({status})" if line else f"the worker ended ({status})"

    def stop(self) -> None:
        """Closes the channel (the worker exits), kills it if it does not
        within a moment, and reaps it."""
        try:
            self.channel.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.channel.close()
        try:
            self.process.wait(0.1)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.stderr_done.wait(1.0)
        if self.process.stderr is not None:
            self.process.stderr.close()


def _run_host(host: Mapping[str, HostFunction], name: str, args: List[Any]) -> bytes:
    """The answer to the worker's call of the host function ``name``."""
    function = host.get(name)
    if function is None:
        return _wire.host_returned(None, f"the host offers no function `{name}`")
    try:
        result = function(*args)
    except Exception as e:
        return _wire.host_returned(None, str(e) or type(e).__name__)
    try:
        return _wire.host_returned([result], None)
    except _wire.WireError as e:
        return _wire.host_returned(None, f"the host function `{name}` returned what cannot cross: {e}")

