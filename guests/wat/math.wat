;; A core module with plain numeric exports, for `wsandbox call`: no WASI
;; command, a library. `_initialize` sets the base `add` starts from, as a
;; reactor's initializer would; `cabi_realloc` is the canonical ABI's
;; allocator, there for the runtime, as toolchains export it.
(module
  (global $base (mut i32) (i32.const 100))
  (memory (export "memory") 1)
  (func (export "_initialize")
    (global.set $base (i32.const 0)))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (i32.const 0))
  (func (export "add") (param $a i32) (param $b i32) (result i32)
    (i32.add (global.get $base) (i32.add (local.get $a) (local.get $b))))
  (func (export "wide") (param $a i64) (result i64)
    (i64.mul (local.get $a) (i64.const 1000000)))
  (func (export "half") (param $x f64) (result f64)
    (f64.div (local.get $x) (f64.const 2)))
  (func (export "divmod") (param $a i32) (param $b i32) (result i32 i32)
    (i32.div_s (local.get $a) (local.get $b))
    (i32.rem_s (local.get $a) (local.get $b))))
