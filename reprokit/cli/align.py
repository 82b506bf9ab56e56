"""``reprokit align A B``: why are the weights of two saved models different? (thin: parse, align, render)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reprokit.aligning.result import AlignReport, align_files
from reprokit.cli.kit import emit, error_console, exit_codes, guard_outputs, parse_outputs
from reprokit.core.files import json_text
from reprokit.report.ci import Format, plain_summary

FORMATS = (Format.RICH, Format.JSON, Format.HTML)


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
    output_format: Annotated[
        list[str] | None,
        typer.Option(
            "--format", "-f", help="rich, json or html; NAME=PATH writes to a file (repeatable). [default: rich]"
        ),
    ] = None,
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
        outputs = parse_outputs(output_format or [], output, FORMATS)
        guard_outputs(outputs, inputs=[model_a, model_b, *([data] if data is not None else [])])
        report = align_files(model_a, model_b, data, timeout)
        emit(report, outputs, lambda chosen: _render(report, chosen), summary=False)
        if any(o.format is not Format.RICH or o.path is not None for o in outputs):
            for warning in report.warnings:  # the rich report on the terminal shows them itself
                error_console().print(f"reprokit: warning: {warning}", style="yellow", markup=False)


def _render(report: AlignReport, chosen: Format) -> str:
    if chosen is Format.JSON:
        return json_text(report.to_dict())
    if chosen is Format.HTML:
        return report.to_html()
    return plain_summary(report)
