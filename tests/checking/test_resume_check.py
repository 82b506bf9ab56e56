"""A training stopped after step K and run again: the right verdict for every way of checkpointing.

Each case checks one script of ``examples/resume`` (32 steps: 4 epochs of 8 batches) from a copy of
that folder, which must be as it was afterwards, with no process of the check left behind.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from helpers import EXAMPLES, page_verdict, rendered, reprokit
from reprokit import check

pytestmark = pytest.mark.e2e

RESUME = EXAMPLES / "resume"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the resume examples' folder, the check's working folder."""
    copy = tmp_path / "resume"
    shutil.copytree(RESUME, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def workers(mark: str) -> set[int]:
    """The run processes alive now (``python -m reprokit.worker.main``, and fork servers with their runs) of the
    command whose environment held ``TEST_MARK=mark`` (not those of tests running beside this one)."""
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            environment = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        ours = f"TEST_MARK={mark}".encode() in environment.split(b"\0")
        if ours and (b"reprokit.worker.main" in command or b"reprokit.worker.zygote" in command):
            found.add(int(pid))
    return found


def resume_check(folder: Path, *args: str, code: int = 0) -> dict:
    """``reprokit check --quick`` with ``args`` in ``folder``: its JSON report, the folder and processes checked."""
    before, mark = listing(folder), uuid.uuid4().hex
    result = reprokit("check", "--quick", "-f", "json", *args, cwd=folder, env={**os.environ, "TEST_MARK": mark})
    assert result.returncode == code, result.stderr
    assert listing(folder) == before  # the checkpoints went to the runs' private folders
    assert workers(mark) == set()  # the killed run took its process group with it
    return result.report["resume"]


def lost(resume: dict) -> list[str]:
    return [x["state"] for x in resume["not_restored"]]


def test_a_training_without_checkpoints_starts_over_and_is_told_how_to_checkpoint(folder):
    resume = resume_check(folder, "--resume", "no_checkpoint.py")  # the middle: step 16 of 32
    assert (resume["verdict"], resume["stopped_after"], resume["resumed_from"]) == ("starts_over", 16, 0)
    assert resume["resumed_steps"] == 32 and resume["final_identical"]  # all of it again, and the same model
    assert lost(resume) == ["checkpoint"] and "wrote no file" in resume["not_restored"][0]["evidence"]
    assert "BackupAndRestore" in resume["not_restored"][0]["fix"]


def test_backup_and_restore_at_epoch_ends_replays_the_epoch_it_stopped_in_exactly(folder):
    resume = resume_check(folder, "--resume-at", "12", "backup_each_epoch.py")
    assert (resume["verdict"], resume["resumed_from"], resume["replayed"]) == ("replays", 8, [9, 12])
    assert resume["final_identical"] and resume["first_difference"] is None and lost(resume) == []


def test_a_backup_every_4_batches_restarts_its_epoch_at_the_first_batch_and_fails_on_resume(folder, tmp_path):
    junit, page = tmp_path / "junit.xml", tmp_path / "report.html"
    resume = resume_check(
        folder,
        "--resume-at",
        "12",
        "--fail-on",
        "resume",
        "-f",
        f"junit={junit}",
        "-f",
        f"html={page}",
        "backup_every_4_batches.py",
        code=1,
    )
    assert (resume["verdict"], resume["resumed_from"], resume["first_difference"]) == ("different_model", 12, 13)
    assert lost(resume) == ["input_batch"]
    evidence = resume["not_restored"][0]["evidence"]
    assert "at step 9" in evidence and "BackupAndRestore(save_freq=4)" in evidence  # the epoch's first batch again
    assert 'name="resume pair' in junit.read_text() and "<failure" in junit.read_text()
    shown = rendered(page, tmp_path)
    assert page_verdict(shown) == "reproducible under control — your own runs differ: resuming"
    assert "RESUMES WITH A DIFFERENT MODEL" in shown.dom


def test_weights_saved_without_the_optimizer_lose_its_iterations_and_slots(folder):
    resume = resume_check(folder, "--resume-at", "12", "weights_only.py")
    assert (resume["verdict"], resume["resumed_from"], resume["first_difference"]) == ("different_model", 8, 9)
    assert lost(resume) == ["optimizer_iterations", "optimizer_slots"]
    assert "were 0 as the resumed run began, 8 in the uninterrupted run" in resume["not_restored"][0]["evidence"]


def test_a_whole_model_saved_and_loaded_with_initial_epoch_replays_exactly_through_the_api(folder, monkeypatch):
    monkeypatch.chdir(folder)
    report = check(folder / "whole_model.py", quick=True, resume_at=12)
    result = report.resume
    assert (result.verdict, result.resumed_from, result.final_identical) == ("replays", 8, True)
    assert report.finding("resume").status == "none"


def test_dropout_without_its_generator_state_draws_other_masks_after_the_restart(folder):
    resume = resume_check(folder, "--resume-at", "12", "dropout.py")
    assert (resume["verdict"], resume["resumed_from"], resume["first_difference"]) == ("different_model", 8, 9)
    assert lost(resume) == ["layer_generators"]
    assert "seed_generator" in resume["not_restored"][0]["evidence"]


def test_a_custom_loop_checkpointing_model_optimizer_and_iterator_resumes_exactly_and_a_baseline_keeps_it(folder):
    made = reprokit("baseline", "--resume-at", "12", "custom_loop.py", cwd=folder)
    assert made.returncode == 0, made.stderr
    again = reprokit("check", "--baseline", "reprokit.lock.json", "-f", "json", "custom_loop.py", cwd=folder)
    assert again.returncode == 0, again.stderr
    doc = again.report
    assert doc["verdict"] == "matches_baseline" and "resumes exactly as recorded" in doc["baseline"]["message"]
    assert (doc["resume"]["verdict"], doc["resume"]["resumed_from"]) == ("resumes_exactly", 12)


def test_a_shuffling_pipeline_left_out_of_the_checkpoint_restarts_from_its_first_batch(folder):
    resume = resume_check(folder, "--resume-at", "12", "custom_loop.py", "--", "--iterator", "no")
    assert (resume["verdict"], resume["resumed_from"], resume["first_difference"]) == ("different_model", 12, 13)
    assert lost(resume) == ["input_batch"]
    assert "the batch the uninterrupted run trained on at step 1" in resume["not_restored"][0]["evidence"]
