"""Private working folders of runs, on real files (no training)."""

from reprokit.run.workdirs import COPY_LIMIT, carry, changes, mirror


def user_folder(tmp_path):
    folder = tmp_path / "project"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "small.csv").write_text("1,2\n")
    (folder / "big.npy").write_bytes(b"\0" * (COPY_LIMIT + 1))
    (folder / ".git").mkdir()
    return folder


def test_small_files_are_copied_large_ones_and_dot_git_linked(tmp_path):
    folder = user_folder(tmp_path)
    mirrored = mirror(folder, tmp_path / "run" / "cwd")
    root = mirrored.root
    assert (root / "data" / "small.csv").read_text() == "1,2\n" and not (root / "data" / "small.csv").is_symlink()
    assert (root / "big.npy").is_symlink() and (root / ".git").is_symlink()
    assert set(mirrored.copied) == {"data/small.csv"} and set(mirrored.linked) == {"big.npy"}


def test_what_a_run_writes_is_listed_and_never_reaches_the_users_folder(tmp_path):
    folder = user_folder(tmp_path)
    mirrored = mirror(folder, tmp_path / "run" / "cwd")
    (mirrored.root / "ckpt.weights.h5").write_bytes(b"w")
    (mirrored.root / "data" / "small.csv").write_text("changed\n")
    assert changes(mirrored).written == ("ckpt.weights.h5", "data/small.csv")
    assert (folder / "data" / "small.csv").read_text() == "1,2\n"
    assert not (folder / "ckpt.weights.h5").exists()
    (folder / "big.npy").write_bytes(b"x")  # through the link, as a run writing over a large file would
    assert changes(mirrored).user_files_changed == ("big.npy",)


def test_a_second_run_starts_among_what_the_first_wrote(tmp_path):
    folder = user_folder(tmp_path)
    first = mirror(folder, tmp_path / "first")
    (first.root / "ckpt.weights.h5").write_bytes(b"w")
    second = mirror(folder, tmp_path / "second")
    carry(changes(first).written, first.root, second.root)
    assert (second.root / "ckpt.weights.h5").read_bytes() == b"w"


def test_the_checks_own_folder_below_the_users_is_never_mirrored(tmp_path):
    folder = user_folder(tmp_path)
    workdir = folder / "reprokit-check"
    (workdir / "controlled-1" / "cwd").mkdir(parents=True)
    (workdir / "controlled-1" / "cwd" / "ckpt.weights.h5").write_bytes(b"another run's")
    mirrored = mirror(folder, workdir / "controlled-2" / "cwd", skip=workdir)
    assert not (mirrored.root / "reprokit-check").exists()
    assert (mirrored.root / "data" / "small.csv").exists()
