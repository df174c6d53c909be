//! `p3-calls`: a component of the component model's async with no entry
//! point, only `wsandbox:p3/calls` to call one function at a time
//! (`wsandbox call`): async functions (`add`, `wait`, `lines`, `boom`, a
//! trap) and a plain one (`shout`). `lines` reads a file of the first
//! preopened directory (`/data/a.txt` in `/data`).

mod bindings {
    wit_bindgen::generate!({
        world: "library",
        path: "../p3-wit",
        // As wasi-testsuite's own 0.3 tests (wasm-tools issue 2285).
        features: ["clocks-timezone"],
        generate_all,
    });
}

use bindings::exports::wsandbox::p3::calls::Guest;
use bindings::wasi::clocks::monotonic_clock;
use bindings::wasi::filesystem::preopens;
use bindings::wasi::filesystem::types::{DescriptorFlags, OpenFlags, PathFlags};

struct Calls;

bindings::export!(Calls with_types_in bindings);

impl Guest for Calls {
    async fn add(a: u32, b: u32) -> u32 {
        monotonic_clock::wait_for(1_000_000).await;
        a.wrapping_add(b)
    }

    async fn wait(ms: u64) -> String {
        monotonic_clock::wait_for(ms * 1_000_000).await;
        format!("waited {ms} ms")
    }

    async fn lines(path: String) -> Result<Vec<String>, String> {
        let (dir, guest) = preopens::get_directories()
            .into_iter()
            .next()
            .ok_or("no directory granted")?;
        let name = path
            .strip_prefix(guest.trim_end_matches('/'))
            .ok_or(format!("{path} is not in {guest}"))?
            .trim_start_matches('/')
            .to_string();
        let file = dir
            .open_at(PathFlags::empty(), name, OpenFlags::empty(), DescriptorFlags::READ)
            .await
            .map_err(|code| format!("{code:?}"))?;
        let (contents, done) = file.read_via_stream(0);
        let bytes = contents.collect().await;
        done.await.map_err(|code| format!("{code:?}"))?;
        Ok(String::from_utf8_lossy(&bytes).lines().map(str::to_owned).collect())
    }

    async fn boom() {
        core::arch::wasm32::unreachable()
    }

    fn shout(s: String) -> String {
        s.to_uppercase()
    }
}
