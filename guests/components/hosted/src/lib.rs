//! The `hosted` test plugin: each export calls a function of its host's.

wit_bindgen::generate!({ world: "hosted", path: "wit" });

use wsandbox::hosted::host;

struct Hosted;

impl Guest for Hosted {
    fn via_host(e: Everything) -> Everything {
        host::mirror(&e)
    }

    fn checked(n: i32) -> Result<i32, String> {
        host::checked(n).map(|v| v.wrapping_add(1))
    }

    fn plain(n: u32) -> u32 {
        host::plain(n)
    }

    fn ticks(n: u32) -> u64 {
        (0..n).map(|_| host::tick()).last().unwrap_or(0)
    }

    fn clock() -> u64 {
        now()
    }
}

export!(Hosted);
