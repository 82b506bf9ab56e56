"""Every lint rule, one module per family; :data:`REGISTRY` holds them in code order.

A new rule goes into its family's ``RULES``; a new family's module is listed
here. Nothing else lists rules: the engine, ``--list-rules`` and the README's
table all read :data:`REGISTRY`.

May import: the lint package's helpers and registry (:mod:`reprokit.lint.astutil`,
:mod:`~reprokit.lint.orderflow`, :mod:`~reprokit.lint.tfmodule`, :mod:`~reprokit.lint.registry`) and
:mod:`reprokit.core`.
"""

from __future__ import annotations

from reprokit.lint.registry import Registry
from reprokit.lint.rules import data, environment, gpu, ordering, seeding

REGISTRY = Registry((*seeding.RULES, *data.RULES, *ordering.RULES, *environment.RULES, *gpu.RULES))
"""Every rule, in code order."""
