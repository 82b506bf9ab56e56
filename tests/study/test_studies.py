"""Seed studies end to end: tiny real trainings in real subprocesses, through the CLI as a user runs it."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from xml.etree import ElementTree as ET

import psutil
import pytest

from helpers import TINY, interruptible, reprokit, words

pytestmark = pytest.mark.e2e


UNSEEDED = TINY.replace(
    "digits = load_digits()", "digits = load_digits()\nnp.random.default_rng().shuffle(digits.target)"
)


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    script = tmp_path / "tiny.py"
    script.write_text(TINY)
    return script


def study_dir(tmp_path: Path) -> str:
    return str(tmp_path / "studies")


def test_a_seed_study_reports_the_spread_names_a_failed_run_and_leaves_a_nan_out(tmp_path, tiny):
    done = reprokit(
        "seeds",
        tiny,
        "--seeds",
        "4",
        "--study-dir",
        study_dir(tmp_path),
        "-f",
        "json",
        "--",
        "--fail-seed",
        "1236",
        "--nan-seed",
        "1237",
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["kind"] == "seeds" and doc["pinned"] is True and doc["failed_runs"] == 1
    failed = [r for r in doc["runs"] if not r["ok"]]
    assert [r["seed"] for r in failed] == [1236] and "this seed is broken: 1236" in failed[0]["error"]
    loss = next(m for m in doc["metrics"] if m["name"] == "loss")
    assert loss["n"] == 2 and {m["seed"] for m in loss["left_out"]} == {1236, 1237}
    replay = doc["replay_command"]
    assert f"reprokit seeds {tiny} --seed 1234 --seeds 1 --no-repeat --fresh" in replay
    assert replay.endswith("-- --fail-seed 1236 --nan-seed 1237")
    assert doc["agreement"]["pairs"] >= 1


def test_a_script_with_uncontrolled_randomness_is_flagged_as_not_pinned_by_the_seed(tmp_path):
    script = tmp_path / "unseeded.py"
    script.write_text(UNSEEDED)
    wide = {**os.environ, "COLUMNS": "400"}  # the command it suggests holds a long path: on one line
    done = reprokit("seeds", script, "--seeds", "1", "--study-dir", study_dir(tmp_path), env=wide)  # S, repeated
    assert done.returncode == 1, done.stderr
    text = words(done.stdout)
    assert "THE SEED DOES NOT PIN THIS SCRIPT" in text and f"reprokit check {script}" in text


def test_an_interrupted_study_resumes_where_it_stopped_and_more_seeds_run_only_the_new_ones(tmp_path, tiny):
    folder = study_dir(tmp_path)
    command = ["seeds", str(tiny), "--seeds", "3", "--jobs", "2", "--study-dir", folder]
    proc = subprocess.Popen(interruptible(*command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not list(Path(folder).glob("*/seed-*.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    kept = len(list(Path(folder).glob("*/seed-*.json")))
    assert 1 <= kept < 4  # of 3 seeds and the repeat of the first

    resumed = reprokit("seeds", tiny, "--seeds", "3", "--jobs", "2", "--study-dir", folder, "--resume", "-f", "json")
    assert resumed.returncode == 0, resumed.stderr
    doc = json.loads(resumed.stdout)
    assert len(doc["runs"]) == 4 and sum(r["cached"] for r in doc["runs"]) == kept

    more = reprokit("seeds", tiny, "--seeds", "4", "--study-dir", folder, "--resume", "-f", "json")
    runs = json.loads(more.stdout)["runs"]
    assert [r["seed"] for r in runs if not r["cached"]] == [1237]  # only the new seed ran
    assert json.loads(more.stdout)["metrics"][0]["n"] == 4


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_against_an_earlier_commit_runs_the_old_script_in_a_worktree_and_leaves_the_repository_alone(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "t@example.com")
    git(repo, "config", "user.name", "t")
    (repo / "train.py").write_text(TINY)
    git(repo, "add", "train.py")
    git(repo, "commit", "-qm", "sixteen hidden units")
    (repo / "train.py").write_text(TINY.replace("default=16", "default=1"))
    git(repo, "commit", "-qam", "one hidden unit")
    before = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain"], check=True, capture_output=True, text=True
    ).stdout
    json_path, junit_path, md_path = tmp_path / "r.json", tmp_path / "r.xml", tmp_path / "r.md"
    formats = ["-f", f"json={json_path}", "-f", f"junit={junit_path}", "-f", f"markdown={md_path}", "-f", "rich"]
    done = reprokit(
        "compare",
        "train.py",
        "--against",
        "HEAD~1",
        "--seeds",
        "4",
        "--unpaired",  # 4 vs 4: the fewest with which an exact test of one comparison reaches p < 0.05
        "--fail-if",
        "worse",
        "--study-dir",
        study_dir(tmp_path),
        *formats,
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert done.returncode == 1, done.stderr  # --fail-if worse
    doc = json.loads(json_path.read_text())
    assert doc["kind"] == "compare" and doc["metric"] == "evaluate_accuracy" and doc["mode"] == "max"
    old, new = doc["variants"]
    assert "train.py @ HEAD~1" in old["label"] and old["commit"] and new["commit"] is None
    (worse,) = doc["comparisons"]  # 1 hidden unit loses to 16, on 4 vs 4 unpaired seeds
    assert worse["outcome"] == "worse" and worse["ci_high"] < 0 and worse["p_adjusted"] < 0.05
    assert worse["n_a"] == worse["n_b"] == 4 and all(v["failed_runs"] == 0 for v in doc["variants"])
    assert ET.parse(junit_path).getroot().find(".//failure") is not None
    assert "| worse |" in md_path.read_text() and "B vs A: WORSE" in words(done.stdout)
    after = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain"], check=True, capture_output=True, text=True
    ).stdout
    worktrees = subprocess.run(
        ["git", "-C", str(repo), "worktree", "list"], check=True, capture_output=True, text=True
    ).stdout
    assert after == before and len(worktrees.splitlines()) == 1
