"""The messages between a run process and the parent (pure: no TensorFlow)."""

import json
import subprocess
import sys
from collections import Counter
from typing import get_args

import pytest

from helpers import DATA
from reprokit.core.refusals import recognize
from reprokit.protocol import (
    CONFIG_VAR,
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
    ProtocolError,
    ReplayEvent,
    SearchTrialEvent,
    SetupErrorEvent,
    StartEvent,
    StepEvent,
    StopRequest,
    WorkerConfig,
    parse_event,
)

REFUSAL = recognize("Random ops require a seed to be set when determinism is enabled.", "/x/train.py", 9)

EVENTS = [
    LaunchedEvent(4242),
    SetupErrorEvent("ModuleNotFoundError: No module named 'tensorflow'"),
    StartEvent(4243),
    InitEvent("sequential", 0, {"sequential/dense/kernel": "62bd0be79b36b0b0"}),
    StepEvent("sequential", 3, {"sequential/dense/kernel": "ad3bbfb4"}, ("61dcf646",), ("00ff:0a",), 0.28),
    StepEvent("variables:SGD", 1, {"w": "0e"}),  # no batch or loss seen
    HistoryEvent("sequential", {"loss": (0.5, 0.25), "accuracy": (0.75, 1.0)}),
    EvaluateEvent("sequential", {"loss": 0.5, "accuracy": 0.875}),
    Pin("tf.random.set_seed(0)", "seed", "/x/train.py", 4),
    PipelineCall("Dataset.map(..., num_parallel_calls=4, deterministic=False)", "/x/train.py", 12),
    PipelineCall("Dataset.with_options(options with deterministic=False)"),
    ReplayEvent(
        2,
        (LayerProbe("s/dense", "Dense", 1, "aa", "bb"), LayerProbe("s/dense", "Dense", 2, "bb", "cc")),
        {"s/dense/kernel": GradientProbe("dd", False), "s/emb/embeddings": GradientProbe("ee", True)},
    ),
    ErrorEvent("ValueError: bad shape"),
    ErrorEvent("RuntimeError: Random ops require a seed", REFUSAL),
    CallbackStateEvent("sequential", 2, 8, {"EarlyStopping.wait": "1"}),
    PreemptedEvent(12, {"sequential": 12}),
    SearchTrialEvent(
        "keras-tuner", "digits", "0", {"units": "8", "lr": "0.0022584063478787337"}, 0.67, "COMPLETED", True
    ),
    SearchTrialEvent("optuna", "study #2", "3", {}, None, "FAIL", False),
    EndEvent(
        "script",
        (ModelSummary("sequential", 15, {"sequential/dense/kernel": "62bd"}, "9f"), ModelSummary("m#2", 0, {}, None)),
        {"python": "3.11.7", "cpu_flags": ["avx", "avx2"], "env": {"PYTHONHASHSEED": "0"}},
        stopped_at_max_steps=True,
    ),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_every_event_survives_a_round_trip_through_its_wire_line(event):
    line = event.to_json()
    assert "\n" not in line
    assert parse_event(line) == event
    assert type(event).from_json(line) == event
    assert json.loads(line)["type"] == event.TYPE


def test_every_kind_of_event_is_covered_and_has_its_own_wire_type():
    kinds = set(get_args(Event))
    assert {type(e) for e in EVENTS} == kinds
    assert len({k.TYPE for k in kinds}) == len(kinds)


def test_the_wire_lines_keep_the_recorded_format():
    step = StepEvent("m", 2, {"w": "a1"}, ("f0",), ("r0",), 0.5)
    assert step.to_json() == (
        '{"type": "step", "model": "m", "step": 2, "weights": {"w": "a1"}, '
        '"inputs": ["f0"], "input_rows": ["r0"], "loss": 0.5}'
    )
    assert (
        InitEvent("m", 0, {"w": "a0"}).to_json() == '{"type": "init", "model": "m", "step": 0, "weights": {"w": "a0"}}'
    )
    assert Pin("random.seed(1)", "seed", "/t.py", 3).to_json() == (
        '{"type": "pin", "call": "random.seed(1)", "kind": "seed", "file": "/t.py", "line": 3}'
    )
    assert PipelineCall("Dataset.map()").to_json() == '{"type": "pipeline", "call": "Dataset.map()"}'
    assert PipelineCall("Dataset.map()", "/t.py", 8).to_json() == (
        '{"type": "pipeline", "call": "Dataset.map()", "file": "/t.py", "line": 8}'
    )
    assert ErrorEvent("boom").to_json() == '{"type": "error", "message": "boom"}'
    assert json.loads(ErrorEvent("boom", REFUSAL).to_json())["refusal"]["op"] == REFUSAL.op
    replay = json.loads(next(e for e in EVENTS if isinstance(e, ReplayEvent)).to_json())
    assert replay["layers"][0] == {"layer": "s/dense", "class": "Dense", "call": 1, "inputs": "aa", "outputs": "bb"}
    assert replay["gradients"]["s/emb/embeddings"] == {"fingerprint": "ee", "sparse": True}
    end = json.loads(EVENTS[-1].to_json())
    assert list(end) == ["type", "mode", "models", "environment", "stopped_at_max_steps", "stopped_early"]
    assert end["models"][1] == {"model": "m#2", "steps": 0, "weights": {}, "probe": None}


@pytest.mark.parametrize(
    "line",
    [
        "",
        "Traceback (most recent call last):",
        '{"type": "step", "model": "m"',  # cut off
        "[1, 2]",
        '"step"',
        '{"type": "step", "model": "m"}',  # no step or weights
        '{"type": "step", "model": "m", "step": 1, "weights": ["a"]}',
        '{"type": "pin", "call": "random.seed(1)", "kind": "seed", "file": "/t.py", "line": "twelve"}',
        '{"type": "telemetry", "pid": 1}',
        '{"type": ["step"]}',
        '{"pid": 1}',
    ],
)
def test_a_malformed_line_is_skipped(line):
    assert parse_event(line) is None


def test_reading_a_line_as_the_wrong_event_is_an_error():
    with pytest.raises(ProtocolError, match="not a start message"):
        StartEvent.from_json(LaunchedEvent(1).to_json())
    with pytest.raises(ProtocolError, match="malformed step message"):
        StepEvent.from_json('{"type": "step", "model": "m"}')
    with pytest.raises(ProtocolError, match="not JSON"):
        EndEvent.from_json("end")


def test_a_step_recorded_before_rows_were_observed_has_no_rows():
    event = parse_event('{"type": "step", "model": "m", "step": 1, "weights": {"w": "a"}, "inputs": ["f"], "loss": 2}')
    assert event == StepEvent("m", 1, {"w": "a"}, ("f",), (), 2.0)


def test_the_worker_configuration_round_trips():
    function = FunctionTarget("tests.training_functions", "train", "/tmp/run/call.pkl", ("/src", "/lib"))
    for config in [
        WorkerConfig("/x/train.py", ("--epochs", "1"), 1234, True, 7, "/tmp/run/arrays.npz", control_fd=9),
        WorkerConfig("/x/train.py", (), 1235, False, 7, "/tmp/a.npz", None, 2, 8, 30, 12, function),
    ]:
        assert WorkerConfig.from_json(config.to_json()) == config
    assert CONFIG_VAR == "REPROKIT_WORKER_CONFIG"


def test_the_worker_configuration_reads_what_the_runner_sends():
    sent = {
        "script": "/x/train.py",
        "args": ["--epochs", "1"],
        "seed": 1234,
        "op_determinism": True,
        "events_fd": 5,
        "control_fd": 6,
        "arrays_path": "/tmp/run/arrays.npz",
        "epochs": 5,
        "batch_size": 32,
        "max_steps": None,
        "explain_step": None,
        "function": {"module": "__main__", "qualname": "train", "call_path": "/tmp/call.pkl", "sys_path": ["/x"]},
        "sequential_maps": False,
        "study": True,
        "alignment": True,
        "whole_state": True,
        "preempt_after": 40,
        "script_copy": "/tmp/run/cwd/train.py",
        "sampled": True,
    }
    config = WorkerConfig.from_json(json.dumps(sent))
    assert config.args == ("--epochs", "1") and config.control_fd == 6 and config.max_steps is None
    assert config.study and config.alignment and config.whole_state and config.preempt_after == 40
    assert config.script_copy == "/tmp/run/cwd/train.py" and config.sampled
    assert config.function == FunctionTarget("__main__", "train", "/tmp/call.pkl", ("/x",))
    assert json.loads(config.to_json()) == sent  # the same keys, in the same order
    assert list(json.loads(config.to_json())) == list(sent)


def test_a_stop_request_round_trips_and_other_control_lines_are_ignored():
    request = StopRequest(37)
    assert request.to_line() == "stop 37"
    assert StopRequest.parse(request.to_line() + "\n") == request
    for line in ["stop\n", "stop soon\n", "stop -3\n", "halt 3\n", "\n"]:
        assert StopRequest.parse(line) is None


@pytest.mark.parametrize("run", ["controlled-1", "controlled-2", "seed-1"])
def test_recorded_runs_still_parse(run):
    lines = (DATA / f"{run}.jsonl").read_text().splitlines()
    events = [parse_event(line) for line in lines]
    assert None not in events
    assert Counter(type(e) for e in events) == {InitEvent: 1, StepEvent: 15, HistoryEvent: 1, EndEvent: 1}
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert [e.step for e in steps] == list(range(1, 16))
    assert all(e.loss is not None and len(e.inputs) == 1 for e in steps)
    end = events[-1]
    assert isinstance(end, EndEvent) and end.models[0].steps == 15 and end.mode == "script"
    assert all(parse_event(e.to_json()) == e for e in events)  # and written again, they read the same


def test_the_protocol_imports_neither_tensorflow_nor_numpy():
    code = "import sys, reprokit.protocol; print(sorted({'tensorflow', 'keras', 'numpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_names_that_every_step_repeats_are_kept_once_in_the_parent():
    line = '{"type": "step", "model": "seq%s", "step": %d, "weights": {"seq%s/dense/kernel": "%d"}}'
    first, second = (parse_event(line % ("uential", k, "uential", k)) for k in (1, 2))
    assert first.model is second.model
    assert next(iter(first.weights)) is next(iter(second.weights))


def test_a_failure_is_summed_up_by_its_type_and_the_first_line_of_its_message():
    from reprokit.worker.main import summary

    keras_style = ValueError(
        "Exception encountered when calling Dense.call().\n\n"
        'Input 0 of layer "dense" is incompatible with the layer\n\n'
        "Arguments received by Dense.call():\n  • kwargs=<class 'inspect._empty'>"
    )
    assert summary(keras_style) == "ValueError: Exception encountered when calling Dense.call()."
    assert summary(KeyError("x")) == "KeyError: 'x'"
    assert summary(RuntimeError()) == "RuntimeError"
