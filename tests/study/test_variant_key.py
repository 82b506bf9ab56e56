"""The study folder's key sees the files a run reads in its folder: an edited data file is a new variant.

Pure logic: keys computed from real folders, nothing trained.
"""

from __future__ import annotations

import os
from pathlib import Path

from reprokit.run.runner import Target
from reprokit.run.settings import RunSettings
from reprokit.study.running import variant_key


def project(tmp_path: Path) -> Target:
    (tmp_path / "train.py").write_text("import numpy as np\nprint(np.loadtxt('data.csv'))\n")
    (tmp_path / "data.csv").write_text("1\n2\n")
    return Target(tmp_path / "train.py", folder=tmp_path)


def test_an_edited_data_file_beside_the_script_gives_another_key(tmp_path: Path) -> None:
    target = project(tmp_path)
    before = variant_key(target, RunSettings())
    (tmp_path / "data.csv").write_text("1\n3\n")
    os.utime(tmp_path / "data.csv", ns=(1, 1))  # the same size: the time alone tells
    assert variant_key(target, RunSettings()) != before


def test_a_study_folder_inside_the_project_and_caches_leave_the_key_as_it_was(tmp_path: Path) -> None:
    target = project(tmp_path)
    studies = tmp_path / "studies"
    before = variant_key(target, RunSettings(), studies=studies)
    (studies / "abc").mkdir(parents=True)
    (studies / "abc" / "seed-1.json").write_text("{}")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"\0")
    assert variant_key(target, RunSettings(), studies=studies) == before


def test_a_script_outside_its_folder_keys_the_files_beside_it_too(tmp_path: Path) -> None:
    code, work = tmp_path / "code", tmp_path / "work"
    code.mkdir()
    work.mkdir()
    (code / "train.py").write_text("print(1)\n")
    target = Target(code / "train.py", folder=work)
    before = variant_key(target, RunSettings())
    (code / "vocab.txt").write_text("a b c\n")
    assert variant_key(target, RunSettings()) != before
