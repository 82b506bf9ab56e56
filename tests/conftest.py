import sys
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


@pytest.fixture(scope="session")
def tuning_study(tmp_path_factory: pytest.TempPathFactory) -> StudiedExample:
    """``reprokit seeds`` (2 seeds) and ``reprokit compare`` (3 variants, 7 seeds) of the tuning example, once.

    JSON goes to stdout, HTML to ``seeds.html`` and ``compare.html`` in ``folder``.
    """
    folder = tmp_path_factory.mktemp("tuning")
    study = ["--study-dir", str(folder / "studies")]
    seeds = reprokit(
        "seeds", "examples/tuning.py", "--seeds", "2", *study, "-f", "json", "-f", f"html={folder / 'seeds.html'}"
    )
    variants = [
        "examples/tuning.py --hidden 32",
        "examples/tuning.py --hidden 8",
        "examples/tuning.py --hidden 32 --lr 0.011",
    ]
    html = f"html={folder / 'compare.html'}"
    compare = reprokit("compare", *variants, "--seeds", "7", *study, "-f", "json", "-f", html)
    return StudiedExample(seeds, compare, folder)
