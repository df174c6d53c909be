# Sourced by the benchmark scripts: from the repository's root, makes sure
# hyperfine and the wasm targets are there, builds wsandbox and the bare
# engines in release, and sets $ws, $bare, $bare_serve and $guests (the directory of the
# built Rust guests: $guests/wasm32-wasip1/release/NAME.wasm).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }
rustup target add wasm32-wasip1 wasm32-wasip2 >/dev/null
# The example pulls in the dev-dependency that builds the guests.
cargo build --release --quiet --bin wsandbox --example bare_run --example bare_serve
guests=$(ls -d target/release/build/wsandbox-guests-*/out | head -1)/target
ws=target/release/wsandbox
bare=target/release/examples/bare_run
bare_serve=target/release/examples/bare_serve
