import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the tests' own helpers module

from helpers import EXAMPLES, CheckedExample, StudiedExample, reprokit


@pytest.fixture
def write_script(tmp_path: Path):
    """Writes a training script into tmp_path and returns its path."""

    def write(body: str, name: str = "train.py") -> Path:
        path = tmp_path / name
        path.write_text(body)
        return path

    return write


@pytest.fixture(scope="session")
def checked_example(tmp_path_factory: pytest.TempPathFactory):
    """``reprokit check EXAMPLE --explain`` through the installed CLI, once per example per session.

    Every format is written from the same check (rich to stdout, JSON, JUnit,
    Markdown and HTML to files), so the tests of one example all look at one run.
    """
    done: dict[str, CheckedExample] = {}

    def check(example: str) -> CheckedExample:
        if example not in done:
            out = tmp_path_factory.mktemp(Path(example).stem)
            formats = [f"--format={name}={out / name}" for name in ("json", "junit", "markdown")]
            formats.append(f"--format=html={out / 'report.html'}")
            result = reprokit("check", EXAMPLES / example, "--explain", "--format=rich", *formats)
            done[example] = CheckedExample(example, result, out)
        return done[example]

    return check


TUNING = "examples/tuning.py"
COMPARED = [f"{TUNING} --hidden 32 --lr 0.01", f"{TUNING} --hidden 8 --lr 0.01", f"{TUNING} --hidden 32 --lr 0.011"]
"""The tuning example's comparison: 8 hidden units instead of 32 (worse), a learning rate of 0.011 instead of 0.01."""
GRID = ["--grid", "hidden=32,8", "--grid", "lr=0.01,0.011,3.0"]
"""The tuning example's grid: every configuration of COMPARED is one of its points (the comparison reuses them)."""


@pytest.fixture(scope="session")
def tuning_study(tmp_path_factory: pytest.TempPathFactory) -> StudiedExample:
    """``reprokit seeds`` (2 seeds), ``tune`` (3 x 2, 8 seeds) and ``compare`` (3 variants, ``--seeds auto``) of the
    tuning example, once.

    JSON goes to stdout (the tuning's: the terminal report, and JSON in ``tune.json``), HTML to ``seeds.html``,
    ``compare.html`` and ``tune.html`` in ``folder``. The comparison reuses the tuning's runs (the study folder's: its 3
    variants are configurations of the grid, and the tuning's 8 seeds are its first look's), so it trains nothing.
    """
    folder = tmp_path_factory.mktemp("tuning")
    study = ["--study-dir", str(folder / "studies")]
    seeds = reprokit("seeds", TUNING, "--seeds", "2", *study, "-f", "json", "-f", f"html={folder / 'seeds.html'}")
    formats = ["-f", "rich", "-f", f"json={folder / 'tune.json'}", "-f", f"html={folder / 'tune.html'}"]
    tune = reprokit("tune", TUNING, *GRID, "--seeds", "8", *study, *formats)
    html = f"html={folder / 'compare.html'}"
    compare = reprokit("compare", *COMPARED, "--seeds", "auto", *study, "-f", "json", "-f", html)
    return StudiedExample(seeds, compare, tune, folder)


SHARED = {"checked_example": "examples", "tuning_study": "examples"}
"""Session fixtures, by the xdist group of the tests that use them: each is made once, on one worker."""

ONE_AT_A_TIME = {"test_ray.py": "ray", "test_align.py": "align"}
"""Files whose tests share the machine's Ray processes or a module fixture: on one worker, in order."""


@pytest.hookimpl(wrapper=True)  # before every plugin's hook, pytest-xdist's (which reads the groups) among them
def pytest_collection_modifyitems(items: list[pytest.Item]) -> Iterator[None]:
    """Keeps the tests that share an expensive fixture, or Ray, on one xdist worker (``--dist loadgroup``)."""
    for item in items:
        group = ONE_AT_A_TIME.get(item.path.name) or next(
            (SHARED[name] for name in getattr(item, "fixturenames", ()) if name in SHARED), None
        )
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    return (yield)
