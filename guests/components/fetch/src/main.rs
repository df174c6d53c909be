//! `fetch URL...`: a WASI command that GETs each URL over `wasi:http` and
//! prints `STATUS BODY` (or `error: WHY`, and exits 1 at the end).
//! `fetch --times N URL` asks N times and prints how many answers and
//! errors came; `--times forever` never stops. For wsandbox's tests of
//! outgoing requests through the broker.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, times, url] = args.as_slice()
        && flag == "--times"
    {
        let times: u64 = if times == "forever" { u64::MAX } else { times.parse().expect("--times N") };
        let (mut answered, mut errors) = (0u64, 0u64);
        let mut last = String::new();
        for _ in 0..times {
            match get::get(url) {
                Ok(_) => answered += 1,
                Err(err) => {
                    errors += 1;
                    last = err;
                }
            }
        }
        println!("{answered} answered, {errors} errors {last}");
        return;
    }
    let mut failed = false;
    for url in &args {
        match get::get(url) {
            Ok((status, body)) => println!("{status} {}", String::from_utf8_lossy(&body)),
            Err(err) => {
                println!("error: {err}");
                failed = true;
            }
        }
    }
    std::process::exit(i32::from(failed));
}
