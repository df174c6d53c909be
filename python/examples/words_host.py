"""A Python host program with a plugin: it loads the ``words`` plugin
(``guests/components/words``) into a sandboxed worker, says what the plugin
is, hands it stdin and prints its output. It takes the plugin world's
``log`` over with a host function of its own.

    pip install ./python
    cargo build --release
    WSANDBOX_BIN=target/release/wsandbox python3 python/examples/words_host.py \\
        guests/components/target/wasm32-wasip2/release/words.wasm < README.md
"""

import sys

from wsandbox import Plugin, PluginError, Refused


def log(level: str, message: str) -> None:
    """The plugin world's ``log(level, message)``, as this program logs."""
    print(f"words_host: the plugin logs ({level}): {message!r}", file=sys.stderr)


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: words_host.py PLUGIN.wasm < INPUT", file=sys.stderr)
        return 2
    host_functions = {"wsandbox:plugin/host@0.1.0.log": log}
    try:
        with Plugin(sys.argv[1], {"timeout": "60s"}, call_timeout=10.0, host_functions=host_functions) as words:
            about = words.metadata()
            print(f"words_host: {about['name']} {about['version']}: {about['description']}", file=sys.stderr)
            output = words.handle(sys.stdin.buffer.read())
    except Refused as refusal:
        print(f"words_host: the plugin refused the input: {refusal.reason}", file=sys.stderr)
        return 1
    except PluginError as err:
        print(f"words_host: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(output.decode("utf-8") + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
