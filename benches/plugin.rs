//! What a plugin call costs through its sandboxed worker (criterion;
//! compare the ratios, not the times, on a shared machine):
//!
//! - `worker`: `values.add(1, 2)` through a [`Plugin`] — a round trip over
//!   the socket to a worker behind both walls;
//! - `in-process`: the same call on the same engine in this process, with
//!   no worker and no wall (what embedding wasmtime directly costs);
//! - `pipe`: 64 bytes there and back over a socket pair to an echoing
//!   thread, the physical floor of any out-of-process call.
//!
//! Run: `cargo bench --bench plugin`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use wsandbox::Policy;
use wsandbox::engine::{self, CodeCache, Module};
use wsandbox::plugin::{Plugin, Val};

fn benchmarks(c: &mut Criterion) {
    let args = [Val::S32(1), Val::S32(2)];
    let mut group = c.benchmark_group("plugin-call");

    let mut plugin =
        Plugin::new(wsandbox_guests::SHAPES, Policy::default()).binary(env!("CARGO_BIN_EXE_wsandbox"));
    assert_eq!(plugin.call("values.add", &args).unwrap(), [Val::S32(3)]);
    group.bench_function("worker", |b| b.iter(|| plugin.call("values.add", &args).unwrap()));

    let policy = Policy::default();
    let module = Module::load(std::path::Path::new(wsandbox_guests::SHAPES)).unwrap();
    let program = engine::load(&policy, &module, CodeCache::default()).unwrap();
    let mut live = program.instantiate(&policy).unwrap();
    assert_eq!(live.call("values.add", &args).unwrap(), [Val::S32(3)]);
    group.bench_function("in-process", |b| {
        b.iter(|| live.call("values.add", &args).unwrap())
    });

    let (mut ours, mut theirs) = UnixStream::pair().unwrap();
    let echo = std::thread::spawn(move || {
        let mut buffer = [0u8; 64];
        while theirs.read_exact(&mut buffer).is_ok() {
            if theirs.write_all(&buffer).is_err() {
                break;
            }
        }
    });
    let mut buffer = [7u8; 64];
    group.bench_function("pipe", |b| {
        b.iter(|| {
            ours.write_all(&buffer).unwrap();
            ours.read_exact(&mut buffer).unwrap();
        })
    });
    group.finish();
    drop(ours);
    echo.join().unwrap();
}

criterion_group!(benches, benchmarks);
criterion_main!(benches);
