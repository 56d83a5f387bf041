"""One gate's outcome, as written to DIR/gateN-NAME.json."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Status = Literal["pass", "fail"]

# Libraries whose versions decide what a gate measured; recorded in every gate's JSON.
_LIBRARIES = (
    "devloop",
    "mistral-common",
    "tokenizers",
    "transformers",
    "torch",
    "peft",
    "trl",
    "llama-cpp-python",
)


class GateInputError(Exception):
    """Bad input for a gate (a missing tokenizer, a malformed config): one line naming what and where."""


@dataclass
class Check:
    """One named check inside a gate: `ok` None means not applicable (reported, never counted)."""

    name: str
    ok: bool | None
    detail: str = ""


@dataclass
class GateResult:
    gate: int
    name: str
    checks: list[Check] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def status(self) -> Status:
        return "fail" if any(c.ok is False for c in self.checks) else "pass"

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.ok is False]

    def to_json(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "name": self.name,
            "status": self.status,
            "checks": [dataclasses.asdict(c) for c in self.checks],
            "details": self.details,
            "versions": self.versions,
        }

    def write(self, out_dir: Path) -> Path:
        """Write the JSON atomically (a reader never sees half a file)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"gate{self.gate}-{self.name}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n", "utf-8")
        os.replace(tmp, path)
        return path


def library_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found
