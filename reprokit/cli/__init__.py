"""The ``reprokit`` command: thin commands that parse, call the library and render."""

from reprokit.cli.app import main

__all__ = ["main"]
