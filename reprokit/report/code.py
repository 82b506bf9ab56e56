"""Code a user pastes (a fix) shown whole: long lines folded where Python allows, never clipped.

A terminal panel crops a line at its edge, and a cropped line pasted back does
not run. :class:`FoldedCode` folds each line too long for the width it is
given after the commas of its brackets (inside brackets a line break is
legal Python) and keeps the rest as it is.
"""

from __future__ import annotations

import io
import tokenize

from rich.console import Console, ConsoleOptions, RenderResult
from rich.syntax import Syntax

INDENT = 4


class FoldedCode:
    """Python code as rich :class:`~rich.syntax.Syntax`, folded to the width it is rendered at."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        folded = fold(self.code, options.max_width)
        yield Syntax(folded, "python", theme="ansi_dark", background_color="default", word_wrap=False)


def fold(code: str, width: int) -> str:
    """``code`` with every line longer than ``width`` broken after its bracketed commas (the same program)."""
    return "\n".join(part for line in code.split("\n") for part in _fold_line(line, width))


def _fold_line(line: str, width: int) -> list[str]:
    if len(line) <= width:
        return [line]
    breaks = _comma_breaks(line)
    if not breaks:
        return [line]  # nothing to break at safely: shown whole (the terminal may wrap it)
    indent = " " * (len(line) - len(line.lstrip()) + INDENT)
    parts, start = [], 0
    for end in breaks:
        parts.append(line[start:end].strip())
        start = end
    parts.append(line[start:].strip())
    first = line[: len(line) - len(line.lstrip())] + parts[0]
    return [first, *[indent + p for p in parts[1:] if p]]


def _comma_breaks(line: str) -> list[int]:
    """Offsets just after the commas inside the outermost bracket of ``line`` (none: it does not tokenize)."""
    depth, found = 0, []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return []
    offset = len(line) - len(line.lstrip())
    for token in tokens:
        if token.type != tokenize.OP:
            continue
        if token.string in "([{":
            depth += 1
            if depth == 1:
                found.append(offset + token.end[1])  # after the opening bracket
        elif token.string in ")]}":
            depth -= 1
        elif token.string == "," and depth == 1:
            found.append(offset + token.end[1])
    return found
