"""A replay command pasted back into a shell trains the seed's run again, bit for bit (two tiny runs, e2e).

Reuse across commands by the count of runs trained is shown on the tuning example's
session study (``test_tuning_example.py``, ``test_examples.py``), which trains nothing more for it.
"""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys

import pytest

from helpers import ROOT, TINY, reprokit, words

pytestmark = pytest.mark.e2e


def test_the_printed_replay_command_run_back_trains_the_same_run_into_the_same_study_folder(tmp_path):
    project = tmp_path / "project"  # its files are in the study's key: nothing of the test's own lands there
    project.mkdir()
    script = project / "tiny.py"
    script.write_text(TINY)
    folder = tmp_path / "a study folder"  # a space: the command must quote it
    options = ["--seed", "4321", "--seeds", "1", "--no-repeat", "--timeout", "300", "--epochs", "3"]
    done = reprokit("seeds", script, *options, "--study-dir", folder, "-f", "json", "--", "--hidden", "4")
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads(done.stdout)
    command = doc["replay_command"]
    assert f"--study-dir '{folder}'" in command and "--epochs 3 --batch-size 32 --timeout 300.0" in command
    (record,) = folder.glob("*/seed-4321.json")
    stored = json.loads(record.read_text())

    shims = tmp_path / "bin"  # `reprokit` on the PATH: this checkout's, whatever is installed
    shims.mkdir()
    (shims / "reprokit").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m reprokit "$@"\n')
    (shims / "reprokit").chmod(stat.S_IRWXU)
    path = f"{shims}{os.pathsep}{os.environ['PATH']}"
    env = {
        **os.environ,
        "PATH": path,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "COLUMNS": "400",  # the report on few lines
    }
    again = subprocess.run(
        ["bash", "-c", command], cwd="/", env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert again.returncode == 0, again.stderr[-2000:]
    shown = words(again.stdout)  # the command as printed, so its report is the terminal's
    assert "1 runs ·" in shown and "reused" not in shown  # trained again, not read back
    (after,) = folder.glob("*/seed-4321.json")  # the same key: the replay replaced the stored run
    replaced = json.loads(after.read_text())
    assert after == record and replaced["wall_seconds"] != stored["wall_seconds"]
    for same in ("weights", "probes", "metrics", "steps", "curves"):
        assert replaced[same] == stored[same], same
