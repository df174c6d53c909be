//! `p3-probe`, the test guest of WASI 0.3: a command exporting
//! `wasi:cli/run@0.3.0` that does what its first argument says, through
//! the 0.3 interfaces (stdio and files as streams, async functions):
//!
//! - `hello`: "hello from wasi 0.3" on stdout;
//! - `args`, `env`: its arguments, its environment, a line each;
//! - `exit CODE`: exits with CODE (`exit-with-code`); `fail`: `run`
//!   returns `err`;
//! - `cat PATH`: the file's bytes on stdout; `write PATH TEXT`: creates or
//!   truncates it with TEXT; `ls DIR`: the names in it;
//! - `open PATH`: opens it for reading and says `ok` or the error code;
//! - `stdin`: stdin to stdout, upper-cased;
//! - `clock`, `random`: that the clocks move and 16 random bytes differ;
//! - `grow MIB`: allocates MIB mebibytes; `spin`: never returns; `trap`.
//!
//! Paths are taken in the first preopened directory whose guest path is a
//! prefix of them (`/data/a.txt` in `/data`).

mod bindings {
    wit_bindgen::generate!({
        world: "probe",
        path: "../p3-wit",
        // As wasi-testsuite's own 0.3 tests (wasm-tools issue 2285).
        features: ["clocks-timezone"],
        generate_all,
    });
}

use bindings::exports::wasi::cli::run::Guest;
use bindings::wasi::cli::{environment, exit, stdin, stdout};
use bindings::wasi::clocks::{monotonic_clock, system_clock};
use bindings::wasi::filesystem::preopens;
use bindings::wasi::filesystem::types::{Descriptor, DescriptorFlags, ErrorCode, OpenFlags, PathFlags};
use bindings::wasi::random::random;

struct Probe;

bindings::export!(Probe with_types_in bindings);

impl Guest for Probe {
    async fn run() -> Result<(), ()> {
        let args = environment::get_arguments();
        let word = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
        match word(1) {
            "hello" => out(b"hello from wasi 0.3\n".to_vec()).await,
            "args" => out(lines(args.iter().skip(1).cloned())).await,
            "env" => {
                let vars = environment::get_environment().into_iter().map(|(k, v)| format!("{k}={v}"));
                out(lines(vars)).await
            }
            "exit" => exit::exit_with_code(word(2).parse().unwrap_or(99)),
            "fail" => return Err(()),
            "cat" => match open(word(2), DescriptorFlags::READ, OpenFlags::empty()).await {
                Ok(file) => out(read_all(&file).await).await,
                Err(code) => fail(code).await,
            },
            "write" => {
                let opened = open(word(2), DescriptorFlags::WRITE, OpenFlags::CREATE | OpenFlags::TRUNCATE).await;
                match opened {
                    Ok(file) => match write_all(&file, word(3).as_bytes().to_vec()).await {
                        Ok(()) => out(b"written\n".to_vec()).await,
                        Err(code) => fail(code).await,
                    },
                    Err(code) => fail(code).await,
                }
            }
            "ls" => match open(word(2), DescriptorFlags::READ, OpenFlags::DIRECTORY).await {
                Ok(dir) => {
                    let (mut entries, done) = dir.read_directory();
                    let mut names = Vec::new();
                    while let Some(entry) = entries.next().await {
                        names.push(entry.name);
                    }
                    drop(entries);
                    let _ = done.await;
                    names.sort();
                    out(lines(names.into_iter())).await
                }
                Err(code) => fail(code).await,
            },
            "open" => match open(word(2), DescriptorFlags::READ, OpenFlags::empty()).await {
                Ok(_) => out(b"ok\n".to_vec()).await,
                Err(code) => out(format!("{code:?}\n").into_bytes()).await,
            },
            "stdin" => {
                let (input, done) = stdin::read_via_stream();
                let all = input.collect().await;
                let _ = done.await;
                out(all.to_ascii_uppercase()).await
            }
            "clock" => {
                let (first, wall) = (monotonic_clock::now(), system_clock::now());
                let second = monotonic_clock::now();
                let moved = second >= first && wall.seconds > 1_600_000_000;
                out(format!("clock moves: {moved}\n").into_bytes()).await
            }
            "random" => {
                let (a, b) = (random::get_random_bytes(16), random::get_random_bytes(16));
                out(format!("random differs: {}\n", a.len() == 16 && a != b).into_bytes()).await
            }
            "grow" => {
                let mib: usize = word(2).parse().unwrap_or(1);
                let block = vec![1u8; mib << 20];
                out(format!("grew {} MiB\n", block.len() >> 20).into_bytes()).await
            }
            #[allow(clippy::empty_loop)]
            "spin" => loop {
                std::hint::black_box(());
            },
            "trap" => core::arch::wasm32::unreachable(),
            other => {
                out(format!("p3-probe: unknown command {other:?}\n").into_bytes()).await;
                return Err(());
            }
        }
        Ok(())
    }
}

/// Writes `bytes` to stdout through a stream.
async fn out(bytes: Vec<u8>) {
    let (mut tx, rx) = bindings::wit_stream::new();
    futures::join!(
        async {
            let _ = stdout::write_via_stream(rx).await;
        },
        async {
            let _ = tx.write_all(bytes).await;
            drop(tx);
        }
    );
}

/// Says why a file operation failed on stdout and exits 1.
async fn fail(code: ErrorCode) {
    out(format!("error: {code:?}\n").into_bytes()).await;
    exit::exit(Err(()));
}

fn lines(items: impl Iterator<Item = String>) -> Vec<u8> {
    items.map(|item| item + "\n").collect::<String>().into_bytes()
}

/// Opens `path` in the preopened directory that holds it.
async fn open(path: &str, flags: DescriptorFlags, open: OpenFlags) -> Result<Descriptor, ErrorCode> {
    for (dir, guest) in preopens::get_directories() {
        let prefix = guest.trim_end_matches('/');
        let Some(rest) = path.strip_prefix(prefix) else {
            continue;
        };
        let rest = rest.trim_start_matches('/');
        let rest = if rest.is_empty() { "." } else { rest };
        return dir.open_at(PathFlags::empty(), rest.to_string(), open, flags).await;
    }
    Err(ErrorCode::NoEntry)
}

/// The whole of a file, read through a stream.
async fn read_all(file: &Descriptor) -> Vec<u8> {
    let (rx, done) = file.read_via_stream(0);
    let all = rx.collect().await;
    let _ = done.await;
    all
}

async fn write_all(file: &Descriptor, bytes: Vec<u8>) -> Result<(), ErrorCode> {
    let (mut tx, rx) = bindings::wit_stream::new();
    let written = file.write_via_stream(rx, 0);
    let (written, ()) = futures::join!(async { written.await }, async {
        let _ = tx.write_all(bytes).await;
        drop(tx);
    });
    written
}
