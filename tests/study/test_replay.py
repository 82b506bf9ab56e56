"""The replay command of a seed study: every option that decides a run, written back so that it parses to the same run.

Pure logic: the command line is parsed by the real CLI and the study it would
run is captured, never trained (the e2e test in ``test_store_reuse.py`` trains one).
"""

from __future__ import annotations

import shlex
from dataclasses import replace
from pathlib import Path

import pytest

from reprokit.cli import study as studycli
from reprokit.cli.app import main
from reprokit.study.replay import Replay
from reprokit.study.running import StudyOptions, variant_key


@pytest.fixture
def captured(monkeypatch):
    """(target, options, metric, mode) of each ``reprokit seeds`` the CLI would run, instead of running it."""
    seen: list[tuple] = []
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")

    def capture(target, options, metric=None, mode=None, *args, **kwargs):
        seen.append((target, options, metric, mode))
        raise SystemExit(0)

    monkeypatch.setattr(studycli, "run_seeds", capture)
    return seen


def seeds(*words: str) -> None:
    with pytest.raises(SystemExit):
        main(["seeds", *words])


def test_a_replay_command_parses_back_to_the_same_run_with_every_option_the_study_was_given(
    captured, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    Path("my train.py").write_text("print('trains')\n")
    folder = tmp_path / "study folder"
    options = ["--seed", "40", "--seeds", "3", "--study-dir", str(folder), "--epochs", "3", "--batch-size", "8"]
    options += ["--timeout", "90.5", "--jobs", "2", "--backend", "tensorflow", "--metric", "val_loss", "--mode", "min"]
    seeds("my train.py", *options, "--", "--name", "it's a run", "--lr=0.1")
    target, study, metric, mode = captured[0]

    command = Replay.of(study, Path.cwd(), metric, mode).command(str(target.script), target.args, 41)
    cd, where, and_, *words = shlex.split(command)
    assert (cd, where, and_) == ("cd", str(tmp_path), "&&") and words[:2] == ["reprokit", "seeds"]
    seeds(*words[2:])
    replayed, again, *asked = captured[1]

    assert (replayed.script, replayed.args) == (Path("my train.py"), ("--name", "it's a run", "--lr=0.1"))
    assert (again.seed, again.seeds, again.repeat, again.fresh) == (41, 1, False, True)  # one run, trained again
    assert again.folder == folder and asked == ["val_loss", "min"]
    assert again.settings == replace(study.settings, jobs=None)  # --jobs decides no result
    assert variant_key(replayed, again.settings) == variant_key(target, study.settings)  # the same stored run


def test_a_replay_on_ray_names_the_cluster_and_what_each_run_was_given(captured, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("t.py").write_text("print('trains')\n")
    ray = ["--executor", "ray", "--ray-address", "10.0.0.1:6379", "--cpus-per-run", "2", "--gpus-per-run", "0.5"]
    seeds("t.py", *ray)
    _, study, metric, mode = captured[0]
    words = shlex.split(Replay.of(study, Path.cwd(), metric, mode).command("t.py", (), 1234))[3:]
    assert "--" not in words and "--metric" not in words  # no script arguments, no --metric: none given
    seeds(*words[2:])
    assert captured[1][1].settings.execution == study.settings.execution


def test_a_report_without_its_options_still_names_its_study_folder():
    command = Replay(Path("/tmp/a folder")).command("t.py", ("--x", "1"), 7)
    assert command == "reprokit seeds t.py --seed 7 --seeds 1 --no-repeat --fresh --study-dir '/tmp/a folder' -- --x 1"


def test_a_replay_sets_the_environment_variables_of_the_study_folders_key_first(monkeypatch):
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false --xla_force_host_platform_device_count=2")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    replay = Replay.of(StudyOptions(folder=Path("/tmp/s")), None)
    words = shlex.split(replay.command("t.py", (), 7))
    assert sorted(words[:2]) == [
        "TF_ENABLE_ONEDNN_OPTS=0",
        "XLA_FLAGS=--xla_cpu_enable_fast_math=false --xla_force_host_platform_device_count=2",
    ]
    assert words[2:4] == ["reprokit", "seeds"] and not any(w.startswith("OMP_NUM_THREADS") for w in words)
