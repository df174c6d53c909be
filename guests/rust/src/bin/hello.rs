//! Prints a greeting, then its arguments and its environment, one per line,
//! so tests can check exactly what reached the guest.

fn main() {
    println!("hello from a wasm guest");
    for (i, arg) in std::env::args().enumerate() {
        println!("arg[{i}]={arg}");
    }
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    vars.sort();
    for (name, value) in vars {
        println!("env {name}={value}");
    }
}
