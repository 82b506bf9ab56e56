"""Variants of a training that ``reprokit compare`` runs side by side, across seeds.

A variant is a script, its arguments and the folder its runs start in. There
are three ways to name them on the command line:

1. scripts: ``reprokit compare a.py b.py``;
2. command lines, one quoted per variant (split as a shell would, with
   :func:`shlex.split`; the first word is the script, the rest its arguments):
   ``reprokit compare "train.py --lr 0.1" "train.py --lr 0.01"``;
3. one script against a git ref: ``reprokit compare train.py --against main``
   compares the script as it is at ``main`` (the baseline, first) with the
   script as it is in the working tree (second).

With several ``--backend`` options every variant runs on each backend
(``reprokit compare train.py --backend tensorflow --backend jax``): the
variants are then the scripts times the backends, labelled
``train.py [jax]``, and one script is enough.

Arguments after ``--`` are appended to every variant (``reprokit compare a.py
b.py -- --epochs 2``); labels leave them out, since they do not tell variants apart.

A variant at a ref runs in a temporary ``git worktree`` of that commit, outside
the repository: the user's working tree, index, HEAD and branches are never
touched, and the worktree is removed afterwards. It holds *the ref's tracked
files, and your untracked ones*: every file or folder git does not track
(untracked or ignored: data sets, downloaded weights), that the ref does not
have at the same path, is linked into the worktree and read where it lies.
The runs start in the worktree's copy of the current directory; when the
current directory lies outside the repository they start in the current
directory itself, as the working tree's variant does, so that only the code differs.
Git hooks do not run in the worktree.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from reprokit.core.backends import Backend
from reprokit.core.errors import UsageError

_REPO_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX", "GIT_COMMON_DIR")
"""Variables a git hook may have set that would point our git calls at another repository or index."""


@dataclass(frozen=True)
class Variant:
    """One variant of the training to compare.

    Attributes:
        label: how reports name it: the spec as written, without the common
            arguments (``train.py --lr 0.1``), or for a ref the ref as written
            and its short commit (``train.py @ main (3f2a1b9)``).
        script: the script to run (for a ref: its path inside the temporary worktree).
        args: its arguments, the common ones appended.
        folder: the folder its runs start in (mirrored privately by reprokit);
            None: the current directory.
        commit: the full commit SHA, for a variant at a ref.
        backend: the Keras backend it trains on (None: the command's).
    """

    label: str
    script: Path
    args: tuple[str, ...]
    folder: Path | None = None
    commit: str | None = None
    backend: Backend | None = None


def across_backends(variants: Sequence[Variant], backends: Sequence[Backend]) -> list[Variant]:
    """Every variant on every backend, variant by variant (``train.py [tensorflow]``, ``train.py [jax]``, …)."""
    return [
        Variant(f"{v.label} [{b.value}]", v.script, v.args, v.folder, v.commit, b) for v in variants for b in backends
    ]


def label_of(spec: str) -> str:
    """The normalized label of a variant spec: its words joined back as a shell would quote them."""
    return shlex.join(_words(spec))


def parse_variants(specs: Sequence[str], common_args: Sequence[str] = (), minimum: int = 2) -> list[Variant]:
    """The variants named by ``specs`` (scripts, or quoted command lines), ``common_args`` appended to each.

    Scripts are not checked to exist; the caller validates them. ``minimum``
    is 1 when every variant runs on several backends.

    Raises:
        UsageError: fewer than ``minimum`` specs, an empty one, unbalanced quotes, or
            two specs naming the same script (resolved) with the same arguments.
    """
    if len(specs) < minimum:
        received = ", ".join(repr(s) for s in specs) or "none"
        raise UsageError(
            "expected at least two variants to compare (or one with --against REF, or with two --backend), "
            f"received {received}"
        )
    variants = [_variant(spec, common_args) for spec in specs]
    seen: dict[tuple[Path, tuple[str, ...]], str] = {}
    for variant in variants:
        key = (variant.script.resolve(), variant.args)
        if key in seen:
            raise UsageError(
                f"expected different variants, received the same one twice: {seen[key]!r} and {variant.label!r}"
            )
        seen[key] = variant.label
    return variants


@contextmanager
def against(ref: str, specs: Sequence[str], common_args: Sequence[str] = ()) -> Iterator[list[Variant]]:
    """``--against REF``: the one variant in ``specs`` at ``ref`` (the baseline), then as in the working tree.

    Raises:
        UsageError: not exactly one spec, or any error of :func:`at_ref`.
    """
    if len(specs) != 1:
        received = ", ".join(repr(s) for s in specs) or "none"
        raise UsageError(f"expected one variant with --against, received {received}")
    current = _variant(specs[0], common_args)
    with at_ref(ref, specs[0], common_args) as baseline:
        yield [baseline, current]


@contextmanager
def at_ref(ref: str, spec: str, common_args: Sequence[str] = ()) -> Iterator[Variant]:
    """The variant ``spec`` as it is at the git ref ``ref``, in a temporary worktree removed on exit.

    The worktree holds the ref's tracked files, and your untracked ones (see
    the module docstring); the variant's script is the same path relative to
    the repository's root, inside the worktree.

    Raises:
        UsageError: git is missing, the script is not in a git repository, the
            ref does not name a commit, the script does not exist at the ref,
            or git fails (with git's own first line of error).
    """
    current = _variant(spec, common_args)
    if not ref or ref.startswith("-"):
        raise UsageError(f"expected a git ref (a branch, a tag, a commit), received {ref!r}")
    script_dir = Path(os.path.realpath(os.path.abspath(current.script.parent)))
    if not script_dir.is_dir():
        raise UsageError(f"expected a script in a git repository, received {current.script} (no such folder)")
    not_in_git = f"expected a script in a git repository, received {current.script} (not in one)"
    root = Path(_git(script_dir, "rev-parse", "--show-toplevel", error=not_in_git).strip())
    relative = (script_dir / current.script.name).relative_to(root)
    resolved = _run_git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    sha = resolved.stdout.strip() if resolved.returncode == 0 else ""
    if not sha:
        raise UsageError(f"expected a git ref naming a commit, received {ref!r}")
    _git(root, "cat-file", "-e", f"{sha}:{relative.as_posix()}", error=f"{current.script} does not exist at {ref}")
    short = _git(root, "rev-parse", "--short", sha).strip()
    cwd = Path(os.path.realpath(Path.cwd()))

    temp = Path(os.path.realpath(tempfile.mkdtemp(prefix="reprokit-ref-")))
    tree = temp / "tree"
    try:
        _git(root, "worktree", "add", "--detach", str(tree), sha)
        _link_untracked(root, tree, temp)
        folder = None
        if cwd == root or root in cwd.parents:
            folder = tree / cwd.relative_to(root)
            folder.mkdir(parents=True, exist_ok=True)
        yield Variant(f"{current.label} @ {ref} ({short})", tree / relative, current.args, folder, sha)
    finally:
        _remove_worktree(root, tree, temp)


def _words(spec: str) -> list[str]:
    try:
        words = shlex.split(spec)
    except ValueError as e:
        raise UsageError(f"expected a variant with balanced quotes, received {spec!r} ({e})") from None
    if not words:
        raise UsageError(f"expected a script (and its arguments) in every variant, received {spec!r}")
    return words


def _variant(spec: str, common_args: Sequence[str]) -> Variant:
    words = _words(spec)
    return Variant(shlex.join(words), Path(words[0]), (*words[1:], *common_args))


def _link_untracked(root: Path, tree: Path, temp: Path) -> None:
    """Links into ``tree`` what git does not track in ``root`` (untracked and ignored), where the ref has nothing."""
    # Without --exclude-standard, --others lists untracked and ignored entries alike; --directory
    # lists a folder git tracks nothing in as one entry, and no entry lies below another.
    listed = _git(root, "ls-files", "--others", "--directory", "-z")
    for entry in filter(None, listed.split("\0")):
        relative = Path(entry.rstrip("/"))
        source = root / relative
        if ".git" in relative.parts or Path(os.path.realpath(source)) in (temp, *temp.parents):
            continue  # git's own, or our worktree itself, when the temporary folder lies inside the repository
        target = tree / relative
        if os.path.lexists(target):
            continue  # the ref's own file wins
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(source, target_is_directory=source.is_dir())
        except OSError:
            continue  # e.g. the ref has a file where the user has a folder: the ref's wins


def _remove_worktree(root: Path, tree: Path, temp: Path) -> None:
    """Removes the worktree and forgets it; never raises, so as not to hide what ended the block."""
    with suppress(UsageError):  # e.g. it was never added, or is gone already: prune forgets it
        _git(root, "worktree", "remove", "--force", str(tree))
    shutil.rmtree(temp, ignore_errors=True)  # unlinks links, never follows them
    with suppress(UsageError):
        _git(root, "worktree", "prune")


def _git(cwd: Path, *args: str, error: str | None = None) -> str:
    """Runs git in ``cwd`` and returns its output; a failure raises UsageError with ``error``, else git's first line."""
    done = _run_git(cwd, *args)
    if done.returncode == 0:
        return done.stdout
    if error is not None:
        raise UsageError(error)
    first = next((line for line in done.stderr.splitlines() if line.strip()), f"exit status {done.returncode}")
    raise UsageError(f"git {args[0]} failed: {first.strip()}")


def _run_git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs git in ``cwd``, hooks off, never prompting, in English, whatever repository a calling hook set."""
    env = {k: v for k, v in os.environ.items() if k not in _REPO_ENV} | {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    command = ["git", "-C", str(cwd), "-c", f"core.hooksPath={os.devnull}", *args]
    try:
        return subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    except FileNotFoundError:
        raise UsageError("expected git on the PATH (to run a variant at a ref), received none") from None
