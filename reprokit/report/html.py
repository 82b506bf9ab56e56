"""One self-contained HTML page of a report: its rich report as HTML, and its plots as inline SVG.

The page says what the terminal says, by construction: it is made from the
very renderables a report's ``__rich_console__`` yields (panels become
sections, tables tables, styled text styled spans), with the report's
figures (:mod:`reprokit.report.charts`, drawn by :mod:`reprokit.report.svg`) as
the evidence after the answer: a check's page shows its verdict, sources,
likely cause and fix first, a study's its headline. Nothing is fetched: no script, no stylesheet, no font, no
image file: a page opens offline, in a browser or attached to a CI run.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.panel import Panel
from rich.segment import Segment
from rich.style import Style
from rich.syntax import Syntax
from rich.table import Table
from rich.terminal_theme import TerminalTheme
from rich.text import Text

from reprokit.report.charts import Figure

THEME = TerminalTheme(
    (255, 255, 255),
    (31, 35, 40),
    [
        (31, 35, 40),
        (176, 0, 32),
        (26, 127, 55),
        (154, 103, 0),
        (9, 105, 218),
        (130, 80, 223),
        (27, 124, 131),
        (87, 96, 106),
    ],
    [
        (87, 96, 106),
        (207, 34, 46),
        (45, 164, 78),
        (191, 135, 0),
        (33, 139, 255),
        (163, 113, 247),
        (49, 146, 170),
        (110, 119, 129),
    ],
)
"""Rich's named colours on a white page, dark enough to read (GitHub's palette)."""

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1f2328;
       max-width: 1100px; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.4rem; margin: 0 0 .3rem; word-break: break-word; }
h2 { font-size: 1.1rem; margin: 0 0 .6rem; }
h3 { font-size: 1rem; margin: 0 0 .3rem; }
.verdict { font-size: 1.2rem; font-weight: 600; padding: .5rem .8rem; border-radius: 6px; display: inline-block; }
.good { background: #dafbe1; color: #116329; } .bad { background: #ffebe9; color: #a40e26; }
.neutral { background: #fff8c5; color: #6c4a00; }
section.panel { border: 1px solid #d0d7de; border-left: 6px solid var(--tone, #57606a); border-radius: 6px;
                padding: .8rem 1rem; margin: 1rem 0; }
.subtitle { color: #57606a; font-size: .9rem; margin-top: .5rem; }
p.text { white-space: pre-wrap; margin: .3rem 0; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; font-size: .9rem; }
caption { text-align: left; font-weight: 600; padding-bottom: .3rem; }
th, td { border-bottom: 1px solid #d0d7de; padding: .3rem .5rem; text-align: left; vertical-align: top;
         white-space: pre-wrap; }
th { background: #f6f8fa; }
pre { background: #f6f8fa; padding: .6rem .8rem; border-radius: 6px; overflow-x: auto; }
figure { margin: 1.2rem 0; padding: .8rem 1rem; border: 1px solid #d0d7de; border-radius: 6px; }
figcaption { color: #57606a; font-size: .9rem; margin-top: .3rem; }
figcaption .look { color: #1f2328; font-weight: 600; margin: 0 0 .2rem; }
footer { color: #57606a; font-size: .8rem; margin-top: 2rem; }
@media print { body { max-width: none; } figure, section.panel, table { break-inside: avoid; } }
"""


def html_page(
    title: str,
    verdict: str,
    tone: str,
    answer: Sequence[RenderableType],
    figures: Sequence[Figure],
    evidence: Sequence[RenderableType] = (),
    footer: str = "",
) -> str:
    """The whole page, in the order a reader's questions come: the verdict and the answer, the plots, the rest.

    Args:
        title: the page's heading (``reprokit check train.py``).
        verdict: one line, shown first (``reproducible``).
        tone: ``good``, ``bad`` or ``neutral``: the verdict's colour.
        answer: the report's parts shown before the plots (the rich report's renderables, in order).
        figures: the plots, each under its title with a line saying what to look at.
        evidence: the report's parts shown after the plots.
        footer: a last line (what made the page).
    """
    from reprokit.report.svg import svg  # matplotlib: imported only when a page is made

    console = Console(width=100, color_system="truecolor", force_terminal=False, record=False, markup=False)
    body = [
        f"<header><h1>{_e(title)}</h1>",
        f'<p class="verdict {_e(tone)}" id="verdict">{_e(verdict)}</p></header>',
        *(html for part in answer for html in _parts(part, console)),
    ]
    if figures:
        body.append('<section id="plots"><h2>Plots: the evidence</h2>')
        for f in figures:
            look = f'<p class="look">{_e(f.look)}</p>' if f.look else ""
            caption = f"<figcaption>{look}{_e(f.caption)}</figcaption>"
            body.append(f'<figure id="{_e(f.key)}"><h3>{_e(f.title)}</h3>{svg(f)}{caption}</figure>')
        body.append("</section>")
    body += [html for part in evidence for html in _parts(part, console)]
    if footer:
        body.append(f"<footer>{_e(footer)}</footer>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}: {_e(verdict)}</title><style>{CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


_KNOWN = (Panel, Table, Text, Group, Padding, Syntax)


def footer(version: str, command: str) -> str:
    """The last line of every page: what made it, and that it fetches nothing."""
    return f"Made by reprokit {version} ({command}). Plots are inline SVG: this file fetches nothing."


def _parts(report: RenderableType, console: Console) -> Iterable[str]:
    """The report's top-level parts, each as HTML."""
    if isinstance(report, _KNOWN) or not hasattr(report, "__rich_console__"):
        yield block(report, console)
        return
    for part in _yielded(report, console):
        yield from _parts(part, console)


def _yielded(renderable: Any, console: Console) -> list[RenderableType]:
    """What an object's ``__rich_console__`` yields (raw segments, which reports never yield, left out)."""
    return [r for r in renderable.__rich_console__(console, console.options) if not isinstance(r, Segment)]


def block(renderable: RenderableType, console: Console) -> str:
    """One renderable as HTML: panels, groups, paddings, tables, text and code; anything else as plain text."""
    if isinstance(renderable, str):
        renderable = Text(renderable)  # text from the report (paths, names), never markup
    if isinstance(renderable, Panel):
        tone = _color(renderable.border_style)
        style = f' style="--tone: {tone}"' if tone else ""
        head = f"<h2>{inline(renderable.title, console)}</h2>" if renderable.title else ""
        foot = f'<p class="subtitle">{inline(renderable.subtitle, console)}</p>' if renderable.subtitle else ""
        anchor = f' id="{_slug(_plain(renderable.title))}"' if renderable.title else ""
        return f'<section class="panel"{anchor}{style}>{head}{block(renderable.renderable, console)}{foot}</section>'
    if isinstance(renderable, Group):
        return "".join(block(r, console) for r in renderable.renderables)
    if isinstance(renderable, Padding):
        return block(renderable.renderable, console)
    if isinstance(renderable, Table):
        return _table(renderable, console)
    if isinstance(renderable, Syntax):
        return f"<pre><code>{_e(renderable.code.rstrip())}</code></pre>"
    if isinstance(renderable, Text):
        return f'<p class="text">{inline(renderable, console)}</p>' if renderable.plain else ""
    if hasattr(renderable, "__rich_console__"):
        return "".join(block(r, console) for r in _yielded(renderable, console))
    with console.capture() as captured:  # an unknown renderable: what the terminal would show, as text
        console.print(renderable)
    return f"<pre>{_e(captured.get())}</pre>"


def inline(content: RenderableType | None, console: Console) -> str:
    """Text (a string is plain text, never markup) as styled ``<span>`` elements, for a heading or a table cell."""
    if content is None:
        return ""
    if isinstance(content, str):
        content = Text(content)
    if not isinstance(content, Text):
        return block(content, console)
    if content.style:  # its own style, which Text.render leaves to the container: a span here
        content = Text().append_text(content)
    out = []
    for segment in content.render(console, end=""):
        text = _e(segment.text)
        css = segment.style.get_html_style(THEME) if segment.style else ""
        out.append(f'<span style="{css}">{text}</span>' if css else text)
    return "".join(out)


def _table(table: Table, console: Console) -> str:
    out = ["<table>"]
    if table.title:
        out.append(f"<caption>{inline(table.title, console)}</caption>")
    if table.show_header:
        out.append(
            "<thead><tr>" + "".join(f"<th>{inline(c.header, console)}</th>" for c in table.columns) + "</tr></thead>"
        )
    out.append("<tbody>")
    columns = [list(c.cells) for c in table.columns]
    for i in range(table.row_count):
        out.append("<tr>" + "".join(f"<td>{inline(cells[i], console)}</td>" for cells in columns) + "</tr>")
    out.append("</tbody></table>")
    if table.caption:
        out.append(f'<p class="subtitle">{inline(table.caption, console)}</p>')
    return "".join(out)


def _color(style: str | Style) -> str | None:
    """A border style's colour as CSS (None: none)."""
    parsed = Style.parse(style) if isinstance(style, str) else style
    if parsed.color is None:
        return None
    return parsed.color.get_truecolor(THEME).hex


def _plain(content: RenderableType) -> str:
    return content.plain if isinstance(content, Text) else str(content)


def _slug(text: str) -> str:
    """A panel's title as an id to link to (``seed-driven-why-and-the-fix``)."""
    words = "".join(c if c.isalnum() else " " for c in text.lower()).split()
    return "panel-" + "-".join(words)


def _e(text: str) -> str:
    return html.escape(text, quote=True)
