"""The ``reprokit`` command: thin commands that convert options where they enter, call the library and render;
errors become exit codes in one place (:mod:`reprokit.cli.kit`).

May import: everything but the run process (:mod:`reprokit.worker`).
"""

from reprokit.cli.app import main

__all__ = ["main"]
