"""The four protocols as rules over a task's finished units: what to run next, and which patch counts.

Every rule is a pure function of the units on disk, so a resumed run takes up exactly where the killed
one stopped, whatever ran the units.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from devloop.protocols.units import Selection, UnitRecord

ProtocolName = Literal["single", "iterative", "samples", "best-of"]
PROTOCOLS: tuple[str, ...] = ("single", "iterative", "samples", "best-of")
DEFAULT_TEMPERATURES = (0.0, 0.1, 0.1)


class ProtocolConfig(BaseModel):
    """How many units a task gets and at what temperature.

    * single: one attempt at `temperature`.
    * iterative: up to `attempts` attempts, attempt k at `temperatures[k]`; attempt k+1 runs only when
      attempt k did not finish or left an empty patch; the prediction is the latest non-empty patch.
    * samples: `samples` independent attempts at `temperature` (for pass@k); the report.json lists
      describe sample 0, the pass@k section all of them.
    * best-of: `samples` attempts; the prediction is picked by visible tests, then a vote (see best_of).
    """

    name: ProtocolName = "single"
    attempts: int = Field(3, ge=1)
    temperatures: list[float] = Field(default_factory=lambda: list(DEFAULT_TEMPERATURES))
    samples: int = Field(1, ge=1)
    temperature: float = Field(0.0, ge=0.0, le=2.0)

    @model_validator(mode="after")
    def _enough_temperatures(self) -> ProtocolConfig:
        if self.name == "iterative":
            if len(self.temperatures) < self.attempts:
                raise ValueError(
                    f"--attempts {self.attempts} needs {self.attempts} --temperatures (one per attempt), "
                    f"got {len(self.temperatures)}"
                )
            if any(not 0.0 <= t <= 2.0 for t in self.temperatures):
                raise ValueError(f"--temperatures must each be between 0 and 2, got {self.temperatures}")
        return self

    @property
    def units_per_task(self) -> int:
        """The most units one task can get."""
        return {"single": 1, "iterative": self.attempts}.get(self.name, self.samples)

    def temperature_for(self, index: int) -> float:
        return self.temperatures[index] if self.name == "iterative" else self.temperature

    def describe(self) -> dict[str, object]:
        """The settings that define the protocol, for run.json and reports."""
        if self.name == "iterative":
            return {
                "name": self.name,
                "attempts": self.attempts,
                "temperatures": self.temperatures[: self.attempts],
            }
        if self.name == "single":
            return {"name": self.name, "temperature": self.temperature}
        return {"name": self.name, "samples": self.samples, "temperature": self.temperature}


def needs_retry(unit: UnitRecord) -> bool:
    """The iterative protocol's trigger: the attempt did not finish, or left an empty patch."""
    return not unit.finished or unit.empty


def pending(config: ProtocolConfig, units: Mapping[int, UnitRecord]) -> list[int]:
    """The unit indices that should run next for a task, given its finished units (by index)."""
    if config.name != "iterative":
        return [i for i in range(config.units_per_task) if i not in units]
    for k in range(config.attempts):
        if k not in units:
            return [k]
        if not needs_retry(units[k]):
            return []
    return []


def is_complete(config: ProtocolConfig, units: Mapping[int, UnitRecord]) -> bool:
    return not pending(config, units)


def chosen_index(
    config: ProtocolConfig, units: Mapping[int, UnitRecord], selection: Selection | None
) -> int | None:
    """The unit whose patch is the task's prediction; None when the task has no unit yet.

    iterative: the latest attempt with a non-empty patch (the last attempt when all are empty);
    best-of: the selection's choice; single and samples: unit 0.
    """
    if not units:
        return None
    if config.name == "iterative":
        non_empty = [k for k, u in units.items() if not u.empty]
        return max(non_empty) if non_empty else max(units)
    if config.name == "best-of":
        return selection.chosen if selection is not None and selection.chosen in units else None
    return 0 if 0 in units else None
