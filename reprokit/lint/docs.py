"""The rule table, made from the registry: Markdown for the README, rich for the terminal, JSON for tools.

The README's table is :func:`markdown_table`'s output between
:data:`START` and :data:`END`; after a rule changes, regenerate it with
``python -m reprokit.lint.docs`` (rewrites ``README.md`` in the current
folder, or the file named).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from rich import box
from rich.table import Table
from rich.text import Text

from reprokit.core.files import write_atomic
from reprokit.lint.registry import Rule
from reprokit.lint.rules import REGISTRY

START = "<!-- rules:start -->"
END = "<!-- rules:end -->"


def markdown_table(rules: Iterable[Rule] = REGISTRY) -> str:
    """The rules as a Markdown table (rule, name, hazard), one row each, ending in a newline."""
    rows = ["| rule | name | hazard |", "|---|---|---|"]
    rows += [f"| {rule.code} | {rule.name} | {_cell(rule.title)} |" for rule in rules]
    return "\n".join(rows) + "\n"


def readme_table(readme: str) -> str:
    """The text between the README's markers (after the start marker's line break).

    Raises:
        ValueError: the markers are missing or out of order.
    """
    start, end = _span(readme)
    return readme[start:end]


def with_table(readme: str, rules: Iterable[Rule] = REGISTRY) -> str:
    """The README with :func:`markdown_table` between its markers.

    Raises:
        ValueError: the markers are missing or out of order.
    """
    start, end = _span(readme)
    return readme[:start] + markdown_table(rules) + readme[end:]


def _span(readme: str) -> tuple[int, int]:
    """Where the table goes: from after the start marker's line to the end marker."""
    start, end = readme.find(START + "\n"), readme.find(END)
    if start < 0 or end < start:
        raise ValueError(f"expected a line {START} and, after it, {END} in the README")
    return start + len(START) + 1, end


def rule_table(rules: Iterable[Rule] = REGISTRY) -> Table:
    """The rules for the terminal: code, name over its message (code spans highlighted), family, GPU only.

    The message shares the name's column so that it keeps room to wrap in 80 columns.
    """
    table = Table(box=box.SIMPLE_HEAD, title="reprokit lint rules", title_justify="left")
    table.add_column("code", no_wrap=True)
    table.add_column("name and message", ratio=1, overflow="fold")
    table.add_column("family", no_wrap=True)
    table.add_column("GPU only", no_wrap=True)
    for rule in rules:
        described = Text(rule.name, style="bold") + Text("\n") + _terminal(rule.message)
        table.add_row(rule.code, described, rule.family.value, "yes" if rule.gpu_only else "")
    return table


def rules_document(rules: Iterable[Rule] = REGISTRY) -> list[dict[str, str | bool | None]]:
    """The rules as JSON-ready objects (code, name, family, message, fix, rationale, source, gpu_only)."""
    return [
        {
            "code": rule.code,
            "name": rule.name,
            "family": rule.family.value,
            "message": rule.message,
            "fix": rule.fix,
            "rationale": rule.rationale,
            "source": rule.source.value if rule.source is not None else None,
            "gpu_only": rule.gpu_only,
        }
        for rule in rules
    ]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _terminal(markdown: str) -> Text:
    """A one-line Markdown text for the terminal: the backticks dropped, their code in cyan."""
    text = Text()
    for i, part in enumerate(markdown.split("`")):
        text.append(part, style="cyan" if i % 2 else "")
    return text


def main(argv: Sequence[str] = ()) -> int:
    """Rewrites the rule table of the README named (default ``README.md``); returns the exit status."""
    path = Path(argv[0] if argv else "README.md")
    readme = path.read_text(encoding="utf-8")
    updated = with_table(readme)
    if updated != readme:
        write_atomic(path, updated)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
