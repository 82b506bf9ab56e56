"""Views: how a result is shown, registered by its type, so that results never import what renders them.

A result object (a check's :class:`~reprokit.checking.result.Report`, a seed
study's reports, an alignment) is plain data. ``rich.print(result)`` and
``result.to_html()`` still work: the result asks this registry for its view,
and :mod:`reprokit.report` registers one view of each kind for every result
type (``@views.register(View.RICH, Report)``). The built-in views are loaded
the first time one is asked for, the way ``reprokit/__init__.py`` loads its
exports: the registry names the package, it never imports it at module level,
so the layers stay one way (results below their views).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from reprokit.core.errors import InternalError
from reprokit.core.vocabulary import Word

BUILTIN_VIEWS = "reprokit.report"
"""The package whose import registers the view of every built-in result type."""

F = TypeVar("F", bound=Callable[[Any], Any])


class View(Word):
    """A way to show a result."""

    RICH = "rich"  # the renderables of the terminal report, in order
    HTML = "html"  # one self-contained page


_VIEWS: dict[tuple[View, type], Callable[[Any], Any]] = {}


def register(view: View, result_type: type) -> Callable[[F], F]:
    """Registers the decorated function as ``view`` of ``result_type`` (and of its subclasses)."""

    def decorate(function: F) -> F:
        _VIEWS[(view, result_type)] = function
        return function

    return decorate


def render(view: View, result: object) -> Any:
    """``view`` of ``result``: the renderables (``RICH``) or the page (``HTML``).

    Raises:
        InternalError: no view of that kind is registered for the result's type.
    """
    function = _lookup(view, type(result))
    if function is None:
        importlib.import_module(BUILTIN_VIEWS)
        function = _lookup(view, type(result))
    if function is None:
        raise InternalError(f"expected a {view.value} view of {type(result).__name__}; received none registered")
    return function(result)


def rich(result: object) -> Iterable[Any]:
    """The renderables of ``result``'s terminal report (what its ``__rich_console__`` yields)."""
    renderables: Iterable[Any] = render(View.RICH, result)
    return renderables


def html(result: object) -> str:
    """``result`` as one self-contained HTML page."""
    page: str = render(View.HTML, result)
    return page


class Shown:
    """A result that shows itself through the views registered for its type.

    ``rich.print(result)`` renders its :data:`View.RICH` view and
    ``result.to_html()`` returns its :data:`View.HTML` page.
    """

    __slots__ = ()

    def to_html(self) -> str:
        """The result as one self-contained HTML page, with plots (the view :mod:`reprokit.report` registers)."""
        return html(self)

    def __rich_console__(self, console: Any, options: Any) -> Iterator[Any]:
        yield from rich(self)


def _lookup(view: View, result_type: type) -> Callable[[Any], Any] | None:
    return next((_VIEWS[(view, t)] for t in result_type.__mro__ if (view, t) in _VIEWS), None)
