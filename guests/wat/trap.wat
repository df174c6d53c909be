;; Traps in a nested call, so the wasm backtrace has several frames.
(module
  (func $inner unreachable)
  (func $outer call $inner)
  (func (export "_start") call $outer))
