"""The run process's hooks on the script's own searches: patched on import, each ended trial sent once.

Each test runs in a fresh interpreter (the hooks patch classes for good), with
real Optuna and a stand-in for keras-tuner that has its oracle's shape
(importing the real one imports TensorFlow; ``examples/search/`` runs it for real).
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import ROOT

pytest.importorskip("optuna")

# keras_tuner/src/engine/oracle.py as far as the hook reads it: trials by id, a status, a score, an objective,
# a project name, and retries queued by end_trial.
ORACLE = """
class Objective:
    def __init__(self, name, direction):
        self.name, self.direction = name, direction


class HyperParameters:
    def __init__(self, values):
        self.values = values


class Trial:
    def __init__(self, trial_id, values):
        self.trial_id, self.hyperparameters = trial_id, HyperParameters(values)
        self.status, self.score = "RUNNING", None


class Oracle:
    def __init__(self, project_name, direction="max", retries=0):
        self.objective = Objective("val_accuracy", direction)
        self.trials, self._retry_queue, self._retries = {}, [], retries
        self._project_name = project_name

    def create_trial(self, values):
        trial = Trial(str(len(self.trials)), values)
        self.trials[trial.trial_id] = trial
        return trial

    def end_trial(self, trial, score=None):
        stored = self.trials[trial.trial_id]
        if stored.trial_id in self._retry_queue:
            self._retry_queue.remove(stored.trial_id)
        stored.status = trial.status
        if trial.status == "INVALID" and self._retries:
            self._retries -= 1
            self._retry_queue.append(stored.trial_id)
        elif trial.status == "COMPLETED":
            stored.score = score
"""


@pytest.fixture
def fake_keras_tuner(tmp_path: Path) -> Path:
    engine = tmp_path / "keras_tuner" / "src" / "engine"
    engine.mkdir(parents=True)
    (tmp_path / "keras_tuner" / "__init__.py").write_text("from keras_tuner.src.engine.oracle import Oracle\n")
    (tmp_path / "keras_tuner" / "src" / "__init__.py").write_text("")
    (engine / "__init__.py").write_text("")
    (engine / "oracle.py").write_text(ORACLE)
    return tmp_path


def events_of(code: str, path: Path) -> list[dict]:
    """The events ``code`` made the hooks send (installed first), as JSON objects."""
    program = "\n".join(
        [
            "import json, sys",
            f"sys.path.insert(0, {str(path)!r})",
            "from reprokit.worker import search",
            "sent = []",
            textwrap.dedent(code),
            "print(json.dumps([json.loads(e.to_json()) for e in sent]))",
        ]
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_keras_tuner_is_patched_when_the_script_imports_it_and_each_ended_trial_is_sent(fake_keras_tuner):
    events = events_of(
        """
        search.install(sent.append)
        assert "keras_tuner" not in sys.modules  # nothing imported before the script does
        import keras_tuner

        oracle = keras_tuner.Oracle("digits", retries=1)
        first = oracle.create_trial({"units": 16, "lr": 0.01})
        first.status = "INVALID"
        oracle.end_trial(first)  # sent back to be retried: not ended yet
        first.status = "COMPLETED"
        oracle.end_trial(first, score=0.75)
        second = oracle.create_trial({"units": 8, "activation": "relu"})
        second.status = "FAILED"
        oracle.end_trial(second)
        """,
        fake_keras_tuner,
    )
    assert events == [
        {
            "type": "search_trial",
            "library": "keras-tuner",
            "search": "digits",
            "trial": "0",
            "params": {"units": "16", "lr": "0.01"},
            "score": 0.75,
            "status": "COMPLETED",
            "maximize": True,
        },
        {
            "type": "search_trial",
            "library": "keras-tuner",
            "search": "digits",
            "trial": "1",
            "params": {"units": "8", "activation": "'relu'"},
            "score": None,
            "status": "FAILED",
            "maximize": True,
        },
    ]


def test_a_package_imported_before_the_hooks_are_installed_is_patched_at_once(fake_keras_tuner):
    events = events_of(
        """
        import keras_tuner
        search.install(sent.append)
        search.install(sent.append)  # never wrapped twice

        for name in ("tuned", "tuned"):  # two tuners of one project name are two searches
            oracle = keras_tuner.Oracle(name, direction="min")
            trial = oracle.create_trial({"x": 1.5})
            trial.status = "COMPLETED"
            oracle.end_trial(trial, score=0.25)
        """,
        fake_keras_tuner,
    )
    assert [(e["search"], e["maximize"]) for e in events] == [("tuned", False), ("tuned #2", False)]


def test_optuna_trials_are_sent_once_whether_optimized_or_told(tmp_path):
    events = events_of(
        """
        search.install(sent.append)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        seen = []
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
        study.optimize(
            lambda t: t.suggest_int("units", 8, 32) / 32, 2, None, 1, (), [lambda s, t: seen.append(t.number)]
        )
        assert seen == [0, 1]  # the script's own callbacks (here passed by position) still run

        trial = study.ask()
        trial.suggest_categorical("activation", ["relu", "tanh"])
        study.tell(trial, 0.5)
        study.tell(trial.number, 0.5, skip_if_finished=True)  # already told: not sent again

        def fails(t):
            t.suggest_float("lr", 0.1, 0.2)
            raise ValueError("no")

        optuna.create_study().optimize(fails, n_trials=1, catch=(ValueError,))  # unnamed: "study"
        optuna.create_study(directions=["minimize", "maximize"]).optimize(lambda t: (1.0, 2.0), n_trials=1)
        """,
        tmp_path,
    )
    shown = [(e["search"], e["trial"], e["status"], e["score"], e["maximize"], e.get("values")) for e in events]
    assert shown == [
        ("study", "0", "COMPLETE", events[0]["score"], True, None),
        ("study", "1", "COMPLETE", events[1]["score"], True, None),
        ("study", "2", "COMPLETE", 0.5, True, None),
        ("study #2", "0", "FAIL", None, False, None),
        ("study #3", "0", "COMPLETE", None, None, [1.0, 2.0]),
    ]
    assert set(events[0]["params"]) == {"units"}
    assert events[2]["params"] in ({"activation": "'relu'"}, {"activation": "'tanh'"})
    assert events[0]["score"] == int(events[0]["params"]["units"]) / 32
