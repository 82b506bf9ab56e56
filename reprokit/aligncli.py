"""``reprokit align A B``: why are the weights of two saved models different? (thin: parse, align, render)."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from reprokit.aligning import align_files
from reprokit.clikit import error_console, exit_codes, print_report
from reprokit.files import json_text, write_atomic
from reprokit.formats import plain_summary


class AlignFormat(str, Enum):
    rich = "rich"
    json = "json"


def align_command(
    model_a: Annotated[Path, typer.Argument(help="A saved Keras model (.keras or .h5).", show_default=False)],
    model_b: Annotated[Path, typer.Argument(help="Another training of the same architecture.", show_default=False)],
    data: Annotated[
        Path | None,
        typer.Option(
            help="Inputs to measure on: .npz with x (and y: labels, for the loss barrier) or .npy. "
            "[default: random inputs of the model's input shape]",
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[AlignFormat, typer.Option("--format", "-f", help="rich or json.")] = AlignFormat.rich,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the report to this file (atomically; rich as plain text)."),
    ] = None,
    timeout: Annotated[float | None, typer.Option(min=0.001, help="Seconds the alignment may take.")] = None,
) -> None:
    """Why are the weights of two networks different? Matches their hidden units and compares what they compute.

    Puts B's hidden units in A's order (weight matching, one permutation per
    hidden layer), verifies that B still computes the same function, and
    reports how much of the weight difference the order of the units
    explains, linear CKA of each hidden layer, prediction agreement and, with
    labels, the loss barrier between A and matched B. Exit 0, 2 on bad input,
    4 on a bug (a permutation that changed the function).
    """
    with exit_codes():
        report = align_files(model_a, model_b, data, timeout)
        as_json = output_format is AlignFormat.json
        if output is not None:  # rich to a file: plain text, 100 columns
            write_atomic(output, json_text(report.to_dict()) if as_json else plain_summary(report))
        elif as_json:
            sys.stdout.write(json_text(report.to_dict()))
        else:
            print_report(report)
        if as_json or output is not None:  # the rich report on the terminal shows them itself
            for warning in report.warnings:
                error_console().print(f"reprokit: warning: {warning}", style="yellow", markup=False)
