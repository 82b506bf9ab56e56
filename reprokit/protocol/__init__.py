"""The wire between a run process and the parent: the worker's configuration, every event, typed, as JSON lines.

May import: :mod:`reprokit.core`.
"""
