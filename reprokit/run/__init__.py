"""The parent side of a run: the run settings, checked where they enter (:mod:`reprokit.run.settings`), run
processes started and killed with everything they started, their events rebuilt into traces, private working
folders, the environment signature, and the Ray executor (:mod:`reprokit.run.ray`). :mod:`reprokit.run.dispatch`
picks the runner.

May import: :mod:`reprokit.protocol`, :mod:`reprokit.core`. Never :mod:`reprokit.worker` (it starts it as a process).
"""
