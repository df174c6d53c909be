;; A guest that spins forever in wasm, making no host call.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $forever (br $forever))))
