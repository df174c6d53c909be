//! Builds the guest programs in `guests/rust` for both WASI targets, and
//! the components with exports of their own in `guests/components` for
//! `wasm32-wasip2`, and writes their paths into `guests.rs`, so tests and
//! benchmarks name a guest by a constant (`HELLO_P1`, `HELLO_P2`,
//! `SHAPES`, ...) and never build one by hand.
//!
//! Only wsandbox's tests and benchmarks depend on this crate, so a plain
//! `cargo build` of wsandbox never needs the wasm targets.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The targets every guest is built for, with the suffix of its constant.
const TARGETS: [(&str, &str); 2] = [("wasm32-wasip1", "P1"), ("wasm32-wasip2", "P2")];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let guests = manifest_dir.parent().unwrap().to_path_buf();
    let rust = guests.join("rust");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let target_dir = out_dir.join("target");

    println!("cargo:rerun-if-changed={}", rust.join("src").display());
    println!("cargo:rerun-if-changed={}", rust.join("Cargo.toml").display());
    println!("cargo:rerun-if-changed={}", guests.join("wat").display());
    let components = guests.join("components");
    println!("cargo:rerun-if-changed={}", components.display());
    println!("cargo:rerun-if-changed={}", guests.parent().unwrap().join("wit").display());

    let bins = rust_bins(&rust.join("src/bin"));
    let mut consts = String::new();
    for (target, suffix) in TARGETS {
        build(&rust, &target_dir, target);
        let mut table = String::new();
        for bin in &bins {
            let path = target_dir.join(target).join("release").join(format!("{bin}.wasm"));
            assert!(path.is_file(), "guest {bin} was not built for {target}");
            let name = format!("{}_{suffix}", bin.to_uppercase().replace('-', "_"));
            writeln!(consts, "/// `guests/rust/src/bin/{bin}.rs` built for `{target}`.").unwrap();
            writeln!(consts, "pub const {name}: &str = {:?};", path.display().to_string()).unwrap();
            writeln!(table, "    ({bin:?}, {name}),").unwrap();
        }
        writeln!(consts, "/// Every guest built for `{target}`, by name.").unwrap();
        writeln!(consts, "pub const ALL_{suffix}: &[(&str, &str)] = &[\n{table}];").unwrap();
    }
    build(&components, &target_dir, "wasm32-wasip2");
    for (name, what) in [
        ("shapes", "the test component for typed calls"),
        ("hosted", "the test plugin that calls its host's functions"),
        ("p3_probe", "the test command of WASI 0.3 (`guests/components/p3-probe`)"),
        ("p3_http", "the test service of WASI 0.3 (`guests/components/p3-http`)"),
        ("p3_calls", "async functions to call, with no entry point (`guests/components/p3-calls`)"),
        ("words", "the example plugin"),
        ("probe_http", "the test component of `serve` (`guests/components/probe-http`)"),
        ("api", "the example function, a JSON API for `serve`"),
        ("fetch", "a command that GETs URLs over `wasi:http` (`guests/components/fetch`)"),
        ("fetch_plugin", "a plugin that GETs the URL it is given (`guests/components/fetch-plugin`)"),
    ] {
        let path = target_dir.join("wasm32-wasip2/release").join(format!("{name}.wasm"));
        assert!(path.is_file(), "component {name} was not built");
        writeln!(consts, "/// `{name}.wasm` from `guests/components`, {what}.").unwrap();
        writeln!(consts, "pub const {}: &str = {:?};", name.to_uppercase(), path.display().to_string()).unwrap();
    }
    writeln!(consts, "/// The folder of the `.wat` guests.").unwrap();
    writeln!(consts, "pub const WAT_DIR: &str = {:?};", guests.join("wat").display().to_string()).unwrap();
    std::fs::write(out_dir.join("guests.rs"), consts).unwrap();
}

/// The names of the guest binaries: one `src/bin/NAME.rs` each.
fn rust_bins(dir: &Path) -> Vec<String> {
    let mut bins: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    bins.sort();
    bins
}

/// Builds the release profile of the Cargo project at `project` for `target`.
fn build(project: &Path, target_dir: &Path, target: &str) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--quiet")
        .arg("--target")
        .arg(target)
        .arg("--manifest-path")
        .arg(project.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    // The outer build's flags and wrappers (clippy's, for one) are not meant
    // for the guests.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("running cargo to build the guests");
    assert!(
        status.success(),
        "building the guests for {target} failed; is the target installed? \
         (rustup target add wasm32-wasip1 wasm32-wasip2)"
    );
}
