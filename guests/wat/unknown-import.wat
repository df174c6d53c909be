;; Imports a function no host provides: the module cannot be linked.
(module
  (import "env" "launch_missiles" (func (param i32)))
  (func (export "_start")))
