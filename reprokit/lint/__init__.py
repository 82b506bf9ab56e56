"""``reprokit lint``: reproducibility hazards found in the source, without running it.

Its job is static analysis of Python source: :mod:`reprokit.lint.engine` parses
modules with :mod:`ast`, runs the rules chosen from the registry
(:mod:`reprokit.lint.registry`; the rules themselves, one module per family, in
:mod:`reprokit.lint.rules`) and returns the findings; :mod:`reprokit.lint.docs`
renders the rule table for the README and ``reprokit lint --list-rules``.

May import: :mod:`reprokit.core` (and the standard library and rich). Never
TensorFlow or Keras, whose code it reads but never runs, and never another
reprokit package: they import it.
"""
