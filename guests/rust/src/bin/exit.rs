//! Ends the way its first argument says: `exit N` exits with status N,
//! `panic` panics (a trap for the host), `ok` returns normally.

fn main() {
    let how = std::env::args().nth(1).unwrap_or_default();
    match how.as_str() {
        "ok" | "" => {}
        "panic" => panic!("the guest panicked on purpose"),
        n => {
            let code: i32 = n.parse().expect("exit: argument is not a number");
            std::process::exit(code);
        }
    }
}
