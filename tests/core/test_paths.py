"""Paths from the user: inputs must be regular files, outputs never destroy a file (issue 28, no run)."""

from __future__ import annotations

import os

import pytest

from reprokit.core.errors import UsageError
from reprokit.core.paths import check_outputs, kind, require_file


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "train.py").write_text("print('train')\n")
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    (tmp_path / "old-report.json").write_text('{"kind": "check", "reprokit_version": "0.1"}\n')
    (tmp_path / "adir").mkdir()
    os.mkfifo(tmp_path / "pipe.py")
    return tmp_path


def test_a_fifo_a_folder_and_a_missing_path_are_named_for_what_they_are(folder):
    assert kind(folder / "train.py") is None
    assert kind(folder / "pipe.py") == "a FIFO (named pipe)"
    assert kind(folder / "adir") == "a folder"
    assert kind(folder / "nope.py") == "missing"
    with pytest.raises(UsageError, match=r"expected the script to be a regular file, received a FIFO"):
        require_file(folder / "pipe.py", "script")
    with pytest.raises(UsageError, match="script not found"):
        require_file(folder / "nope.py", "script")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("train.py", "refusing to write a report to a Python source"),
        ("new.py", "refusing to write a report to a Python source"),
        ("data.csv", "the script's folder held it before, and reprokit did not write it"),
        ("adir", "expected an output file, received a folder"),
        ("pipe.py", "Python source"),
        ("nope/sub/x.json", "the folder of the output does not exist: .*nope/sub"),
    ],
)
def test_an_output_that_would_destroy_a_file_or_cannot_be_written_is_refused(folder, name, message):
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    with pytest.raises(UsageError, match=message):
        check_outputs([folder / name], [folder / "train.py"], [folder])
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before


def test_an_input_is_never_an_output_even_outside_the_scripts_folder_or_under_another_name(folder, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("models")
    model = elsewhere / "a.keras"
    model.write_bytes(b"zip")
    os.link(model, elsewhere / "same.json")  # one file, two names
    with pytest.raises(UsageError, match="the command reads it"):
        check_outputs([elsewhere / "same.json"], [model])


def test_two_formats_to_one_file_are_refused(folder):
    with pytest.raises(UsageError, match="two outputs name the same file"):
        check_outputs([folder / "r.json", folder / "." / "r.json"], [], [folder])


def test_a_new_file_an_earlier_report_and_a_file_outside_the_folder_may_be_written(folder, tmp_path_factory):
    outside = tmp_path_factory.mktemp("out") / "notes.txt"
    outside.write_text("the user named this exact path\n")
    check_outputs([folder / "report.json", folder / "old-report.json", outside], [folder / "train.py"], [folder])
