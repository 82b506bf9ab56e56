"""``reprokit lint``: reproducibility hazards found in the source, without running it.

May import: :mod:`reprokit.core`. Never TensorFlow.
"""
