"""The four protocols, each an object registered by name: what to run next, which attempt counts.

Every rule is a pure function of the units on disk, so a resumed run takes up exactly where the killed
one stopped, whatever ran the units. `ProtocolConfig` holds a protocol's settings (what run.json
records); `config.protocol` is the registered object that interprets them. Each protocol's report
section is in sections.py, registered with the same names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import BaseModel, Field, model_validator

from devloop.eval.records import Selection, UnitRecord

ProtocolName = Literal["single", "iterative", "samples", "best-of"]
DEFAULT_TEMPERATURES = (0.0, 0.1, 0.1)


class Protocol:
    """A protocol: how many units a task gets, at what temperature, and which unit is the prediction.

    The base class is `single`'s and `samples`' rule: `units_per_task` independent units at the run's
    temperature, unit 0 the prediction."""

    name: ClassVar[str]
    takes_predictions: ClassVar[bool] = False
    """Whether given predictions (one patch per task) can be graded under this protocol."""
    sampled: ClassVar[bool] = False
    """Whether a task's units are independent samples of one setting (pass@k is defined)."""
    selects: ClassVar[bool] = False
    """Whether a task's finished units go through a selection job (best-of) before it is complete."""

    def units_per_task(self, config: ProtocolConfig) -> int:
        return config.samples

    def temperature_for(self, config: ProtocolConfig, index: int) -> float:
        return config.temperature

    def run_temperature(self, config: ProtocolConfig) -> float | None:
        """The one temperature of the run, for reports; None when its units differ."""
        return config.temperature

    def describe(self, config: ProtocolConfig) -> dict[str, object]:
        """The settings that define the protocol, for run.json and reports."""
        return {"name": self.name, "samples": config.samples, "temperature": config.temperature}

    def invalid(self, config: ProtocolConfig) -> str | None:
        """What makes these settings unusable for this protocol (one line, naming the flag), or None."""
        return None

    def flag_problem(self, config: ProtocolConfig, *, temperature_given: bool) -> str | None:
        """What is wrong with the command-line flags that made `config` (one line), or None."""
        return None

    def pending(self, config: ProtocolConfig, units: Mapping[int, UnitRecord]) -> list[int]:
        """The unit indices that should run next for a task, given its finished units (by index)."""
        return [i for i in range(self.units_per_task(config)) if i not in units]

    def chosen(self, units: Mapping[int, UnitRecord], selection: Selection | None) -> int | None:
        """The unit whose patch is the task's prediction; None when there is none (yet)."""
        return 0 if 0 in units else None


class Single(Protocol):
    name = "single"
    takes_predictions = True

    def units_per_task(self, config: ProtocolConfig) -> int:
        return 1

    def describe(self, config: ProtocolConfig) -> dict[str, object]:
        return {"name": self.name, "temperature": config.temperature}


class Samples(Protocol):
    name = "samples"
    sampled = True


class Iterative(Protocol):
    """Attempt k+1 runs only when attempt k did not finish or left an empty patch; the prediction is the
    latest non-empty patch (the last attempt when all are empty)."""

    name = "iterative"

    def units_per_task(self, config: ProtocolConfig) -> int:
        return config.attempts

    def temperature_for(self, config: ProtocolConfig, index: int) -> float:
        return config.temperatures[index]

    def run_temperature(self, config: ProtocolConfig) -> float | None:
        return None

    def describe(self, config: ProtocolConfig) -> dict[str, object]:
        return {
            "name": self.name,
            "attempts": config.attempts,
            "temperatures": config.temperatures[: config.attempts],
        }

    def flag_problem(self, config: ProtocolConfig, *, temperature_given: bool) -> str | None:
        if temperature_given:
            return "--protocol iterative samples each attempt at its --temperatures value; drop --temperature"
        return None

    def invalid(self, config: ProtocolConfig) -> str | None:
        if len(config.temperatures) < config.attempts:
            return (
                f"--attempts {config.attempts} needs {config.attempts} --temperatures (one per attempt), "
                f"got {len(config.temperatures)}"
            )
        if any(not 0.0 <= t <= 2.0 for t in config.temperatures):
            return f"--temperatures must each be between 0 and 2, got {config.temperatures}"
        return None

    def pending(self, config: ProtocolConfig, units: Mapping[int, UnitRecord]) -> list[int]:
        for k in range(config.attempts):
            if k not in units:
                return [k]
            if not needs_retry(units[k]):
                return []
        return []

    def chosen(self, units: Mapping[int, UnitRecord], selection: Selection | None) -> int | None:
        if not units:
            return None
        non_empty = [k for k, u in units.items() if not u.empty]
        return max(non_empty) if non_empty else max(units)


class BestOf(Protocol):
    """`samples` units; the prediction is picked by visible tests, then a vote (see best_of)."""

    name = "best-of"
    sampled = True
    selects = True

    def flag_problem(self, config: ProtocolConfig, *, temperature_given: bool) -> str | None:
        return "--protocol best-of needs --samples 2 or more" if config.samples < 2 else None

    def chosen(self, units: Mapping[int, UnitRecord], selection: Selection | None) -> int | None:
        return selection.chosen if selection is not None and selection.chosen in units else None


REGISTRY: dict[str, Protocol] = {p.name: p for p in (Single(), Iterative(), Samples(), BestOf())}
PROTOCOLS: tuple[str, ...] = tuple(REGISTRY)


class ProtocolConfig(BaseModel):
    """A protocol's settings: its name (a key of REGISTRY) and the parameters it reads.

    * single: one attempt at `temperature`.
    * iterative: up to `attempts` attempts, attempt k at `temperatures[k]` (see Iterative).
    * samples: `samples` independent attempts at `temperature` (for pass@k); the report.json lists
      describe sample 0, the pass@k section all of them.
    * best-of: `samples` attempts; the prediction is picked by visible tests, then a vote (see best_of).
    """

    name: ProtocolName = "single"
    attempts: int = Field(default=3, ge=1)
    temperatures: list[float] = Field(default_factory=lambda: list(DEFAULT_TEMPERATURES))
    samples: int = Field(default=1, ge=1)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)

    @model_validator(mode="after")
    def _consistent(self) -> ProtocolConfig:
        problem = self.protocol.invalid(self)
        if problem is not None:
            raise ValueError(problem)
        return self

    @property
    def protocol(self) -> Protocol:
        return REGISTRY[self.name]

    @property
    def units_per_task(self) -> int:
        """The most units one task can get."""
        return self.protocol.units_per_task(self)

    def temperature_for(self, index: int) -> float:
        return self.protocol.temperature_for(self, index)

    def describe(self) -> dict[str, object]:
        return self.protocol.describe(self)


def needs_retry(unit: UnitRecord) -> bool:
    """The iterative protocol's trigger: the attempt did not finish, or left an empty patch."""
    return not unit.finished or unit.empty


def pending(config: ProtocolConfig, units: Mapping[int, UnitRecord]) -> list[int]:
    """The unit indices that should run next for a task, given its finished units (by index)."""
    return config.protocol.pending(config, units)


def chosen_index(
    config: ProtocolConfig, units: Mapping[int, UnitRecord], selection: Selection | None
) -> int | None:
    """The unit whose patch is the task's prediction; None when the task has no such unit yet."""
    return config.protocol.chosen(units, selection)
