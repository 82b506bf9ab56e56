"""The grid of ``reprokit tune``: parsing ``--grid``, every combination, and how a configuration reaches the script."""

import json
from pathlib import Path

import pytest

from reprokit.core.errors import UsageError
from reprokit.study.grid import Passing, configurations, parse_axis, parse_grid, target_of


def test_a_grid_of_two_axes_gives_every_combination_with_the_last_axis_changing_fastest():
    axes = parse_grid(["lr=0.1,0.01,0.001", "--hidden=8, 32"])
    labels = [c.label for c in configurations(axes)]
    assert labels == [
        "lr=0.1 hidden=8",
        "lr=0.1 hidden=32",
        "lr=0.01 hidden=8",
        "lr=0.01 hidden=32",
        "lr=0.001 hidden=8",
        "lr=0.001 hidden=32",
    ]


def test_a_configuration_reaches_an_argparse_script_as_options_after_its_own_arguments():
    (config, _) = configurations(parse_grid(["batch-size=16,64"]))
    target = target_of(Path("train.py"), ("--epochs", "2"), config, Passing.ARGS)
    assert target.args == ("--epochs", "2", "--batch-size", "16") and target.env == ()


def test_a_configuration_reaches_a_script_without_options_as_environment_variables():
    (config, _) = configurations(parse_grid(["batch-size=16,64", "lr=0.1"]))
    target = target_of(Path("train.py"), ("--epochs", "2"), config, Passing.ENV)
    env = dict(target.env)
    assert target.args == ("--epochs", "2")
    assert json.loads(env["REPROKIT_PARAMS"]) == {"batch-size": "16", "lr": "0.1"}
    assert env["REPROKIT_PARAM_BATCH_SIZE"] == "16" and env["REPROKIT_PARAM_LR"] == "0.1"


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ([], "at least one --grid"),
        (["lr"], "expected --grid NAME=V1,V2"),
        (["=0.1,0.2"], "expected --grid NAME=V1,V2"),
        (["lr=0.1,,0.2"], "non-empty values"),
        (["lr=0.1,0.1"], "each value once"),
        (["lr=0.1,0.2", "lr=0.3"], "each --grid name once"),
        (["lr=0.1"], "at least two configurations"),
        (["a=" + ",".join(map(str, range(20))), "b=" + ",".join(map(str, range(20)))], "at most 256"),
    ],
)
def test_a_bad_grid_is_refused_with_what_was_expected(specs, message):
    with pytest.raises(UsageError, match=message):
        parse_grid(specs)


def test_an_axis_keeps_its_values_as_written():
    assert parse_axis("optimizer=adam,sgd").values == ("adam", "sgd")
