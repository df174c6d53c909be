//! What a `wsandbox run` costs, each number against its baseline in the
//! same run (criterion; compare the ratios, not the times, on a shared
//! machine):
//!
//! - `cache/*`: a large guest (over 1 MB of wasm, generated here) run with
//!   a warm compilation cache, against the first run (`--no-cache`, which
//!   compiles as a first run does);
//! - `precompiled/*`: the same guest as an artifact of `wsandbox compile`,
//!   against the plain module;
//! - `timeout/*`: a compute-bound guest with `--timeout` against without:
//!   the outer wall enforces the deadline, so the guest runs
//!   uninstrumented.
//!
//! Run: `cargo bench --bench run` (builds the release profile).

use criterion::{Criterion, criterion_group, criterion_main};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `wsandbox ARGS...` with `cache` as `XDG_CACHE_HOME`; it must exit 0.
fn wsandbox(cache: &Path, args: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_wsandbox"))
        .env("XDG_CACHE_HOME", cache)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("run wsandbox");
    assert!(status.success(), "wsandbox {args:?}: {status}");
}

/// A core module of more than 1 MB: `functions` distinct arithmetic chains,
/// each called once from `_start`, the sum deciding the exit code (so none
/// is dead code). Generated as text, translated, checked for size and
/// written to `dir`.
fn large_guest(dir: &Path, functions: usize) -> PathBuf {
    use std::fmt::Write;
    let mut wat = String::from(
        "(module\n  (import \"wasi_snapshot_preview1\" \"proc_exit\" (func $exit (param i32)))\n  (memory (export \"memory\") 1)\n",
    );
    for f in 0..functions {
        writeln!(wat, "  (func $f{f} (param $x i64) (result i64)").unwrap();
        for step in 0..40 {
            let k = (f * 40 + step) as i64 * 2654435761 % 1_000_003;
            let op = ["i64.add", "i64.xor", "i64.mul", "i64.rotl"][step % 4];
            writeln!(wat, "    (local.set $x ({op} (local.get $x) (i64.const {k})))").unwrap();
        }
        wat.push_str("    (local.get $x))\n");
    }
    wat.push_str("  (func (export \"_start\") (local $sum i64)\n");
    for f in 0..functions {
        writeln!(
            wat,
            "    (local.set $sum (i64.add (local.get $sum) (call $f{f} (i64.const {f}))))"
        )
        .unwrap();
    }
    // Exit 0 unless the sum is zero (it is not).
    wat.push_str("    (call $exit (i64.eqz (local.get $sum)))))\n");
    let binary = wat::parse_str(&wat).expect("the generated module is valid");
    assert!(binary.len() > 1 << 20, "only {} bytes", binary.len());
    let path = dir.join("large.wasm");
    std::fs::write(&path, binary).unwrap();
    path
}

fn benchmarks(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let large = large_guest(dir.path(), 3000);
    let large = large.to_str().unwrap();
    let bytes = std::fs::metadata(large).unwrap().len();
    eprintln!("large guest: {bytes} bytes of wasm");

    let mut group = c.benchmark_group("cache");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    group.bench_function("first-run", |b| {
        b.iter(|| wsandbox(&cache, &["run", "--no-cache", large]))
    });
    wsandbox(&cache, &["run", large]);
    group.bench_function("warm-cache", |b| b.iter(|| wsandbox(&cache, &["run", large])));
    group.finish();

    let artifact = dir.path().join("large.cwasm");
    wsandbox(&cache, &["compile", large, "-o", artifact.to_str().unwrap()]);
    let mut group = c.benchmark_group("precompiled");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    group.bench_function("plain-module", |b| {
        b.iter(|| wsandbox(&cache, &["run", "--no-cache", large]))
    });
    group.bench_function("artifact", |b| {
        b.iter(|| {
            wsandbox(
                &cache,
                &["run", "--allow-precompiled", artifact.to_str().unwrap()],
            )
        })
    });
    group.finish();

    let compute = wsandbox_guests::wat("compute");
    let mut group = c.benchmark_group("timeout");
    group.sample_size(10).measurement_time(Duration::from_secs(15));
    group.bench_function("none", |b| b.iter(|| wsandbox(&cache, &["run", &compute])));
    group.bench_function("timeout-1m", |b| {
        b.iter(|| wsandbox(&cache, &["run", "--timeout", "1m", &compute]))
    });
    group.finish();
}

criterion_group!(benches, benchmarks);
criterion_main!(benches);
