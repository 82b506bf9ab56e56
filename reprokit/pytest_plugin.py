"""The pytest plugin: a ``reprokit_check`` fixture and a ``reproducible`` marker.

Registered through the ``pytest11`` entry point. It imports nothing heavy and
changes nothing unless a test uses the fixture or the marker; the seed in use
is printed in the header so that any failure can be replayed.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest

from reprokit.core.version import __version__

DEFAULT_SEED = 1234  # = reprokit.core.controls.DEFAULT_SEED, without importing it here


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("reprokit", "reprokit: reproducibility of Keras training")
    group.addoption(
        "--reprokit-seed",
        type=int,
        default=None,
        metavar="N",
        help=f"seed of @pytest.mark.reproducible tests and of the reprokit_check fixture (default {DEFAULT_SEED})",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "reproducible(seed=None, op_determinism=True): run the test under reprokit's controlled settings "
        "(every seed fixed, TensorFlow op determinism on)",
    )


def pytest_report_header(config: pytest.Config) -> str:
    seed = _seed(config)
    return f"reprokit {__version__}: seed {seed} (replay with --reprokit-seed={seed})"


def _seed(config: pytest.Config) -> int:
    seed = config.getoption("reprokit_seed", default=None)
    return DEFAULT_SEED if seed is None else int(seed)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    marker = item.get_closest_marker("reproducible")
    if marker is None:
        return (yield)
    from reprokit.inprocess import controlled

    seed = int(marker.kwargs.get("seed", _seed(item.config)))
    item.add_report_section("call", "reprokit", f"ran under controlled settings with seed {seed}")
    with controlled(seed, bool(marker.kwargs.get("op_determinism", True)), warn=False):
        return (yield)


@pytest.fixture
def reprokit_check(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Runs ``reprokit.check(target, **options)`` and returns its Report.

    The seed defaults to the session's (``--reprokit-seed``). Pair it with
    ``reprokit.assert_reproducible(report)``, whose failure message is the
    report: the first divergence, the sources and the fixes.
    """
    from reprokit.api import check

    def run(target: Any, **options: Any) -> Any:
        options.setdefault("seed", _seed(request.config))
        return check(target, **options)

    return run
