"""Files reprokit writes: atomic, strict JSON, and with the mode any other tool would give them."""

import os
import stat

import pytest

from helpers import recorded_report
from reprokit.core.files import json_text, write_atomic
from reprokit.report.ci import plain_summary


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_respects_the_umask_not_the_0600_of_a_temporary_file(tmp_path, umask_022):
    write_atomic(tmp_path / "reprokit.lock.json", "{}\n")
    assert mode(tmp_path / "reprokit.lock.json") == 0o644
    os.umask(0o077)
    write_atomic(tmp_path / "private.json", "{}\n")
    assert mode(tmp_path / "private.json") == 0o600


def test_a_replaced_file_keeps_its_mode_and_no_temporary_file_is_left(tmp_path, umask_022):
    path = tmp_path / "report.json"
    path.write_text("old")
    path.chmod(0o640)
    write_atomic(path, "new")
    assert (path.read_text(), mode(path)) == ("new", 0o640)
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_plain_text_reports_have_no_trailing_spaces():
    for kind in ("seed", "ops", "uncontrolled", "none"):
        lines = plain_summary(recorded_report(kind), width=80).splitlines()
        assert lines and not [line for line in lines if line != line.rstrip()], kind


def test_json_text_is_strict():
    assert json_text({"loss": float("nan"), "steps": [1, float("inf")]}) == (
        '{\n  "loss": null,\n  "steps": [\n    1,\n    null\n  ]\n}\n'
    )
