//! What a plugin call costs through its sandboxed worker (criterion;
//! compare the ratios, not the times, on a shared machine):
//!
//! - `worker`: `values.add(1, 2)` through a [`Plugin`] — a round trip over
//!   the socket to a worker behind both walls;
//! - `in-process`: the same call on the same engine in this process, with
//!   no worker and no wall (what embedding wasmtime directly costs);
//! - `pipe`: 64 bytes there and back over a socket pair to an echoing
//!   thread, the physical floor of any out-of-process call;
//! - `host-function`: `plain(1)` of the `hosted` plugin, which calls a
//!   function of this process's once: two round trips (compare with twice
//!   `pipe`);
//! - `pool-2x2`: `values.add(1, 2)` from 2 threads at once through a
//!   `PluginPool` of 2 workers, the time per call (compare with `worker`:
//!   below it, the two workers answer in parallel).
//!
//! Run: `cargo bench --bench plugin`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use wsandbox::Policy;
use wsandbox::engine::{self, CodeCache, Module};
use wsandbox::plugin::{Plugin, PluginPool, Val};

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

    let host = |name: &str| format!("wsandbox:hosted/host.{name}");
    let mut hosted = Plugin::new(wsandbox_guests::HOSTED, Policy::default())
        .binary(env!("CARGO_BIN_EXE_wsandbox"))
        .host_fn(host("plain"), |args| match args {
            [Val::U32(n)] => Ok(vec![Val::U32(n * 2)]),
            _ => Err("not a u32".into()),
        })
        .host_fn(host("mirror"), |args| Ok(args.to_vec()))
        .host_fn(host("checked"), |args| Ok(args.to_vec()))
        .host_fn(host("tick"), |_| Ok(vec![Val::U64(0)]))
        .host_fn("now", |_| Ok(vec![Val::U64(0)]));
    let one = [Val::U32(1)];
    assert_eq!(hosted.call("plain", &one).unwrap(), [Val::U32(2)]);
    group.bench_function("host-function", |b| {
        b.iter(|| hosted.call("plain", &one).unwrap())
    });

    let pool = PluginPool::new(
        Plugin::new(wsandbox_guests::SHAPES, Policy::default()).binary(env!("CARGO_BIN_EXE_wsandbox")),
        2,
    );
    pool.start().unwrap();
    group.bench_function("pool-2x2", |b| {
        b.iter_custom(|iters| {
            let started = std::time::Instant::now();
            std::thread::scope(|threads| {
                for _ in 0..2 {
                    threads.spawn(|| {
                        for _ in 0..iters.div_ceil(2) {
                            pool.call("values.add", &args).unwrap();
                        }
                    });
                }
            });
            started.elapsed()
        })
    });
    group.finish();
    drop(ours);
    echo.join().unwrap();
}

criterion_group!(benches, benchmarks);
criterion_main!(benches);
