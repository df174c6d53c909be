;; Grows its memory by 1 MiB at a time until a grow fails, then traps:
;; what a guest whose allocator runs out of memory does.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $more
      (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable))
