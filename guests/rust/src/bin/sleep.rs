//! Says `sleeping` on stdout, then sleeps for its first argument in
//! seconds (default 30): a guest that stays alive while tests look at the
//! sandbox from outside.

use std::io::Write;

fn main() {
    let secs: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(30.0);
    println!("sleeping");
    std::io::stdout().flush().expect("flush stdout");
    std::thread::sleep(std::time::Duration::from_secs_f64(secs));
    println!("awake");
}
