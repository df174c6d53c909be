;; A component in text form that exports nothing: it is detected as a
;; component, and refused because it has no `wasi:cli/run` entry point.
(component
  (core module $m)
  (core instance (instantiate $m)))
