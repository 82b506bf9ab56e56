"""The one user-facing exception type, and its exit codes.

Library code raises :class:`ReprokitError` subclasses; only the CLI turns them
into a one-line message on stderr and an exit code (see ``reprokit.cli.app``).
This module imports nothing of reprokit's: errors that carry a result live
beside it (``reprokit.checking.result.NotReproducibleError``,
``reprokit.core.refusals.DeterminismRefusedError``).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED_CHECK = 1  # a --fail-on source was detected
EXIT_BAD_INPUT = 2  # bad input to reprokit
EXIT_SCRIPT_FAILED = 3  # the user's script failed (or timed out) in a run
EXIT_INTERNAL = 4  # a bug in reprokit
EXIT_INTERRUPTED = 130  # Ctrl-C


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: the command stops as on Ctrl-C (every run killed, every temporary folder removed).

    A :class:`KeyboardInterrupt`, so that every clean-up Ctrl-C gets it gets
    too; the exit code is 128 + the signal's number, as a shell reports it.
    """

    def __init__(self, signum: int, name: str) -> None:
        super().__init__(name)
        self.signum = signum
        self.name = name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class ReprokitWarning(UserWarning):
    """Something the user should know that does not stop the command (a damaged stored run set aside).

    Library code warns with it; the CLI prints each as one line, ``reprokit: warning: …``.
    """


class ReprokitError(Exception):
    """An error the user can act on; its message is one line."""

    exit_code = EXIT_BAD_INPUT


class UsageError(ReprokitError):
    """Bad input to reprokit: a missing script, a bad option value."""


class NoTrainingError(ReprokitError):
    """The script ran to the end without a single Keras training step."""


class CheckFailedError(ReprokitError):
    """The check itself shows a problem, with no report to carry (e.g. no baseline could be written)."""

    exit_code = EXIT_FAILED_CHECK


class EnvironmentMismatchError(ReprokitError):
    """Two runs that must be compared bitwise ran in different environments (machines, CPUs, threads, …)."""

    exit_code = EXIT_SCRIPT_FAILED


class ScriptFailedError(ReprokitError):
    """The user's script failed in a run: an exception, an exit status, a timeout.

    Attributes:
        run: the name of the run that failed (e.g. ``controlled-1``; empty
            when it failed before any run, e.g. it does not compile).
        details: the script's own last error output (its traceback), if any.
    """

    exit_code = EXIT_SCRIPT_FAILED

    def __init__(self, message: str, run: str, details: str = "") -> None:
        super().__init__(message)
        self.run = run
        self.details = details

    def __str__(self) -> str:
        if not self.details:
            return self.message
        indented = "\n".join("    " + line for line in self.details.splitlines())
        return f"{self.message}\n{indented}"

    @property
    def message(self) -> str:
        return str(self.args[0])


class InternalError(ReprokitError):
    """reprokit caught itself in a bug (e.g. a unit permutation that changed what a network computes)."""

    exit_code = EXIT_INTERNAL
