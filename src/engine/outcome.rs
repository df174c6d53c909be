//! How a guest's run ended (`launch::outcome_code` maps each ending to
//! an exit code).

/// The end of a guest's run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The guest exited with this status (`proc_exit`, `wasi:cli/exit`, or
    /// returning from its entry point, which is 0).
    Exited(i32),
    /// The guest trapped.
    Trapped {
        /// What trapped, in one line.
        message: String,
        /// The wasm backtrace, one frame a line, when there is one.
        backtrace: Option<String>,
    },
    /// The guest burnt all the fuel it was given (`--fuel`).
    OutOfFuel,
    /// A called export returned (`wsandbox call`).
    Returned {
        /// Its result in WAVE (a tuple for several), if it has one.
        value: Option<String>,
        /// The result is a `result`'s `err`: the call failed on its own terms.
        failed: bool,
    },
}

/// Sorts the error that ended a guest's entry point into an outcome.
pub(crate) fn classify(err: wasmtime::Error) -> Outcome {
    if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return Outcome::Exited(exit.0);
    }
    if err.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::OutOfFuel) {
        return Outcome::OutOfFuel;
    }
    let backtrace = err
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(|bt| {
            // Its first line is wasmtime's heading; keep the frames.
            let text = bt.to_string();
            let frames: Vec<&str> = text.lines().skip(1).collect();
            format!("wasm backtrace:\n{}", frames.join("\n"))
        })
        .filter(|bt| bt.lines().count() > 1);
    let message = match err.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => err.root_cause().to_string(),
    };
    Outcome::Trapped { message, backtrace }
}
