//! Paths of wsandbox's guest programs, built by this crate's build script
//! for `wasm32-wasip1` (core modules, `*_P1`) and `wasm32-wasip2`
//! (components, `*_P2`).

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// The path of guest `name` built for WASI preview 1 (a core module).
pub fn p1(name: &str) -> &'static str {
    find(ALL_P1, name)
}

/// The path of guest `name` built for WASI preview 2 (a component).
pub fn p2(name: &str) -> &'static str {
    find(ALL_P2, name)
}

/// The path of the `.wat` guest `name` (without its extension).
pub fn wat(name: &str) -> String {
    let path = format!("{WAT_DIR}/{name}.wat");
    assert!(std::path::Path::new(&path).is_file(), "no guest {path}");
    path
}

fn find(all: &[(&str, &'static str)], name: &str) -> &'static str {
    all.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, path)| *path)
        .unwrap_or_else(|| panic!("no guest named {name:?} in guests/rust/src/bin"))
}
