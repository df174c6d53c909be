;; A compute-bound guest for benchmarks: 600 million rounds of an
;; xorshift generator, no system call until it returns.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (local $x i64) (local $n i32)
    (local.set $x (i64.const 88172645463325252))
    (local.set $n (i32.const 600000000))
    (loop $round
      (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 13))))
      (local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 7))))
      (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 17))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $round (local.get $n)))
    ;; Exit 0 unless the generator reached zero (it never does): the result
    ;; is used, so the loop cannot be optimized away.
    (call $exit (i32.wrap_i64 (i64.extend_i32_u (i64.eqz (local.get $x)))))))
