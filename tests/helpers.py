"""Helpers: recorded runs and reports for the pure tests, the CLI in a subprocess for the end-to-end ones."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from reprokit.checking.classify import classify, verdict
from reprokit.checking.comparison import Comparison, compare_runs
from reprokit.checking.reporting import step_losses
from reprokit.checking.result import Report, RunSummary
from reprokit.checking.tracks import tracks
from reprokit.core.controls import Controls
from reprokit.protocol import parse_event
from reprokit.run.trace import RunSpec, RunTrace, TraceBuilder

if TYPE_CHECKING:
    from browser import Page

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DATA = Path(__file__).resolve().parent / "data"


def recorded_trace(name: str) -> RunTrace:
    """A run recorded by tests/data/record.py (seed_question, one epoch)."""
    seed = 1235 if name.startswith("seed") else 1234
    builder = TraceBuilder(RunSpec(name, name.split("-", maxsplit=1)[0], Controls(seed, True)))
    for line in (DATA / f"{name}.jsonl").read_text().splitlines():
        event = parse_event(line)
        assert event is not None, line
        builder.add(event)
    return builder.build(1.0, DATA / f"{name}.npz")


def recorded_arrays(name: str) -> dict[str, np.ndarray]:
    with np.load(DATA / f"{name}.npz") as arrays:
        return {k: arrays[k] for k in arrays.files}


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def report(self) -> dict[str, Any]:
        return json.loads(self.stdout)


@dataclass(frozen=True)
class CheckedExample:
    """An example checked once through the CLI: its exit code, terminal report and every file format."""

    example: str
    result: CliResult
    folder: Path

    @property
    def report(self) -> dict[str, Any]:
        return json.loads((self.folder / "json").read_text())

    @property
    def html(self) -> Path:
        """The HTML report's file."""
        return self.folder / "report.html"

    def text(self, name: str) -> str:
        """The report in format ``name`` (``rich`` is what the terminal showed)."""
        return self.result.stdout if name == "rich" else (self.folder / name).read_text()


@dataclass(frozen=True)
class StudiedExample:
    """A seed study, a comparison and a tuning of an example through the CLI (JSON on stdout, HTML in ``folder``).

    Their runs are kept in ``studies`` (under ``folder``): a test that runs a
    configuration already run there with ``--resume`` reuses its runs.
    """

    seeds: CliResult
    compare: CliResult
    tune: CliResult
    folder: Path

    @property
    def studies(self) -> Path:
        return self.folder / "studies"


def interruptible(*args: str | Path) -> list[str]:
    """The command line of the reprokit CLI with ``args``, to be interrupted as Ctrl-C would in a terminal.

    A process started from a background job (as CI may run the suite) inherits
    SIGINT ignored, and Python then never raises KeyboardInterrupt; a user's
    terminal never does that, so the CLI gets Python's own handler back first.
    """
    start = (
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.argv[0] = 'reprokit'; runpy.run_module('reprokit', run_name='__main__', alter_sys=True)"
    )
    return [sys.executable, "-c", start, *map(str, args)]


def reprokit(
    *args: str | Path, cwd: Path | None = None, timeout: float = 600, env: dict[str, str] | None = None
) -> CliResult:
    """Runs the reprokit CLI in a fresh process, as a user would."""
    proc = subprocess.run(
        [sys.executable, "-m", "reprokit", *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=timeout,
        env=env,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def words(text: str) -> str:
    """Terminal text as one line of words: panel borders gone, wrapped lines joined."""
    return " ".join(text.translate(str.maketrans("│╭╮╰╯─", "      ")).split())


def recorded_report(kind: str = "seed", quick: bool = False) -> Report:
    """A report built from the recorded runs; ``kind`` names the pair that differs.

    ``seed``: only the seed pair differs; ``ops``: the ops pair differs too;
    ``uncontrolled``: every pair differs; ``none``: nothing differs.
    """
    same = recorded_comparison("controlled-1", "controlled-2")
    different = recorded_comparison("controlled-1", "seed-1")
    chosen = {
        "seed": (same, same, different),
        "ops": (same, different, different),
        "uncontrolled": (different, different, different),
        "none": (same, same, same),
    }[kind]
    names = ("controlled", "ops", "seed")
    comparisons = [dataclasses.replace(c, name=n) for n, c in zip(names, chosen)]
    if quick:
        comparisons = comparisons[:1]
    trace = recorded_trace("controlled-1")
    findings = classify(comparisons, 1234)
    runs = tuple(
        RunSummary(
            name,
            name.split("-")[0],
            1234,
            True,
            15,
            4.2,
            ("sequential",),
            0.09,
            "script",
            step_losses=step_losses(recorded_trace(name.replace("ops", "controlled"))),
        )
        for name in ("controlled-1", "controlled-2", "ops-1", "ops-2", "seed-1")
    )
    return Report(
        script="examples/seed_question.py",
        script_args=("--epochs", "1"),
        seed=1234,
        verdict=verdict(findings),
        findings=findings,
        comparisons=tuple(comparisons),
        runs=runs[:2] if quick else runs,
        environment=trace.environment,
        reprokit_version="0.0.test",
        quick=quick,
        wall_seconds=21.0,
    )


def recorded_comparison(a: str, b: str) -> Comparison:
    trace_a, trace_b, arrays_a, arrays_b = recorded_trace(a), recorded_trace(b), recorded_arrays(a), recorded_arrays(b)
    comparison = compare_runs("x", trace_a, trace_b, arrays_a, arrays_b)
    if comparison.identical:
        return comparison
    return dataclasses.replace(comparison, tracks=tracks(trace_a, trace_b, arrays_a, arrays_b))


FIGURE = re.compile(r'<figure id="([^"]+)"><h3>([^<]+)</h3><svg\b[^>]*><title>([^<]+)</title>')


ANSWER_AND_PLOTS = ('section.panel[id$="-why-and-the-fix"]', "figure")
"""Where a check's page puts its fixes and its plots (``Page.tops``): the fixes come first."""


def rendered(html: Path, folder: Path, measure: tuple[str, ...] = ANSWER_AND_PLOTS) -> Page:
    """``html`` opened in the browser: it fetched nothing and reported no error; its screenshot is a PNG."""
    from browser import open_report, require_chromium

    require_chromium()
    assert html.is_file(), f"no HTML report was written at {html}"
    page = open_report(html, folder / f"{html.stem}.png", measure=measure)
    assert page.requests == (), f"the page tried to fetch {page.requests}"
    assert page.console_errors == (), page.console_errors
    assert page.screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return page


def plots(page: Page) -> dict[str, str]:
    """Every plot on the page, by id: its heading, which must be its SVG's title too."""
    found = {}
    for key, heading, title in FIGURE.findall(page.dom):
        assert heading == title, f"plot {key}: heading {heading!r}, SVG title {title!r}"
        found[key] = heading
    assert page.dom.count("<figure") == len(found), "a plot without its SVG"
    return found


def page_verdict(page: Page) -> str:
    """The verdict a report's page shows first."""
    match = re.search(r'id="verdict">([^<]+)<', page.dom)
    assert match, "no verdict on the page"
    return match.group(1)


# A tiny seed-study script: --hidden, and a seed that fails (--fail-seed) or gives NaN (--nan-seed).
TINY = """\
import argparse, os
import keras, numpy as np
from sklearn.datasets import load_digits

parser = argparse.ArgumentParser()
parser.add_argument("--hidden", type=int, default=16)
parser.add_argument("--fail-seed", default="")
parser.add_argument("--nan-seed", default="")
args = parser.parse_args()
seed = os.environ.get("PYTHONHASHSEED", "")  # reprokit sets it to the run's seed
if seed == args.fail_seed:
    raise ValueError(f"this seed is broken: {seed}")
digits = load_digits()
x, y = (digits.data[:500] / 16.0).astype("float32"), digits.target[:500]
model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(args.hidden, activation="relu"),
                          keras.layers.Dense(10, activation="softmax")])
lr = float("nan") if seed == args.nan_seed else 0.01  # a training that diverges to NaN
model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x[:400], y[:400], epochs=2, batch_size=50, verbose=0)
model.evaluate(x[400:], y[400:], verbose=0)
"""
