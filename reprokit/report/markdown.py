"""Text for GitHub-flavoured Markdown: whatever a string holds, it stays text in its place.

Paths, layer, metric and variant names come from the user's code; a report
is also appended to ``$GITHUB_STEP_SUMMARY``, where raw HTML would render. So
every such string goes through one of these: HTML characters become
entities, a newline cannot end a heading or a table row, a pipe cannot end a
cell and a backtick cannot end a code span.
"""

from __future__ import annotations

import html
import re

__all__ = ["cell", "code", "fence", "text"]

_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029]+")


def text(value: object) -> str:
    """``value`` as Markdown text on one line: HTML escaped, Markdown's own characters taken literally."""
    one_line = _LINE_BREAKS.sub(" ", str(value))
    return re.sub(r"([\\`*_\[\]|#!~])", r"\\\1", html.escape(one_line, quote=False))


def cell(value: object) -> str:
    """``value`` for a table cell (see :func:`text`)."""
    return text(value)


def code(value: object) -> str:
    """``value`` as an inline code span on one line, whatever backticks or pipes it holds (also in a table)."""
    one_line = _LINE_BREAKS.sub(" ", str(value)).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", one_line)), default=0)
    ticks = "`" * (longest + 1)
    padded = f" {one_line} " if one_line.startswith("`") or one_line.endswith("`") or longest else one_line
    return f"{ticks}{padded}{ticks}"


def fence(body: str, language: str = "") -> list[str]:
    """A fenced code block holding ``body`` as it is: the fence is longer than any backtick run inside."""
    longest = max((len(run) for run in re.findall(r"`{3,}", body)), default=2)
    ticks = "`" * (longest + 1)
    return [f"{ticks}{language}", body, ticks]
