import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the tests' own helpers module


@pytest.fixture
def write_script(tmp_path: Path):
    """Writes a training script into tmp_path and returns its path."""

    def write(body: str, name: str = "train.py") -> Path:
        path = tmp_path / name
        path.write_text(body)
        return path

    return write
