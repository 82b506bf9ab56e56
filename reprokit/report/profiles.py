"""The backends and their determinism profiles, as a terminal table and as JSON (``reprokit backends``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from reprokit.core.backends import PROFILES, Backend


def profiles_document(default: Backend, versions: Mapping[Backend, str | None]) -> list[dict[str, Any]]:
    """Every backend: whether it is installed (its version), the default, and what reprokit sets there."""
    return [
        {
            "backend": backend.value,
            "version": versions.get(backend),
            "default": backend is default,
            "seeds": [{"setting": s.setting, "why": s.why} for s in profile.seeds],
            "op_determinism": [{"setting": s.setting, "why": s.why} for s in profile.determinism],
            "notes": list(profile.notes),
            "op_explain": profile.op_explain,
            "pipeline_findings": profile.pipeline_findings,
        }
        for backend, profile in PROFILES.items()
    ]


def profiles_table(default: Backend, versions: Mapping[Backend, str | None]) -> RenderableType:
    """Each backend: installed or not, the default, what reprokit sets there and why, and what else to know."""
    parts: list[RenderableType] = []
    for backend, profile in PROFILES.items():
        version = versions.get(backend)
        title = Text(backend.value, style="bold")
        title.append(f"  {version}" if version else "  not installed", style="dim" if version else "yellow")
        if backend is default:
            title.append("  (default)", style="green")
        table = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", expand=True)
        table.add_column("what reprokit sets", overflow="fold", ratio=2)
        table.add_column("why", overflow="fold", ratio=3)
        for switch in profile.seeds:
            table.add_row(switch.setting, switch.why)
        for switch in profile.determinism:
            table.add_row(switch.setting, f"op determinism: {switch.why}")
        notes = [*profile.notes]
        if not profile.op_explain:
            notes.append("explain replays no step op by op here (TensorFlow only).")
        parts += [table, Padding(Text("\n".join(notes), style="dim"), (0, 0, 1, 1))]
    return Group(*parts)
