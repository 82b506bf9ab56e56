"""Where runs execute: options, the package sent to other machines, environments that cannot be compared."""

from __future__ import annotations

import dataclasses
import os

import pytest

from reprokit.core.errors import UsageError
from reprokit.report.studytext import placement
from reprokit.run.environment import environment_differences
from reprokit.run.execution import Execution, Executor
from reprokit.run.ray.package import package, unpack
from reprokit.run.ray.task import Origin, _remote_environment
from reprokit.run.workdirs import changes
from reprokit.study.result import VariantResult
from reprokit.study.stats import differs_by_group
from reprokit.study.store import RunResult

ENVIRONMENT = {
    "python": "3.11.7",
    "tensorflow": "2.21.0",
    "keras": "3.15.1",
    "cpu": "Intel(R) Xeon(R) Processor",
    "cpu_flags": ["avx2", "fma"],
    "intra_op_threads": 0,
    "op_determinism": True,
    "env": {"PYTHONHASHSEED": "1234", "CUDA_VISIBLE_DEVICES": "0"},
    "node": "box",
    "ray_node": "box/1a2b3c4d",
    "gpu_models": ["NVIDIA H100 80GB HBM3 9.0"],
}


def test_the_local_executor_is_the_default_and_ray_options_without_ray_are_refused():
    assert Execution().executor is Executor.LOCAL and not Execution().ray
    with pytest.raises(UsageError, match="--ray-address, --gpus-per-run only apply with --executor ray"):
        Execution(address="10.0.0.1:6379", gpus_per_run=1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cpus_per_run": 0}, "expected --cpus-per-run above 0, received 0"),
        ({"gpus_per_run": -1}, "expected --gpus-per-run of 0 or more, received -1"),
        ({"gpus_per_run": 1.5}, "a fraction of one GPU or a whole number, received 1.5"),
        ({"executor": "slurm"}, "expected executor local or ray, received 'slurm'"),
    ],
)
def test_bad_ray_options_are_one_line_usage_errors(change, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Execution(**{"executor": Executor.RAY, **change})


def test_fractions_of_a_gpu_share_it_and_whole_gpus_are_accepted():
    assert Execution(Executor.RAY, gpus_per_run=0.25).gpus_per_run == 0.25
    assert Execution("ray", cpus_per_run=0.5, gpus_per_run=2).executor is Executor.RAY  # type: ignore[arg-type]


def test_the_package_holds_the_folder_without_git_or_virtual_environments_and_unpacks_as_a_private_folder(tmp_path):
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / ".git").mkdir()
    (project / ".venv" / "lib").mkdir(parents=True)
    (project / "train.py").write_text("print('hi')\n")
    (project / "data" / "x.csv").write_text("1,2\n")
    (project / ".git" / "HEAD").write_text("ref: main\n")
    (project / ".venv" / "lib" / "big.so").write_bytes(b"\0" * 100)
    data, inside = package(project, project / "train.py")
    assert inside == "train.py"
    folder = unpack(data, tmp_path / "run")
    assert sorted(folder.copied) == ["data/x.csv", "train.py"]
    assert (folder.root / "data" / "x.csv").read_text() == "1,2\n"
    (folder.root / "model.keras").write_text("weights")  # what a run writes is told apart from what it got
    assert changes(folder).written == ("model.keras",)


def test_a_script_outside_the_folder_travels_in_the_package_beside_it(tmp_path):
    (tmp_path / "folder").mkdir()
    script = tmp_path / "elsewhere" / "train.py"
    script.parent.mkdir()
    script.write_text("print('hi')\n")
    data, inside = package(tmp_path / "folder", script)
    assert inside == ".reprokit-script/train.py"
    assert (unpack(data, tmp_path / "run").root / inside).read_text() == "print('hi')\n"


def test_a_folder_too_large_to_send_is_refused_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr("reprokit.run.ray.package.PACKAGE_LIMIT", 10)
    (tmp_path / "data.bin").write_bytes(b"\0" * 11)
    (tmp_path / "train.py").write_text("")
    with pytest.raises(ValueError, match="run reprokit from a folder that holds only what the script needs"):
        package(tmp_path, tmp_path / "train.py")


def test_a_node_reads_the_folder_in_place_only_on_the_commands_machine_with_the_script_unchanged(tmp_path):
    script = tmp_path / "train.py"
    script.write_text("a = 1\n")
    origin = Origin.here(tmp_path, script)
    assert origin.is_here()
    assert not dataclasses.replace(origin, hostname="another-machine").is_here()
    script.write_text("a = 2\n")  # the same path, other content: not the command's script
    assert not origin.is_here()


def test_on_another_machine_the_commands_compute_settings_win_and_rays_thread_setting_is_dropped(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what Ray sets in its workers
    monkeypatch.setenv("PATH", "/node/bin")
    command = {"PATH": "/laptop/bin", "PYTHONHASHSEED": "7", "TF_DETERMINISTIC_OPS": "1", "HOME": "/home/me"}
    env = _remote_environment(command)
    assert env["PATH"] == "/node/bin" and env["PYTHONHASHSEED"] == "7" and env["TF_DETERMINISTIC_OPS"] == "1"
    assert "OMP_NUM_THREADS" not in env
    assert env.get("HOME") == os.environ.get("HOME")


def test_runs_on_one_machine_compare_whichever_gpu_of_it_they_got():
    other_gpu = {**ENVIRONMENT, "env": {**ENVIRONMENT["env"], "CUDA_VISIBLE_DEVICES": "3"}}
    assert environment_differences(ENVIRONMENT, other_gpu) == ()


def test_runs_on_other_nodes_cpus_or_thread_settings_are_never_compared_bitwise():
    elsewhere = {**ENVIRONMENT, "ray_node": "box/99999999", "cpu_flags": ["avx2"], "intra_op_threads": 1}
    assert environment_differences(ENVIRONMENT, elsewhere) == ("cpu_flags", "intra_op_threads", "ray_node")
    hashseed = {**ENVIRONMENT, "env": {**ENVIRONMENT["env"], "TF_ENABLE_ONEDNN_OPTS": "0"}}
    assert environment_differences(ENVIRONMENT, hashseed) == ("env TF_ENABLE_ONEDNN_OPTS",)


def test_a_metric_that_differs_by_node_is_flagged_and_one_that_does_not_is_not():
    assert differs_by_group([[0.90, 0.91, 0.905, 0.902], [0.80, 0.81, 0.805, 0.79]]) < 0.05
    assert differs_by_group([[0.90, 0.81, 0.85, 0.88], [0.86, 0.80, 0.91, 0.83]]) > 0.05
    assert differs_by_group([[0.9, 0.8]]) is None  # one node: nothing to test
    assert differs_by_group([[0.9, 0.9], [0.9, 0.9]]) is None  # every value the same


def variant(runs: list[RunResult], by_node: tuple[tuple[str, float], ...] = ()) -> VariantResult:
    nodes: dict[str, int] = {}
    for r in runs:
        nodes[r.environment["ray_node"]] = nodes.get(r.environment["ray_node"], 0) + 1
    where = tuple(nodes.items())
    return VariantResult("train.py", "train.py", (), None, (), tuple(runs), (), None, None, False, where, by_node)


def test_a_study_report_lists_its_nodes_names_every_retry_and_warns_of_a_metric_that_differs_by_node():
    runs = [
        RunResult(1234, environment={"ray_node": "a/1"}),
        RunResult(1235, environment={"ray_node": "b/2"}, retries=("The node died",)),
        RunResult(1236, environment={"ray_node": "b/2"}),
    ]
    lines = placement([variant(runs, (("accuracy", 0.0123),))])
    assert lines[0] == ("Ran on 2 Ray node(s): a/1 (1 runs), b/2 (2 runs).", False)
    assert lines[1][0].startswith("Ray lost the run of train.py, seed 1235 once (The node died) and ran it again")
    assert lines[2] == (
        "train.py: accuracy differs by node (Kruskal–Wallis p = 0.0123): the nodes compute differently "
        "(CPU, GPU, versions); compare runs made on one node, or give the nodes one environment.",
        True,
    )


def test_a_local_study_on_one_machine_says_nothing_about_nodes():
    runs = [RunResult(1234, environment={"node": "box"}), RunResult(1235, environment={"node": "box"})]
    local = VariantResult("t", "t", (), None, (), tuple(runs), (), None, None, False, (("box", 2),), ())
    assert placement([local]) == []


def test_runs_grow_their_gpu_memory_and_take_the_gpu_they_are_given():
    from reprokit.core.controls import Controls, child_environment

    env = child_environment(Controls(1, True), {"CUDA_VISIBLE_DEVICES": "0,1"}, gpu="1")
    assert env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true" and env["CUDA_VISIBLE_DEVICES"] == "1"
    mine = child_environment(Controls(1, True), {"TF_FORCE_GPU_ALLOW_GROWTH": "false"})
    assert mine["TF_FORCE_GPU_ALLOW_GROWTH"] == "false"  # the user's own setting wins


def test_no_gpus_are_offered_when_cuda_is_hidden():
    from reprokit.core.controls import visible_gpus

    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"}) == [] and visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
