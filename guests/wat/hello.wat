;; The smallest WASI command: prints a line through `fd_write` and returns.
;; Run it with: wsandbox run guests/wat/hello.wat
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; an iovec at 0: { buf = 16, len = 23 }
  (data (i32.const 0) "\10\00\00\00\17\00\00\00")
  (data (i32.const 16) "hello from WebAssembly\0a")
  (func (export "_start")
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
