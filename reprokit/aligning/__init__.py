"""``reprokit align``: why the weights of two saved models differ, run in a fresh process (the package is not
called ``align``: ``reprokit.align`` is the API function); its result is :class:`~reprokit.aligning.result.AlignReport`.

May import: :mod:`reprokit.run`, :mod:`reprokit.weights`, :mod:`reprokit.core`. Never :mod:`reprokit.report` or
another job's package.
"""
