"""``reprokit backends``: which Keras backend reprokit would use, and what it sets on each."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from reprokit.cli.kit import exit_codes, print_report
from reprokit.core.backends import Backend, default_backend, installed_version
from reprokit.core.errors import EXIT_OK, UsageError
from reprokit.core.files import json_text
from reprokit.report.profiles import profiles_document, profiles_table


def backends_command(
    output_format: Annotated[str, typer.Option("--format", "-f", help="rich or json.")] = "rich",
) -> None:
    """Show the Keras backends: which are installed, which one runs by default, and what op determinism sets.

    The default is what Keras would use: KERAS_BACKEND, then ~/.keras/keras.json,
    then tensorflow; --backend on the other commands overrides it.
    """
    with exit_codes():
        if output_format not in ("rich", "json"):
            raise UsageError(f"expected --format rich or json, received {output_format!r}")
        default = default_backend()
        versions = {backend: installed_version(backend) for backend in Backend}
        if output_format == "json":
            sys.stdout.write(json_text(profiles_document(default, versions)))
        else:
            print_report(profiles_table(default, versions))
        raise typer.Exit(EXIT_OK)
