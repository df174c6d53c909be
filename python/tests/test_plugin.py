"""The Python host package: calls with every shape of value, handle,
host functions, each error as its exception, and no process left behind."""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

from wsandbox import (
    CallError,
    Err,
    Ok,
    OutOfFuel,
    Plugin,
    PluginError,
    ProtocolError,
    Refused,
    StartError,
    Timeout,
    Trapped,
    Variant,
    WorkerDied,
)

HOST = "wsandbox:hosted/host"

# Every test here starts workers: the wsandbox binary must be named.
pytestmark = pytest.mark.usefixtures("binary")


def descendants(pid: int) -> List[int]:
    """``pid``'s children, theirs, ... (from /proc)."""
    found: List[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            children = (task / "children").read_text().split() if (task / "children").exists() else []
            for child in map(int, children):
                found.append(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return ") Z " not in stat


def test_calls_take_and_give_every_shape_of_value(shapes: str) -> None:
    with Plugin(shapes, call_timeout=10.0) as plugin:
        assert plugin.call("greet", "wörld") == "Hello, wörld!"
        assert plugin.call("values.add", 2, -5) == -3
        assert plugin.call("values.add-wide", 2**64 - 1, 2) == 1
        assert plugin.call("values.scale", 0.1, 3) == pytest.approx(0.3)
        assert math.isnan(plugin.call("values.scale", float("nan"), 1.0))
        assert plugin.call("values.negate", False) is True
        assert plugin.call("values.norm", {"x": -3, "y": 4}) == {"x": 3, "y": 4}
        assert plugin.call("values.area", "empty") == 0.0
        assert plugin.call("values.area", Variant("rect", {"x": 2, "y": 3})) == 6.0
        assert plugin.call("values.area", {"circle": 1.0}) == pytest.approx(math.pi)
        assert plugin.call("values.next-color", "blue") == "red"
        assert plugin.call("values.allow", {"read"}, {"write", "exec"}) == {"read", "write", "exec"}
        assert plugin.call("values.increment", 1) == 2
        assert plugin.call("values.increment", None) is None
        assert plugin.call("values.divide", 6, 3) == Ok(2)
        assert plugin.call("values.divide", 1, 0) == Err("cannot divide 1 by 0")
        assert plugin.call("values.reverse", ["a", "b", ""]) == ["", "b", "a"]
        assert plugin.call("values.swap", (7, "x")) == ("x", 7)
        assert plugin.call("values.first-char", "é") == "é"
        assert plugin.call("values.first-char", "") is None
        assert plugin.call("values.bytes", 3) == b"\x00\x01\x02"
        # State lives between calls; a function of no result returns None.
        assert [plugin.call("counter") for _ in range(3)] == [1, 2, 3]
        names = [name for name, _ in plugin.exports()]
        assert "greet" in names and "wsandbox:shapes/values.add" in names


def test_a_call_that_does_not_fit_is_a_call_error_and_the_worker_lives_on(shapes: str) -> None:
    with Plugin(shapes) as plugin:
        plugin.start()
        pid = plugin.pid
        with pytest.raises(CallError, match="no exported function"):
            plugin.call("nope")
        with pytest.raises(CallError, match="argument `a`"):
            plugin.call("values.add", "two", 3)
        with pytest.raises(CallError, match="out of range"):
            plugin.call("values.add", 2**40, 3)
        with pytest.raises(CallError, match="2 wanted"):
            plugin.call("values.add", 1)
        with pytest.raises(PluginError, match="cannot cross"):
            plugin.call("greet", object())
        assert plugin.call("values.add", 1, 2) == 3
        assert plugin.pid == pid


def test_handle_gives_bytes_or_raises_the_plugins_refusal(words: str) -> None:
    with Plugin(words, call_timeout=10.0) as plugin:
        summary = json.loads(plugin.handle(b"the cat saw the dog"))
        assert summary["words"] == 5 and summary["top"][0] == ["the", 2]
        with pytest.raises(Refused) as refused:
            plugin.handle(b"\xff\xfe not utf-8")
        assert "not UTF-8" in refused.value.reason
        assert plugin.metadata()["name"] == "words"


def everything() -> Dict[str, Any]:
    return {
        "text": "héllo\0",
        "small": -7,
        "wide": 2**64 - 1,
        "real": -0.5,
        "single": 1.5,
        "yes": True,
        "letter": "ß",
        "at": {"x": -1, "y": 2},
        "form": Variant("rect", {"x": 3, "y": 4}),
        "hue": "green",
        "perms": {"read", "exec"},
        "maybe": 9,
        "outcome": Err("no"),
        "words": ["a", ""],
        "pair": (255, "p"),
        "data": b"\x00\x01\xff",
    }


def changed() -> Dict[str, Any]:
    return {
        "text": "HÉLLO",
        "small": -(2**31),
        "wide": 0,
        "real": float("inf"),
        "single": -0.0,
        "yes": False,
        "letter": "🦀",
        "at": {"x": 2**31 - 1, "y": 0},
        "form": Variant("circle", 2.0),
        "hue": "blue",
        "perms": set(),
        "maybe": None,
        "outcome": Ok(5),
        "words": [],
        "pair": (0, ""),
        "data": b"",
    }


def hosted_plugin(path: str, **overrides: Any) -> Plugin:
    ticks = {"n": 0}

    def tick() -> int:
        ticks["n"] += 1
        return ticks["n"]

    def checked(n: int) -> Any:
        if n < 0:
            raise ValueError(f"the host refuses {n}")
        return Ok(n * 2)

    def plain(n: int) -> int:
        if n == 0:
            raise ZeroDivisionError("the host cannot take 0")
        return n * 2

    seen: List[Any] = []

    def mirror(e: Dict[str, Any]) -> Dict[str, Any]:
        seen.append(e)
        return changed()

    functions = {
        f"{HOST}.mirror": mirror,
        f"{HOST}.checked": checked,
        f"{HOST}.plain": plain,
        f"{HOST}.tick": tick,
        "now": lambda: 42,
    }
    functions.update(overrides)
    plugin = Plugin(path, call_timeout=20.0, host_functions=functions)
    plugin.seen = seen  # type: ignore[attr-defined]
    return plugin


def test_host_functions_take_and_give_every_shape_of_value(hosted: str) -> None:
    with hosted_plugin(hosted) as plugin:
        assert plugin.call("via-host", everything()) == changed()
        (given,) = plugin.seen  # type: ignore[attr-defined]
        assert given == everything()
        assert plugin.call("clock") == 42


def test_a_host_functions_exception_is_an_error_value_or_a_trap(hosted: str) -> None:
    with hosted_plugin(hosted) as plugin:
        assert plugin.call("checked", 20) == Ok(41)
        assert plugin.call("checked", -1) == Err("the host refuses -1")
        with pytest.raises(Trapped, match="the host cannot take 0"):
            plugin.call("plain", 0)
        # A fresh worker answers the next call.
        assert plugin.call("plain", 21) == 42


def test_a_plugin_calls_its_host_again_and_again_within_one_call(hosted: str) -> None:
    with hosted_plugin(hosted) as plugin:
        assert plugin.call("ticks", 2000) == 2000
        assert plugin.call("ticks", 1) == 2001


def test_a_host_function_cannot_call_its_own_plugin(hosted: str) -> None:
    holder: Dict[str, Plugin] = {}

    def again(n: int) -> int:
        return holder["plugin"].call("plain", n)

    with hosted_plugin(hosted, **{f"{HOST}.plain": again}) as plugin:
        holder["plugin"] = plugin
        with pytest.raises(Trapped, match="cannot be called from its own host function"):
            plugin.call("plain", 1)


def test_a_plugin_importing_what_its_host_does_not_offer_is_refused(hosted: str) -> None:
    with Plugin(hosted, host_functions={f"{HOST}.mirror": lambda e: e}) as plugin:
        with pytest.raises(StartError) as refused:
            plugin.call("clock")
        message = str(refused.value)
        assert f"`{HOST}.tick`" in message and "`now`" in message and "does not offer" in message


def test_each_error_is_its_exception(shapes: str, tmp_path: Path) -> None:
    with Plugin(shapes, call_timeout=0.5) as plugin:
        with pytest.raises(Trapped, match="unreachable"):
            plugin.call("crash")
        assert plugin.call("counter") == 1, "a fresh worker after the trap"
        started = time.monotonic()
        with pytest.raises(Timeout):
            plugin.call("spin")
        assert time.monotonic() - started < 5
        assert plugin.call("counter") == 1
    # Fuel, from a policy given as a dict and as a file.
    with Plugin(shapes, {"fuel": 1_000_000}) as plugin:
        with pytest.raises(OutOfFuel, match="fuel"):
            plugin.call("spin")
    policy = tmp_path / "policy.toml"
    policy.write_text("fuel = 1000000\n")
    with Plugin(shapes, str(policy)) as plugin:
        with pytest.raises(OutOfFuel):
            plugin.call("spin")
    # A worker killed in the middle of a call.
    with Plugin(shapes, call_timeout=20.0) as plugin:
        plugin.start()
        pid = plugin.pid
        assert pid is not None
        threading.Timer(0.3, os.kill, (pid, signal.SIGKILL)).start()
        with pytest.raises(WorkerDied):
            plugin.call("spin")
        assert plugin.call("counter") == 1
    # A module that is not there, a policy that cannot be read.
    with pytest.raises(StartError, match="no such file"):
        Plugin(str(tmp_path / "missing.wasm")).call("greet", "x")
    with pytest.raises(StartError, match="unknown field"):
        Plugin(shapes, {"no_such_key": 1}).call("greet", "x")


def test_a_worker_of_another_protocol_is_refused(shapes: str, tmp_path: Path) -> None:
    fake = tmp_path / "old-wsandbox"
    fake.write_text(
        "#!/bin/bash\n"
        'while [ "$1" != --channel-fd ]; do shift; done\n'
        "printf '\\x00\\x00\\x00\\x18{\"hello\":{\"protocol\":2}}' >&\"$2\"\n"
        "sleep 1\n"
    )
    fake.chmod(0o755)
    with pytest.raises(ProtocolError, match="speaks protocol 2") as refused:
        Plugin(shapes, binary=str(fake)).start()
    assert refused.value.found == 2


def test_a_plugin_loads_from_bytes_named_by_its_hash(shapes: str) -> None:
    data = Path(shapes).read_bytes()
    with Plugin(data) as plugin:
        assert plugin.hash is not None and len(plugin.hash) == 64
        assert plugin.call("greet", "bytes") == "Hello, bytes!"
    garbage = Plugin(b"\xde\xad\xbe\xef")
    assert garbage.hash is not None
    with pytest.raises(StartError, match=f"sha256:{garbage.hash[:16]}: invalid module"):
        garbage.start()
    garbage.close()


def test_the_context_manager_leaves_no_process_behind(shapes: str) -> None:
    with Plugin(shapes) as plugin:
        plugin.start()
        pid = plugin.pid
        assert pid is not None
        family = [pid] + descendants(pid)
        assert len(family) >= 2, "the worker and its sandbox"
        assert all(alive(p) for p in family)
    deadline = time.monotonic() + 5
    while any(alive(p) for p in family) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(alive(p) for p in family), family
    # Closed in the middle of nothing, used again: a fresh worker.
    assert plugin.call("counter") == 1
    plugin.close()


def test_the_example_host_program_runs_the_words_plugin(words: str) -> None:
    import subprocess
    import sys

    example = Path(__file__).parent.parent / "examples" / "words_host.py"
    done = subprocess.run(
        [sys.executable, str(example), words],
        input=b"to be or not to be",
        capture_output=True,
        timeout=60,
    )
    stderr = done.stderr.decode()
    assert done.returncode == 0, stderr
    assert json.loads(done.stdout) == {"lines": 1, "words": 6, "top": [["be", 2], ["to", 2], ["not", 1]]}
    assert "words_host: words 1.0.0: counts the lines" in stderr
    assert "words_host: the plugin logs (info): '18 bytes, 6 words'" in stderr


def test_durations_in_messages_are_written_as_wsandbox_writes_them() -> None:
    from wsandbox._plugin import _duration_text

    assert [_duration_text(t) for t in (30.0, 1.5, 90, 120, 7200, 0.25, 0.0015)] == [
        "30s",
        "1500ms",
        "90s",
        "2m",
        "2h",
        "250ms",
        "1500us",
    ]
