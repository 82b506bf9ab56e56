"""Records real runs for the pure-logic tests (run by hand; output is committed).

    python tests/data/record.py

Trains ``examples/seed_question.py`` for one short epoch three times (seed S
with op determinism, again, and seed S+1) and saves each run's event stream
(``<run>.jsonl``) and final arrays (``<run>.npz``) next to this file.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from reprokit.core.controls import Controls
from reprokit.protocol import Event, LaunchedEvent, StartEvent
from reprokit.run.runner import Runner, Target
from reprokit.run.trace import RunSpec

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
SPECS = [
    RunSpec("controlled-1", "controlled", Controls(1234, True)),
    RunSpec("controlled-2", "controlled", Controls(1234, True)),
    RunSpec("seed-1", "seed", Controls(1235, True)),
]


def main() -> None:
    target = Target(ROOT / "examples" / "seed_question.py", ("--epochs", "1", "--batch-size", "128"))
    events: dict[str, list[Event]] = {s.name: [] for s in SPECS}
    with tempfile.TemporaryDirectory() as workdir:
        runner = Runner(target, Path(workdir), lambda spec, event: events[spec.name].append(event))
        for spec in SPECS:
            trace = runner.run(spec)
            assert trace.arrays_path is not None
            shutil.copy(trace.arrays_path, HERE / f"{spec.name}.npz")
            lines = [e.to_json() for e in events[spec.name] if not isinstance(e, (StartEvent, LaunchedEvent))]
            (HERE / f"{spec.name}.jsonl").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
