"""Variants of a training to compare: parsing them, and a script at a git ref (real git, no training)."""

import os
import subprocess
from pathlib import Path

import pytest

from reprokit.core.errors import UsageError
from reprokit.study.variants import Variant, against, at_ref, label_of, parse_variants

OLD = "print('old')\n"
NEW = "print('new')\n"


def git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, env=env).stdout


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A repository whose train.py changed in its last commit, with an untracked data.csv and an ignored cache/.

    settings.json was committed first, then removed from git; the user's untracked one is at its place.
    """
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.name", "Test")
    git(repo, "config", "user.email", "test@example.com")
    (repo / ".gitignore").write_text("cache/\n")
    (repo / "train.py").write_text(OLD)
    (repo / "settings.json").write_text("committed")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    git(repo, "rm", "-q", "settings.json")
    (repo / "train.py").write_text(NEW)
    (repo / "added.py").write_text("print('added')\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "second")
    (repo / "data.csv").write_text("1,2\n")
    (repo / "settings.json").write_text("untracked")
    (repo / "cache").mkdir()
    (repo / "cache" / "weights.h5").write_text("w")
    monkeypatch.chdir(repo)
    return repo


def state(repo: Path) -> tuple[str, str, str]:
    return git(repo, "status", "--porcelain"), git(repo, "worktree", "list"), git(repo, "rev-parse", "HEAD")


def test_two_scripts_are_two_variants_in_the_current_directory():
    assert parse_variants(["a.py", "b.py"]) == [Variant("a.py", Path("a.py"), ()), Variant("b.py", Path("b.py"), ())]


def test_quoted_command_lines_are_one_script_with_its_arguments():
    first, second = parse_variants(["train.py --lr 0.1", "train.py  --lr '0.01'"])
    assert (first.script, first.args, first.label) == (Path("train.py"), ("--lr", "0.1"), "train.py --lr 0.1")
    assert (second.args, second.label) == (("--lr", "0.01"), "train.py --lr 0.01")


def test_common_arguments_are_appended_to_every_variant_but_left_out_of_labels():
    variants = parse_variants(["a.py", "b.py --x 1"], ["--epochs", "2"])
    assert [v.args for v in variants] == [("--epochs", "2"), ("--x", "1", "--epochs", "2")]
    assert [v.label for v in variants] == ["a.py", "b.py --x 1"]


def test_a_label_is_the_spec_quoted_as_a_shell_would():
    assert label_of('train.py   --name "a b"') == "train.py --name 'a b'"


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["a.py"], "at least two variants"),
        ([], "received none"),
        (["a.py", "  "], "expected a script"),
        (["a.py", "b.py --name 'unclosed"], "balanced quotes"),
        (["a.py --lr 1", "sub/../a.py  --lr 1"], "'a.py --lr 1' and 'sub/../a.py --lr 1'"),
    ],
)
def test_bad_variants_are_refused_in_one_line(specs, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=message) as raised:
        parse_variants(specs)
    assert str(raised.value).startswith("expected") and "\n" not in str(raised.value)


def test_the_same_script_with_other_arguments_is_another_variant():
    assert len(parse_variants(["a.py --lr 1", "a.py --lr 2"])) == 2


def test_a_script_at_a_ref_is_the_old_one_and_the_users_repository_is_untouched(repo):
    before = state(repo)
    with at_ref("HEAD~1", "train.py --lr 0.1", ["--epochs", "2"]) as variant:
        assert variant.script.read_text() == OLD
        assert variant.script.name == "train.py" and not variant.script.is_relative_to(repo)
        assert variant.args == ("--lr", "0.1", "--epochs", "2")
        assert variant.commit == git(repo, "rev-parse", "HEAD~1").strip()
        assert variant.folder == variant.script.parent
        assert (repo / "train.py").read_text() == NEW
        assert git(repo, "worktree", "list").count("\n") == 2  # ours, while it lasts
        during = state(repo)
    assert during[0] == before[0] and during[2] == before[2]
    assert state(repo) == before
    assert git(repo, "worktree", "list").count("\n") == 1


def test_the_users_untracked_and_ignored_files_are_linked_into_the_ref_and_survive_it(repo):
    with at_ref("HEAD~1", "train.py") as variant:
        folder = variant.folder
        assert folder is not None
        assert (folder / "data.csv").is_symlink() and (folder / "data.csv").read_text() == "1,2\n"
        assert (folder / "cache").is_symlink() and (folder / "cache" / "weights.h5").read_text() == "w"
        assert not (folder / "added.py").exists()  # tracked only after the ref: not the ref's, not linked
        assert (folder / "settings.json").read_text() == "committed"  # the ref's own file wins
    assert (repo / "data.csv").read_text() == "1,2\n" and (repo / "cache" / "weights.h5").read_text() == "w"


@pytest.mark.parametrize("interruption", [RuntimeError, KeyboardInterrupt])
def test_the_temporary_worktree_is_gone_after_the_block_even_when_it_raises(repo, interruption):
    with pytest.raises(interruption), at_ref("HEAD~1", "train.py") as variant:
        temp = variant.script.parent.parent
        assert temp.name.startswith("reprokit-ref-") and temp.is_dir()
        raise interruption("the comparison stopped")
    assert not temp.exists()
    assert git(repo, "worktree", "list").count("\n") == 1


def test_the_label_names_the_ref_as_written_and_its_short_commit(repo):
    short = git(repo, "rev-parse", "--short", "HEAD~1").strip()
    with at_ref("HEAD~1", "./train.py  --lr 0.1") as variant:
        assert variant.label == f"./train.py --lr 0.1 @ HEAD~1 ({short})"


def test_runs_at_a_ref_start_in_the_worktrees_copy_of_the_current_directory(repo, monkeypatch):
    (repo / "sub").mkdir()
    monkeypatch.chdir(repo / "sub")
    with at_ref("HEAD", "../train.py") as variant:
        assert variant.folder == variant.script.parent / "sub"
        assert variant.folder.is_dir()


def test_against_a_ref_is_the_baseline_first_then_the_working_tree(repo):
    with against("HEAD~1", ["train.py"], ["--epochs", "1"]) as (baseline, current):
        assert baseline.script.read_text() == OLD and baseline.commit is not None
        assert current == Variant("train.py", Path("train.py"), ("--epochs", "1"))
    with pytest.raises(UsageError, match="one variant with --against"):
        against("HEAD~1", ["a.py", "b.py"]).__enter__()


def test_a_script_outside_any_repository_cannot_be_taken_at_a_ref(tmp_path, monkeypatch):
    (tmp_path / "alone").mkdir()
    (tmp_path / "alone" / "train.py").write_text(NEW)
    monkeypatch.chdir(tmp_path / "alone")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # should tmp_path lie inside a repository
    with pytest.raises(UsageError, match="in a git repository"), at_ref("HEAD", "train.py"):
        pass


def test_an_unknown_ref_is_refused(repo):
    refused = "expected a git ref naming a commit, received 'no-such-branch'"
    with pytest.raises(UsageError, match=refused), at_ref("no-such-branch", "train.py"):
        pass
    assert git(repo, "worktree", "list").count("\n") == 1


def test_a_script_added_after_the_ref_does_not_exist_at_it(repo):
    with pytest.raises(UsageError, match=r"^added.py does not exist at HEAD~1$"), at_ref("HEAD~1", "added.py"):
        pass
    assert git(repo, "worktree", "list").count("\n") == 1
