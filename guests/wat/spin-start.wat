;; A component whose instantiation never ends: its core module's start
;; function loops. A plugin host must still get its `start` back (an
;; error at the call timeout).
(component
  (core module $m
    (func $spin (loop $forever (br $forever)))
    (start $spin)
    (func (export "ping") (result i32) (i32.const 1)))
  (core instance $i (instantiate $m))
  (func (export "ping") (result s32) (canon lift (core func $i "ping"))))
