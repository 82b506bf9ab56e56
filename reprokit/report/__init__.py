"""The views of every result: rich terminal reports, JSON text, JUnit, Markdown, GitHub annotations, HTML pages
and their SVG plots, each a pure function of a result object. Importing the package registers the terminal and HTML
view of each result type (:mod:`reprokit.report.views`, see :mod:`reprokit.core.views`).

May import: the jobs (:mod:`reprokit.checking`, :mod:`reprokit.study`, :mod:`reprokit.aligning`) and everything below.
"""

from reprokit.report import views

__all__ = ["views"]
