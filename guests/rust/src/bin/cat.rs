//! Copies stdin to stdout in fixed-size chunks, then reports the byte count
//! on stderr: a pipe of any size must stream through the sandbox.

use std::io::{Read, Write};

fn main() {
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total: u64 = 0;
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("cat: read: {e}");
                std::process::exit(1);
            }
        };
        if let Err(e) = stdout.write_all(&buf[..n]) {
            eprintln!("cat: write: {e}");
            std::process::exit(1);
        }
        total += n as u64;
    }
    stdout.flush().expect("flush stdout");
    eprintln!("cat: {total} bytes");
}
