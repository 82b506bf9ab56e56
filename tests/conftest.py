import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the tests' own helpers module

from helpers import EXAMPLES, CheckedExample, reprokit


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

    Every format is written from the same check (rich to stdout, JSON, JUnit
    and Markdown to files), so the tests of one example all look at one run.
    """
    done: dict[str, CheckedExample] = {}

    def check(example: str) -> CheckedExample:
        if example not in done:
            out = tmp_path_factory.mktemp(Path(example).stem)
            formats = [f"--format={name}={out / name}" for name in ("json", "junit", "markdown")]
            result = reprokit("check", EXAMPLES / example, "--explain", "--format=rich", *formats)
            done[example] = CheckedExample(example, result, out)
        return done[example]

    return check
