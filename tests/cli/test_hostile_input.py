"""Hostile input never costs the user a file, never hangs and never ends in a traceback (issue 28, no training).

Every refusal here comes before any run: the commands end in well under a
second, and the user's folder is as it was.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import replace

import numpy as np
import pytest

from helpers import recorded_report
from reprokit.cli.app import main, terminated_as_interrupted
from reprokit.core.errors import ReprokitWarning, Terminated
from reprokit.core.vocabulary import fail_on_sources
from reprokit.report.ci import markdown
from reprokit.study.store import FORMAT, RunResult, StudyStore

SCRIPT = "import keras\nprint('a training')\n"


def snapshot(folder):
    return {p.name: (p.read_bytes(), p.stat().st_mode) for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize(
    "args",
    [
        ["check", "{s}", "-f", "json", "-o", "{s}"],
        ["check", "{s}", "-f", "json=data.csv"],
        ["check", "{s}", "-o", "nope/sub/x.json", "-f", "json"],
        ["check", "{s}", "-o", "adir", "-f", "json"],
        ["baseline", "{s}", "-o", "{s}"],
        ["seeds", "{s}", "-o", "{s}"],
        ["compare", "{s} --lr 0.1", "{s}", "-f", "markdown=data.csv"],
        ["tune", "{s}", "--grid", "lr=1,2", "-f", "json={s}"],
        ["check", "{s}", "--baseline", "data.csv", "-f", "json=data.csv"],
        ["check", "{s}", "--baseline", "{s}", "--update-baseline"],  # rewritten on purpose, but never a source
    ],
)
def test_no_command_writes_over_the_script_or_a_file_of_its_folder_and_it_says_so_before_any_run(
    args, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.py").write_text(SCRIPT)
    (tmp_path / "data.csv").write_text("a,b\n")
    (tmp_path / "adir").mkdir()
    before = snapshot(tmp_path)
    assert main([a.replace("{s}", "t.py") for a in args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("reprokit: error: "), err
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "nope").exists()


def test_a_fifo_is_named_as_such_and_never_opened_by_lint_check_or_align(tmp_path):
    os.mkfifo(tmp_path / "f.py")
    (tmp_path / "ok.py").write_text("import numpy as np\nrng = np.random.default_rng()\n")
    commands = [
        ["lint", "f.py"],
        ["check", "f.py"],
        ["check", "ok.py", "--baseline", "f.py"],
        ["align", "f.py", "ok.py"],
    ]
    for args in commands:
        done = subprocess.run(
            [sys.executable, "-m", "reprokit", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, (args, done.stderr)
        assert "FIFO (named pipe)" in done.stderr and "Traceback" not in done.stderr
    linted = subprocess.run(  # a folder: the FIFO is passed over, the source linted
        [sys.executable, "-m", "reprokit", "lint", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert linted.returncode == 1 and "ok.py" in linted.stdout and "f.py" not in linted.stdout


def test_rich_markup_in_a_path_is_printed_as_text(capsys):
    assert main(["check", "a[/]tr[bold red].py"]) == 2
    assert capsys.readouterr().err.strip() == "reprokit: error: script not found: a[/]tr[bold red].py"


def test_markdown_escapes_html_newlines_and_pipes_from_the_users_names():
    report = recorded_report("seed")
    weight = '"><img src=x onerror=alert(1)>'
    comparisons = list(report.comparisons)
    seed = comparisons[2]
    comparisons[2] = replace(seed, divergence=replace(seed.divergence, variables=(weight,)))
    findings = tuple(replace(f, evidence=f"{f.evidence} (weight {weight}, a\nnew line)") for f in report.findings)
    hostile = replace(report, script="a\nb|`c`.py", comparisons=tuple(comparisons), findings=findings)
    text = markdown(hostile, fail_on_sources(["uncontrolled"]))
    outside_code = re.sub(r"(`+).*?\1", "", text)  # a code span shows its text as it is, never as HTML
    assert "<img" not in outside_code and "&lt;img src=x onerror=alert(1)&gt;" in text
    heading = text.splitlines()[0]
    assert heading.startswith("### ") and "a b\\|`c`.py" in heading  # one line, the pipe escaped
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert all(line.endswith("|") for line in rows)


def record(seed: int, **changes) -> dict:
    result = RunResult(seed, False, metrics={"loss": 0.5}, steps=3, wall_seconds=1.0, weights={}, probes={})
    return {**result.to_dict(), **changes}


def test_a_damaged_stored_run_is_set_aside_reported_and_left_to_run_again(tmp_path):
    store = StudyStore(tmp_path, "variant")
    store.save(RunResult(1, False, metrics={"loss": 0.5}, steps=3, wall_seconds=1.0), {"p": np.zeros(2)})
    store.save(RunResult(2, False, metrics={"loss": 0.4}, steps=3, wall_seconds=1.0), {"p": np.ones(2)})
    store.save(RunResult(3, False, metrics={"loss": 0.3}, steps=3, wall_seconds=1.0), {"p": np.ones(2)})
    folder = tmp_path / "variant"
    (folder / "seed-2.json").write_text("[]")  # valid JSON of the wrong shape
    npz = folder / "seed-3.npz"
    npz.write_bytes(npz.read_bytes()[:20])  # truncated
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept = store.load()
    assert list(kept) == [(1, False)]
    assert sorted(p.name for p in (folder / "damaged").iterdir()) == [
        "seed-2.json",
        "seed-2.npz",
        "seed-3.json",
        "seed-3.npz",
    ]
    ours = [w for w in caught if w.category is ReprokitWarning]
    assert len(ours) == 2 and "it is trained again" in str(ours[0].message)
    assert list(store.load()) == [(1, False)]  # set aside once: no warning, no crash the next time
    assert json.loads((folder / "seed-1.json").read_text())["format"] == FORMAT


def test_every_file_of_the_study_store_gets_the_users_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        StudyStore(tmp_path, "v").save(
            RunResult(1, False, metrics={"loss": 0.5}, steps=3, wall_seconds=1.0), {"p": np.zeros(2)}
        )
    finally:
        os.umask(previous)
    modes = {p.suffix: p.stat().st_mode & 0o777 for p in (tmp_path / "v").iterdir()}
    assert modes == {".json": 0o644, ".npz": 0o644}


def test_sighup_stops_a_command_as_ctrl_c_does_and_exits_128_plus_its_number():
    before = signal.getsignal(signal.SIGHUP)
    with pytest.raises(KeyboardInterrupt) as caught, terminated_as_interrupted():
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(5)  # the handler raises at once
    assert isinstance(caught.value, Terminated) and caught.value.exit_code == 129
    assert signal.getsignal(signal.SIGHUP) == before  # the command's handlers end with it


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.array([{"a": 1}], dtype=object)}, "cannot read --data .*Object arrays cannot be loaded"),
        ({"x": np.array(["a", "b"])}, "expected numbers in --data .*an array x of dtype <U1"),
    ],
)
def test_align_data_holding_objects_or_text_is_bad_input_before_any_process(tmp_path, capsys, arrays, message):
    for name in ("a.keras", "b.keras"):
        (tmp_path / name).write_bytes(b"not read: the data is refused first")
    np.savez(tmp_path / "data.npz", **arrays)
    args = ["align", str(tmp_path / "a.keras"), str(tmp_path / "b.keras"), "--data", str(tmp_path / "data.npz")]
    assert main(args) == 2
    assert re.search(message, capsys.readouterr().err)
