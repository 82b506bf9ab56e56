"""Scripts that fail: the user's own error is shown, the exit code is documented, no process is left."""

import os
import re
import signal
import subprocess
import time
import uuid

import psutil
import pytest

from helpers import ROOT, interruptible, reprokit

pytestmark = pytest.mark.e2e


def leftovers(marker: str) -> list[psutil.Process]:
    """Processes whose command line or environment mentions ``marker``."""
    found = []
    for proc in psutil.process_iter(["cmdline", "environ"]):
        text = " ".join(proc.info["cmdline"] or []) + " ".join((proc.info["environ"] or {}).values())
        if marker in text:
            found.append(proc)
    return found


def test_an_exception_in_the_script_exits_3_with_the_users_traceback(write_script):
    path = write_script("import keras\n\n\ndef load():\n    raise ValueError('boom from the user')\n\n\nload()\n")
    result = reprokit("check", path, "--quick")  # two runs: one import
    assert result.returncode == 3
    # whichever run fails first is named; the others are killed at once
    assert re.search(r"the script failed in run \w+-\d: ValueError: boom from the user", result.stderr)
    assert f'File "{path}", line 8, in <module>' in result.stderr
    assert f'File "{path}", line 5, in load' in result.stderr
    assert "reprokit/worker.py" not in result.stderr and "runpy" not in result.stderr


def test_a_syntax_error_exits_3_at_once_and_shows_it_as_python_does(write_script):
    path = write_script("import keras\nmodel = keras.Sequential([\n")
    result = reprokit("check", path, timeout=30)
    assert result.returncode == 3
    first = result.stderr.splitlines()[0]
    assert first == "reprokit: error: the script does not compile: SyntaxError: '[' was never closed (line 2)"
    assert f'File "{path}", line 2' in result.stderr and "model = keras.Sequential([" in result.stderr
    assert "finished" not in result.stderr  # compiled in the parent: no run was started


@pytest.mark.parametrize(
    ("name", "content", "code", "message"),
    [
        ("train.py", b"\x89PNG\r\n\x1a\n\x00\x00\x00", 3, "the script does not compile: SyntaxError: source code"),
        ("iris.csv", b"5.1,3.5,1.4\n4.9,3.0,1.4\n", 2, "expected a Python script (train.py), received a .csv file"),
    ],
)
def test_a_binary_or_data_file_fails_before_any_run(tmp_path, name, content, code, message):
    path = tmp_path / name
    path.write_bytes(content)
    result = reprokit("check", path, timeout=30)
    assert result.returncode == code
    assert message in result.stderr.splitlines()[0]
    assert "Traceback" not in result.stderr


def test_a_non_zero_exit_status_of_the_script_exits_3(write_script):
    path = write_script("import sys\nsys.exit(4)\n")
    result = reprokit("check", path, "--quick")
    assert result.returncode == 3
    assert "the script exited with status 4" in result.stderr


def test_a_script_that_trains_nothing_exits_2_as_soon_as_the_first_run_ends(write_script):
    path = write_script("import keras\nprint(keras.__version__)\n")
    result = reprokit("check", path, "--quick", "--jobs", "2")
    assert result.returncode == 2
    assert "no Keras training step was observed" in result.stderr
    assert "Traceback" not in result.stderr
    # Known when the first run ends: the runs still going are stopped, the rest never start.
    finished = re.findall(r"reprokit: run (\S+) finished", result.stderr)
    assert 1 <= len(finished) <= 2, result.stderr


def sleeper(marker: str) -> str:
    """A script that leaves a grandchild process and then hangs."""
    return (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', '{marker}'])\n"
        "time.sleep(300)\n"
    )


def test_a_run_over_the_timeout_exits_3_and_leaves_no_process_behind(write_script):
    marker = f"reprokit-test-{uuid.uuid4().hex}"
    path = write_script(sleeper(marker))  # its path is in the run process's environment
    started = time.monotonic()
    result = reprokit("check", path, "--timeout", "12", env={**os.environ, "TEST_MARK": marker})
    assert result.returncode == 3
    assert "exceeded the time limit of 12 s" in result.stderr
    assert time.monotonic() - started < 60
    time.sleep(0.5)
    assert leftovers(marker) == []  # the grandchild, and the fork servers and runs (TEST_MARK in their environment)
    assert leftovers(str(path)) == []


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    found = []
    for p in processes:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except psutil.NoSuchProcess:
            continue
    return found


@pytest.mark.parametrize(
    ("command", "stop", "code", "said"),
    [
        ("check", signal.SIGINT, 130, "interrupted"),
        ("seeds", signal.SIGTERM, 143, "stopped by SIGTERM"),  # as Ctrl-C: the same clean-up, 128 + 15
    ],
)
def test_ctrl_c_or_sigterm_stops_the_command_and_leaves_no_process_and_no_folder_behind(
    write_script, tmp_path, command, stop, code, said
):
    marker = f"reprokit-test-{uuid.uuid4().hex}"
    path = write_script(sleeper(marker))
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    proc = subprocess.Popen(
        interruptible(command, path),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(temporary)},
    )
    deadline = time.monotonic() + 90
    while not leftovers(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert leftovers(marker), "the script never started"
    assert list(temporary.iterdir()), "the runs' folders are in TMPDIR"
    family = psutil.Process(proc.pid).children(recursive=True)  # the run processes (fresh or forked), theirs
    assert any("reprokit.worker" in " ".join(p.cmdline()) for p in alive(family))
    proc.send_signal(stop)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert said in err
    time.sleep(0.5)
    assert leftovers(marker) == []
    assert leftovers(str(path)) == []
    assert alive(family) == []  # every run process (and fork server) is gone too
    assert list(temporary.iterdir()) == []  # no copy of the user's files left behind
    assert "Traceback" not in err


def test_a_python_without_tensorflow_is_a_clear_exit_2(write_script, tmp_path):
    fake = tmp_path / "fake" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no TensorFlow in this environment')\n")
    path = write_script("import keras\n")
    env = dict(os.environ, PYTHONPATH=str(fake.parent))
    result = reprokit("check", path, env=env)
    assert result.returncode == 2
    assert "could not prepare a training run" in result.stderr
    assert "no TensorFlow in this environment" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_keras_error_is_summed_up_by_its_type_and_first_line_then_the_traceback(write_script):
    path = write_script(
        "import keras, numpy as np\n"
        "model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])\n"
        "model.compile('sgd', 'mse')\n"
        "model.fit(np.zeros((16, 4)), np.zeros((16, 2)), verbose=0)  # 4 features, the model takes 8\n"
    )
    result = reprokit("check", path, "--quick")
    assert result.returncode == 3
    first = result.stderr.splitlines()[0]
    assert re.fullmatch(r"reprokit: error: the script failed in run controlled-\d: ValueError: \S.*", first), first
    assert "•" not in first and "kwargs" not in first  # not the last line of Keras' message
    assert f'File "{path}", line 4, in <module>' in result.stderr


DETACHED = """
import os, subprocess, sys
import keras, numpy as np
# outside the run's process group
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)", "{marker}"], start_new_session=True)
x = np.random.default_rng(0).random((64, 4)).astype("float32")
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile("sgd", "mse")
model.fit(x, x.sum(axis=1), epochs=1, batch_size=16, verbose=0)
model.save(os.path.join(os.path.dirname(__file__), "best.keras"))  # next to the script, a common pattern
"""


def test_a_script_that_leaves_detached_children_and_writes_next_to_itself_leaves_nothing_of_either(
    write_script, tmp_path
):
    marker = f"reprokit-test-{uuid.uuid4().hex}"
    ps = ["ps", "-eo", "pid,args"]
    assert marker not in subprocess.run(ps, capture_output=True, text=True, check=True).stdout
    script = write_script(DETACHED.replace("{marker}", marker))
    before = sorted(p.name for p in tmp_path.iterdir())
    result = reprokit("check", script, "--quick", "-f", "json")  # from the repository: the script's folder is not cwd
    assert result.returncode == 0, result.stderr[-2000:]
    time.sleep(0.5)
    assert marker not in subprocess.run(ps, capture_output=True, text=True, check=True).stdout  # none left
    notes = result.report["notes"]
    assert "Run controlled-1: the script left 1 process running; it was stopped." in notes
    assert "Run controlled-2: the script left 1 process running; it was stopped." in notes
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # best.keras went to each run's private copy
