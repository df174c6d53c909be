//! Filesystem probe: performs one operation named on the command line and
//! reports the result, so tests can drive every file operation a guest has,
//! and every attempt to leave a preopened directory, one at a time.
//!
//! On success it prints the result on stdout and exits 0; on failure it
//! prints `error: <kind>: <message>` on stderr and exits 1.

use std::fs;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match run(&args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {:?}: {e}", e.kind());
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[&str]) -> std::io::Result<String> {
    let ok = |()| String::from("ok\n");
    match args {
        ["read", path] => fs::read_to_string(path),
        ["write", path, content] => fs::write(path, content).map(ok),
        ["append", path, content] => fs::OpenOptions::new()
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(content.as_bytes()))
            .map(ok),
        ["ls", path] => {
            let mut names = fs::read_dir(path)?
                .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect::<Result<Vec<_>, _>>()?;
            names.sort();
            Ok(names.iter().map(|n| format!("{n}\n")).collect())
        }
        ["mkdir", path] => fs::create_dir(path).map(ok),
        ["rm", path] => fs::remove_file(path).map(ok),
        ["rmdir", path] => fs::remove_dir(path).map(ok),
        ["rename", from, to] => fs::rename(from, to).map(ok),
        ["truncate", path, len] => fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(len.parse().unwrap_or(0)))
            .map(ok),
        ["set-times", path] => fs::File::open(path)
            .and_then(|f| f.set_modified(std::time::SystemTime::UNIX_EPOCH))
            .map(ok),
        ["symlink", target, link] => symlink(target, link).map(ok),
        ["link", from, to] => fs::hard_link(from, to).map(ok),
        ["readlink", path] => fs::read_link(path).map(|p| format!("{}\n", p.display())),
        ["exists", path] => Ok(format!("{}\n", fs::metadata(path).is_ok())),
        // Reads `path` `times` times; one line per attempt: its contents,
        // or `error: <kind>` (for races against a host that swaps links).
        ["read-many", path, times] => Ok((0..times.parse().unwrap_or(0))
            .map(|_| match fs::read_to_string(path) {
                Ok(text) => format!("{text}\n"),
                Err(e) => format!("error: {:?}\n", e.kind()),
            })
            .collect()),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "usage: fs read|write|append|ls|mkdir|rm|rmdir|rename|truncate|set-times|symlink|link|readlink|exists|read-many ARGS",
        )),
    }
}

/// `symlink(2)` through wasi-libc, which both targets link: std's WASI
/// symlink helper is still unstable.
fn symlink(target: &str, link: &str) -> std::io::Result<()> {
    use std::ffi::{CString, c_char, c_int};
    unsafe extern "C" {
        fn symlink(target: *const c_char, link: *const c_char) -> c_int;
    }
    let target = CString::new(target)?;
    let link = CString::new(link)?;
    // SAFETY: both pointers are valid NUL-terminated strings for the call.
    if unsafe { symlink(target.as_ptr(), link.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
