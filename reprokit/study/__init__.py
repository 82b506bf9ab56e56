"""Seed studies (``reprokit seeds`` and ``compare``): every variant trained once per seed, the runs kept so that any
later study reuses them, and statistics that say whether a change is beyond seed noise; results are
:class:`~reprokit.study.result.SeedsReport` and :class:`~reprokit.study.result.CompareReport`.

May import: :mod:`reprokit.run`, :mod:`reprokit.protocol`, :mod:`reprokit.weights`, :mod:`reprokit.core`. Never
:mod:`reprokit.report` or another job's package.
"""
