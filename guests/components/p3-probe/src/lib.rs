//! `p3-probe`, the test guest of WASI 0.3: a command exporting
//! `wasi:cli/run@0.3.0` that does what its first argument says, through
//! the 0.3 interfaces (stdio and files as streams, async functions):
//!
//! - `hello`: "hello from wasi 0.3" on stdout;
//! - `args`, `env`: its arguments, its environment, a line each;
//! - `exit CODE`: exits with CODE (`exit-with-code`); `fail`: `run`
//!   returns `err`;
//! - file operations with the vocabulary and answers of the `fs` guest
//!   (`guests/rust/src/bin/fs.rs`), so that `tests/all/fs.rs` runs its
//!   attacks against a 0.3 guest too: `read PATH`, `write PATH TEXT`,
//!   `append PATH TEXT`, `ls DIR`, `mkdir`, `rm`, `rmdir`, `rename FROM TO`,
//!   `truncate PATH LEN`, `set-times PATH`, `symlink TARGET LINK`,
//!   `link FROM TO`, `readlink`, `exists`, `read-many PATH TIMES`; the
//!   result on stdout, or `error: CODE` on stderr and exit code 1;
//! - `fetch URL`: a GET through `wasi:http/client`: `fetched: STATUS`
//!   and the body on stdout, or `refused: CODE` and exit code 1;
//! - `stdin`: stdin to stdout, upper-cased;
//! - `clock`, `random`: that the clocks move and 16 random bytes differ;
//! - `grow MIB`: allocates MIB mebibytes; `spin`: never returns; `trap`.
//!
//! A path is taken in the preopened directory of the longest guest path
//! that holds it (`/data/a.txt` in `/data`), as wasi-libc does.

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
use bindings::wasi::cli::{environment, exit, stderr, stdin, stdout};
use bindings::wasi::clocks::{monotonic_clock, system_clock};
use bindings::wasi::filesystem::preopens;
use bindings::wasi::filesystem::types::{
    Descriptor, DescriptorFlags, ErrorCode, NewTimestamp, OpenFlags, PathFlags,
};
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
            "read" | "write" | "append" | "ls" | "mkdir" | "rm" | "rmdir" | "rename" | "truncate"
            | "set-times" | "symlink" | "link" | "readlink" | "exists" | "read-many" => {
                let words: Vec<&str> = (1..args.len()).map(word).collect();
                match file_op(&words).await {
                    Ok(bytes) => out(bytes).await,
                    Err(code) => {
                        err(format!("error: {code:?}\n").into_bytes()).await;
                        exit::exit(Err(()));
                    }
                }
            }
            "fetch" => match fetch(word(2)).await {
                Ok((status, body)) => {
                    let mut text = format!("fetched: {status}\n").into_bytes();
                    text.extend(body);
                    out(text).await
                }
                Err(code) => {
                    out(format!("refused: {code:?}\n").into_bytes()).await;
                    exit::exit(Err(()));
                }
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

// `fetch`, shared with `p3-http`.
include!("../../p3-wit/fetch.rs");

/// One operation on files, as the `fs` guest names it: its answer.
async fn file_op(words: &[&str]) -> Result<Vec<u8>, ErrorCode> {
    let ok = |()| b"ok\n".to_vec();
    match words {
        ["read", path] => read(path).await,
        ["write", path, text] => {
            let file = open(path, DescriptorFlags::WRITE, OpenFlags::CREATE | OpenFlags::TRUNCATE).await?;
            let (tx, rx) = bindings::wit_stream::new();
            let written = file.write_via_stream(rx, 0);
            feed(tx, text.as_bytes().to_vec(), written).await.map(ok)
        }
        ["append", path, text] => {
            let file = open(path, DescriptorFlags::WRITE, OpenFlags::empty()).await?;
            let (tx, rx) = bindings::wit_stream::new();
            let written = file.append_via_stream(rx);
            feed(tx, text.as_bytes().to_vec(), written).await.map(ok)
        }
        ["ls", path] => {
            let dir = open(path, DescriptorFlags::READ, OpenFlags::DIRECTORY).await?;
            let (mut entries, done) = dir.read_directory();
            let mut names = Vec::new();
            while let Some(entry) = entries.next().await {
                names.push(entry.name);
            }
            drop(entries);
            done.await?;
            names.sort();
            Ok(lines(names.into_iter()))
        }
        ["mkdir", path] => {
            let (dir, rest) = resolve(path)?;
            dir.create_directory_at(rest).await.map(ok)
        }
        ["rm", path] => {
            let (dir, rest) = resolve(path)?;
            dir.unlink_file_at(rest).await.map(ok)
        }
        ["rmdir", path] => {
            let (dir, rest) = resolve(path)?;
            dir.remove_directory_at(rest).await.map(ok)
        }
        ["rename", from, to] => {
            let ((from_dir, from), (to_dir, to)) = (resolve(from)?, resolve(to)?);
            from_dir.rename_at(from, &to_dir, to).await.map(ok)
        }
        ["truncate", path, len] => {
            let file = open(path, DescriptorFlags::WRITE, OpenFlags::empty()).await?;
            file.set_size(len.parse().unwrap_or(0)).await.map(ok)
        }
        ["set-times", path] => {
            let file = open(path, DescriptorFlags::READ, OpenFlags::empty()).await?;
            let epoch = system_clock::Instant { seconds: 0, nanoseconds: 0 };
            file.set_times(NewTimestamp::NoChange, NewTimestamp::Timestamp(epoch))
                .await
                .map(ok)
        }
        ["symlink", target, link] => {
            let (dir, rest) = resolve(link)?;
            dir.symlink_at(target.to_string(), rest).await.map(ok)
        }
        ["link", from, to] => {
            let ((from_dir, from), (to_dir, to)) = (resolve(from)?, resolve(to)?);
            from_dir.link_at(PathFlags::empty(), from, &to_dir, to).await.map(ok)
        }
        ["readlink", path] => {
            let (dir, rest) = resolve(path)?;
            dir.readlink_at(rest).await.map(|target| format!("{target}\n").into_bytes())
        }
        ["exists", path] => {
            let found = match resolve(path) {
                Ok((dir, rest)) => dir.stat_at(PathFlags::SYMLINK_FOLLOW, rest).await.is_ok(),
                Err(_) => false,
            };
            Ok(format!("{found}\n").into_bytes())
        }
        // Reads `path` `times` times; one line per attempt: its contents,
        // or `error: CODE` (for races against a host that swaps links).
        ["read-many", path, times] => {
            let mut all = Vec::new();
            for _ in 0..times.parse().unwrap_or(0) {
                match read(path).await {
                    Ok(text) => all.extend(text),
                    Err(code) => all.extend(format!("error: {code:?}").into_bytes()),
                }
                all.push(b'\n');
            }
            Ok(all)
        }
        _ => Err(ErrorCode::Invalid),
    }
}

/// The whole of the file at `path`, read through a stream.
async fn read(path: &str) -> Result<Vec<u8>, ErrorCode> {
    let file = open(path, DescriptorFlags::READ, OpenFlags::empty()).await?;
    let (rx, done) = file.read_via_stream(0);
    let all = rx.collect().await;
    done.await?;
    Ok(all)
}

/// Writes `bytes` through `tx` while the file's side (`written`) takes
/// them: its end says whether all were written.
async fn feed(
    mut tx: wit_bindgen::StreamWriter<u8>,
    bytes: Vec<u8>,
    written: wit_bindgen::FutureReader<Result<(), ErrorCode>>,
) -> Result<(), ErrorCode> {
    let (written, ()) = futures::join!(async { written.await }, async move {
        let _ = tx.write_all(bytes).await;
        drop(tx);
    });
    written
}

/// Writes `bytes` to stdout through a stream.
async fn out(bytes: Vec<u8>) {
    let (tx, rx) = bindings::wit_stream::new();
    let _ = futures::join!(async { stdout::write_via_stream(rx).await }, async move {
        let mut tx = tx;
        let _ = tx.write_all(bytes).await;
    });
}

/// Writes `bytes` to stderr through a stream.
async fn err(bytes: Vec<u8>) {
    let (tx, rx) = bindings::wit_stream::new();
    let _ = futures::join!(async { stderr::write_via_stream(rx).await }, async move {
        let mut tx = tx;
        let _ = tx.write_all(bytes).await;
    });
}

fn lines(items: impl Iterator<Item = String>) -> Vec<u8> {
    items.map(|item| item + "\n").collect::<String>().into_bytes()
}

/// The preopened directory that holds `path` (the one of the longest guest
/// path that is `path` or a parent of it), and the rest of `path` in it.
fn resolve(path: &str) -> Result<(Descriptor, String), ErrorCode> {
    let mut best: Option<(Descriptor, String)> = None;
    for (dir, guest) in preopens::get_directories() {
        let prefix = guest.trim_end_matches('/');
        let Some(rest) = path.strip_prefix(prefix) else {
            continue;
        };
        if !(rest.is_empty() || rest.starts_with('/') || prefix.is_empty()) {
            continue;
        }
        if best.as_ref().is_none_or(|(_, longest)| prefix.len() > longest.len()) {
            best = Some((dir, prefix.to_string()));
        }
    }
    let (dir, prefix) = best.ok_or(ErrorCode::NoEntry)?;
    let rest = path[prefix.len()..].trim_start_matches('/');
    Ok((dir, if rest.is_empty() { ".".into() } else { rest.into() }))
}

/// Opens `path` in the preopened directory that holds it.
async fn open(path: &str, flags: DescriptorFlags, open: OpenFlags) -> Result<Descriptor, ErrorCode> {
    let (dir, rest) = resolve(path)?;
    dir.open_at(PathFlags::SYMLINK_FOLLOW, rest, open, flags).await
}
