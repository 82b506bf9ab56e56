"""The exact wire lines of every message, pinned: recorded runs and other versions' run processes read these bytes."""

import json
import math
from typing import get_args

import pytest

from reprokit.core.refusals import Refusal
from reprokit.core.vocabulary import Source
from reprokit.protocol import (
    CallbackStateEvent,
    EndEvent,
    ErrorEvent,
    EvaluateEvent,
    Event,
    FunctionTarget,
    GradientProbe,
    HistoryEvent,
    InitEvent,
    LaunchedEvent,
    LayerProbe,
    ModelSummary,
    Pin,
    PipelineCall,
    PreemptedEvent,
    ReplayEvent,
    SearchTrialEvent,
    SetupErrorEvent,
    StartEvent,
    StepEvent,
    StopRequest,
    WorkerConfig,
    parse_event,
)

REFUSAL = Refusal(
    Source.UNCONTROLLED,
    "Random ops require a seed to be set when determinism is enabled.",
    None,
    "/x/train.py",
    9,
    "a random op ran without a seed",
    "give the op a seed",
)

CONFIGS = [
    (
        WorkerConfig("/x/train.py", ("--epochs", "1"), 1234, True, 7, "/tmp/run/arrays.npz", control_fd=9),
        '{"script": "/x/train.py", "args": ["--epochs", "1"], "seed": 1234, "op_determinism": true, "events_fd": 7, '
        '"control_fd": 9, "arrays_path": "/tmp/run/arrays.npz", "epochs": 5, "batch_size": 32, "max_steps": null, '
        '"explain_step": null, "function": null, "sequential_maps": false, "study": false, "alignment": false, '
        '"whole_state": false, "preempt_after": null, "script_copy": null, "sampled": false}',
    ),
    (
        WorkerConfig(
            "/x/train.py",
            (),
            1235,
            False,
            7,
            "/tmp/a.npz",
            None,
            2,
            8,
            30,
            12,
            FunctionTarget("tests.training_functions", "train", "/tmp/run/call.pkl", ("/src", "/lib")),
            True,
            True,
            True,
            True,
            12,
            "/tmp/run/cwd/train.py",
            True,
        ),
        '{"script": "/x/train.py", "args": [], "seed": 1235, "op_determinism": false, "events_fd": 7, '
        '"control_fd": null, "arrays_path": "/tmp/a.npz", "epochs": 2, "batch_size": 8, "max_steps": 30, '
        '"explain_step": 12, "function": {"module": "tests.training_functions", "qualname": "train", '
        '"call_path": "/tmp/run/call.pkl", "sys_path": ["/src", "/lib"]}, "sequential_maps": true, "study": true, '
        '"alignment": true, "whole_state": true, "preempt_after": 12, "script_copy": "/tmp/run/cwd/train.py", '
        '"sampled": true}',
    ),
]

EVENTS = [
    (LaunchedEvent(4242), '{"type": "launched", "pid": 4242}'),
    (
        SetupErrorEvent("ModuleNotFoundError: No module named 'tensorflow'"),
        '{"type": "setup_error", "message": "ModuleNotFoundError: No module named \'tensorflow\'"}',
    ),
    (StartEvent(4243), '{"type": "start", "pid": 4243}'),
    (
        InitEvent("sequential", 0, {"sequential/dense/kernel": "62bd0be79b36b0b0", "sequential/dense/bias": "676e"}),
        '{"type": "init", "model": "sequential", "step": 0, '
        '"weights": {"sequential/dense/kernel": "62bd0be79b36b0b0", "sequential/dense/bias": "676e"}}',
    ),
    (
        StepEvent("sequential", 3, {"sequential/dense/kernel": "ad3bbfb4"}, ("61dcf646",), ("00ff:0a",), 0.28),
        '{"type": "step", "model": "sequential", "step": 3, "weights": {"sequential/dense/kernel": "ad3bbfb4"}, '
        '"inputs": ["61dcf646"], "input_rows": ["00ff:0a"], "loss": 0.28}',
    ),
    (
        StepEvent("variables:SGD", 1, {"w": "0e"}),
        '{"type": "step", "model": "variables:SGD", "step": 1, "weights": {"w": "0e"}, "inputs": [], '
        '"input_rows": [], "loss": null}',
    ),
    (
        StepEvent("m", 2, {"w": "a1"}, loss=math.nan),
        '{"type": "step", "model": "m", "step": 2, "weights": {"w": "a1"}, "inputs": [], "input_rows": [], '
        '"loss": NaN}',
    ),
    (
        HistoryEvent("sequential", {"loss": (0.5, 0.25), "accuracy": (0.75, 1.0)}),
        '{"type": "history", "model": "sequential", "history": {"loss": [0.5, 0.25], "accuracy": [0.75, 1.0]}}',
    ),
    (
        EvaluateEvent("sequential", {"loss": 0.5, "accuracy": 0.875}),
        '{"type": "evaluate", "model": "sequential", "results": {"loss": 0.5, "accuracy": 0.875}}',
    ),
    (
        Pin("tf.random.set_seed(0)", "seed", "/x/train.py", 4),
        '{"type": "pin", "call": "tf.random.set_seed(0)", "kind": "seed", "file": "/x/train.py", "line": 4}',
    ),
    (
        PipelineCall("Dataset.map(..., num_parallel_calls=4, deterministic=False)", "/x/train.py", 12),
        '{"type": "pipeline", "call": "Dataset.map(..., num_parallel_calls=4, deterministic=False)", '
        '"file": "/x/train.py", "line": 12}',
    ),
    (
        PipelineCall("Dataset.with_options(options with deterministic=False)"),
        '{"type": "pipeline", "call": "Dataset.with_options(options with deterministic=False)"}',
    ),
    (
        PipelineCall("Dataset.map(augment, num_parallel_calls=AUTOTUNE)", "/x/train.py", 9, True),
        '{"type": "pipeline", "call": "Dataset.map(augment, num_parallel_calls=AUTOTUNE)", "file": "/x/train.py", '
        '"line": 9, "random": true}',
    ),
    (
        PipelineCall("Dataset.map(augment)", random=True),
        '{"type": "pipeline", "call": "Dataset.map(augment)", "random": true}',
    ),
    (
        PipelineCall("Dataset.map(f)", "/x/train.py", None),
        '{"type": "pipeline", "call": "Dataset.map(f)", "file": "/x/train.py", "line": null}',
    ),
    (
        ReplayEvent(
            2,
            (LayerProbe("s/dense", "Dense", 1, "aa", "bb"), LayerProbe("s/dense", "Dense", 2, "bb", "cc")),
            {"s/dense/kernel": GradientProbe("dd", False), "s/emb/embeddings": GradientProbe("ee", True)},
        ),
        '{"type": "replay", "step": 2, "layers": [{"layer": "s/dense", "class": "Dense", "call": 1, "inputs": "aa", '
        '"outputs": "bb"}, {"layer": "s/dense", "class": "Dense", "call": 2, "inputs": "bb", "outputs": "cc"}], '
        '"gradients": {"s/dense/kernel": {"fingerprint": "dd", "sparse": false}, '
        '"s/emb/embeddings": {"fingerprint": "ee", "sparse": true}}}',
    ),
    (ErrorEvent("ValueError: bad shape"), '{"type": "error", "message": "ValueError: bad shape"}'),
    (
        ErrorEvent("RuntimeError: Random ops require a seed", REFUSAL),
        '{"type": "error", "message": "RuntimeError: Random ops require a seed", "refusal": {"source": '
        '"uncontrolled", "error": "Random ops require a seed to be set when determinism is enabled.", "op": null, '
        '"file": "/x/train.py", "line": 9, "meaning": "a random op ran without a seed", '
        '"options": "give the op a seed"}}',
    ),
    (
        EndEvent(
            "script",
            (
                ModelSummary("sequential", 15, {"sequential/dense/kernel": "62bd"}, "9f"),
                ModelSummary("m#2", 0, {}, None),
            ),
            {"python": "3.11.7", "cpu_flags": ["avx", "avx2"], "env": {"PYTHONHASHSEED": "0"}},
            stopped_at_max_steps=True,
        ),
        '{"type": "end", "mode": "script", "models": [{"model": "sequential", "steps": 15, '
        '"weights": {"sequential/dense/kernel": "62bd"}, "probe": "9f"}, {"model": "m#2", "steps": 0, '
        '"weights": {}, "probe": null}], "environment": {"python": "3.11.7", "cpu_flags": ["avx", "avx2"], '
        '"env": {"PYTHONHASHSEED": "0"}}, "stopped_at_max_steps": true, "stopped_early": false}',
    ),
    (
        StepEvent("m", 9, {"optimizer:adam/iteration": "0a"}, scalars={"optimizer:adam/iteration": 9.0}),
        '{"type": "step", "model": "m", "step": 9, "weights": {"optimizer:adam/iteration": "0a"}, "inputs": [], '
        '"input_rows": [], "loss": null, "scalars": {"optimizer:adam/iteration": 9.0}}',
    ),
    (
        CallbackStateEvent("sequential", 2, 8, {"EarlyStopping.wait": "1", "EarlyStopping.best": "0.25"}),
        '{"type": "callbacks", "model": "sequential", "epoch": 2, "step": 8, "state": {"EarlyStopping.wait": "1", '
        '"EarlyStopping.best": "0.25"}}',
    ),
    (
        PreemptedEvent(12, {"sequential": 12}),
        '{"type": "preempted", "step": 12, "models": {"sequential": 12}}',
    ),
    (
        SearchTrialEvent("keras-tuner", "digits", "1", {"units": "32", "lr": "0.0157"}, 0.92, "COMPLETED", True),
        '{"type": "search_trial", "library": "keras-tuner", "search": "digits", "trial": "1", '
        '"params": {"units": "32", "lr": "0.0157"}, "score": 0.92, "status": "COMPLETED", "maximize": true}',
    ),
    (
        SearchTrialEvent("optuna", "study", "0", {"act": "'relu'"}, None, "COMPLETE", None, (0.5, 2.0)),
        '{"type": "search_trial", "library": "optuna", "search": "study", "trial": "0", '
        '"params": {"act": "\'relu\'"}, "score": null, "status": "COMPLETE", "maximize": null, "values": [0.5, 2.0]}',
    ),
    (
        EndEvent(
            "function",
            (ModelSummary("mlp", 4, {"mlp/w": "01"}, "9f", 0.125),),
            {},
            stopped_early=True,
            xla_steps=True,
        ),
        '{"type": "end", "mode": "function", "models": [{"model": "mlp", "steps": 4, "weights": {"mlp/w": "01"}, '
        '"probe": "9f", "last_loss": 0.125}], "environment": {}, "stopped_at_max_steps": false, '
        '"stopped_early": true, "xla_steps": true}',
    ),
]


def _name(case):
    return type(case[0]).__name__


@pytest.mark.parametrize("case", CONFIGS + EVENTS, ids=_name)
def test_every_message_writes_its_pinned_line(case):
    message, line = case
    assert message.to_json() == line


def test_a_replay_is_kept_in_the_parent_as_it_was_sent():
    replay, line = next(case for case in EVENTS if isinstance(case[0], ReplayEvent))
    assert replay.to_dict() == json.loads(line)  # lists of objects, as explain reads them


@pytest.mark.parametrize("case", CONFIGS, ids=_name)
def test_the_pinned_configuration_lines_read_back_as_their_configuration(case):
    config, line = case
    assert WorkerConfig.from_json(line) == config


@pytest.mark.parametrize("case", EVENTS, ids=_name)
def test_the_pinned_event_lines_read_back_as_their_event(case):
    event, line = case
    read = parse_event(line)
    assert type(read) is type(event)
    if isinstance(event, StepEvent) and event.loss is not None and math.isnan(event.loss):
        assert read.to_json() == line  # NaN is not equal to itself
    else:
        assert read == event
        assert type(event).from_json(line) == event


def test_the_pinned_events_cover_every_kind_of_event():
    assert {type(event) for event, _ in EVENTS} == set(get_args(Event))


def test_a_stop_request_writes_its_pinned_line():
    assert StopRequest(37).to_line() == "stop 37"
    assert StopRequest.parse("stop 37\n") == StopRequest(37)


@pytest.mark.parametrize(
    ("line", "event"),
    [
        ('{"type": "end"}', EndEvent("script", (), {})),
        (
            '{"type": "end", "models": [{"model": "m", "steps": 1, "weights": {"w": "0a"}}]}',
            EndEvent("script", (ModelSummary("m", 1, {"w": "0a"}, None),), {}),
        ),
        ('{"type": "pipeline", "call": "Dataset.map()"}', PipelineCall("Dataset.map()")),
        ('{"type": "error", "message": "boom"}', ErrorEvent("boom")),
        ('{"type": "step", "model": "m", "step": 1, "weights": {}}', StepEvent("m", 1, {})),
    ],
)
def test_keys_a_sender_leaves_out_read_as_their_defaults(line, event):
    assert parse_event(line) == event


def test_a_configuration_that_leaves_out_the_optional_keys_reads_with_their_defaults():
    line = '{"script": "/x/t.py", "seed": 1, "op_determinism": false, "events_fd": 3, "arrays_path": "/a.npz"}'
    assert WorkerConfig.from_json(line) == WorkerConfig("/x/t.py", (), 1, False, 3, "/a.npz")
