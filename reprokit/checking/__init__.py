"""``reprokit check``, ``explain`` and ``baseline``: the runs a check plans, their comparison step by step and
variable by variable, the attribution of differences to sources, root causes, resume checks (a run stopped and run
again), baselines, early exit and the replays that locate a divergence between two sampled steps; its result is
:class:`~reprokit.checking.result.Report` (the package is not called ``check``: ``reprokit.check`` is the API function).

May import: :mod:`reprokit.lint`, :mod:`reprokit.run`, :mod:`reprokit.protocol`, :mod:`reprokit.weights`,
:mod:`reprokit.core`. Never :mod:`reprokit.report` (its views) or another job's package.
"""
