"""The decision matrix (what a failed gate means) and `gate run`: gates cheapest first, stopping by it."""

from __future__ import annotations

import os
import shutil
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from devloop.gate import full, lora, smoke, tools
from devloop.gate.latency import run_latency_gate, settings_from_table
from devloop.gate.result import GateInputError, GateResult
from devloop.gate.smoke import SharedWeights, weights_shared
from devloop.gate.tokenizer import FAMILIES, run_tokenizer_gate

Action = Literal["stop", "soft-no-go", "caution", "keep-baseline"]
ACTIONS: dict[str, str] = {
    "stop": "STOP: do not adopt the model; later gates are not run",
    "soft-no-go": "soft no-go: continue, but the model is not adopted on this gate alone",
    "caution": "proceed with caution: continue, and watch this area in later gates",
    "keep-baseline": "keep the baseline model",
}
# A failed gate's consequence. The default: a model that cannot tokenise its own tool calls, or does not
# load, is out; slowness is a soft no-go; weak zero-shot tool calling is a caution (a LoRA may fix it); a
# LoRA that does not learn is out; failing at full scale keeps the baseline.
DEFAULT_MATRIX: dict[int, Action] = {
    0: "stop",
    1: "stop",
    2: "soft-no-go",
    3: "caution",
    4: "stop",
    5: "keep-baseline",
}
GATE_NAMES = {0: "tokenizer", 1: "smoke", 2: "latency", 3: "tools", 4: "lora", 5: "full"}
EXIT_GO, EXIT_STOP, EXIT_CAUTION = 0, 1, 3


@dataclass
class GateConfig:
    source: Path
    matrix: dict[int, Action] = field(default_factory=lambda: dict(DEFAULT_MATRIX))
    gates: dict[int, dict[str, Any]] = field(default_factory=dict)


def load_config(path: Path) -> GateConfig:
    """gates.toml: `[decision]` overrides the matrix (`2 = "caution"`), `[gateN]` tables configure gates."""
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as e:
        raise GateInputError(f"cannot read {path}: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise GateInputError(f"{path}: {e}") from e
    config = GateConfig(source=path)
    for key, value in data.items():
        if key == "decision":
            if not isinstance(value, dict):
                raise GateInputError(f"{path}: [decision] must be a table")
            for gate, action in value.items():
                number = _gate_number(path, f"decision.{gate}", gate)
                if action not in ACTIONS:
                    raise GateInputError(
                        f"{path}: decision.{gate}: {action!r} is not one of {', '.join(ACTIONS)}"
                    )
                config.matrix[number] = action
        elif key.startswith("gate") and isinstance(value, dict):
            config.gates[_gate_number(path, key, key.removeprefix("gate"))] = value
        else:
            raise GateInputError(f"{path}: unknown key {key!r} (expected [decision] or [gate0]..[gate5])")
    for number, table in config.gates.items():
        _check_gate_table(path, number, table)
    return config


def _gate_number(path: Path, where: str, text: str) -> int:
    if not text.isdigit() or int(text) not in GATE_NAMES:
        raise GateInputError(f"{path}: {where}: gate numbers are 0..5")
    return int(text)


def _check_gate_table(path: Path, number: int, table: dict[str, Any]) -> None:
    if number == 1:
        smoke.settings_from_table(str(path), table)
        return
    if number == 4:
        lora.settings_from_table(path.parent, str(path), table)
        return
    if number == 2:
        settings_from_table(str(path), table)
        return
    if number == 3:
        tools.settings_from_table(str(path), table)
        return
    if number == 5:
        full.settings_from_table(str(path), table)
        return
    if number != 0:
        raise GateInputError(
            f"{path}: [gate{number}] ({GATE_NAMES[number]}) is not implemented in this build"
        )
    if not isinstance(table.get("tokenizer"), str):
        raise GateInputError(f"{path}: gate0.tokenizer: a path to the tokenizer is required")
    if table.get("family", "mistral") not in FAMILIES:
        raise GateInputError(f"{path}: gate0.family: must be one of {', '.join(FAMILIES)}")
    unknown = set(table) - {"tokenizer", "family"}
    if unknown:
        raise GateInputError(f"{path}: gate0: unknown key {sorted(unknown)[0]!r}")


def _script_relative(config: GateConfig, spec: str) -> str:
    """A `scripted/PATH` model spec with PATH taken relative to the config file."""
    script = spec.removeprefix("scripted/")
    if spec.startswith("scripted/") and not Path(script).is_absolute():
        return f"scripted/{config.source.parent / script}"
    return spec


def _relative(config: GateConfig, path: str | None) -> str | None:
    """A path from the config, taken relative to the config file's directory."""
    if path is None or Path(path).is_absolute():
        return path
    return str(config.source.parent / path)


def _run_one(config: GateConfig, number: int) -> GateResult:
    table = config.gates[number]
    if number == 1:
        found = smoke.settings_from_table(str(config.source), table)
        if found.weights is not None and not Path(found.weights).is_absolute():
            found.weights = str(config.source.parent / found.weights)
        if found.model is not None:
            found.model = _script_relative(config, found.model)
        return smoke.run_smoke_gate(found)
    if number == 4:
        return lora.run_lora_gate(lora.settings_from_table(config.source.parent, str(config.source), table))
    if number == 2:
        settings = settings_from_table(str(config.source), table)
        settings.model = _script_relative(config, settings.model) if settings.model else None
        settings.weights = _relative(config, settings.weights)
        settings.baseline = _relative(config, settings.baseline)
        return run_latency_gate(settings)
    if number == 3:
        found3 = tools.settings_from_table(str(config.source), table)
        found3.model = _script_relative(config, found3.model) if found3.model else None
        found3.weights = _relative(config, found3.weights)
        found3.suite = _relative(config, found3.suite)
        return tools.run_tools_gate(found3)
    if number == 5:
        found5 = full.settings_from_table(str(config.source), table)
        found5.model = _script_relative(config, found5.model) if found5.model else None
        found5.weights = _relative(config, found5.weights)
        found5.suite = _relative(config, found5.suite)
        found5.gguf_out = _relative(config, found5.gguf_out)
        return full.run_full_gate(found5)
    tokenizer = Path(table["tokenizer"])
    if not tokenizer.is_absolute() and not table["tokenizer"].startswith("mistral-common:"):
        tokenizer = config.source.parent / tokenizer  # relative to the config file, not the cwd
    return run_tokenizer_gate(tokenizer, table.get("family", "mistral"))


@dataclass
class Decision:
    results: list[GateResult]
    notes: list[str]
    exit_code: int
    skipped: list[int]
    weights: SharedWeights | None = None  # how often local weights were loaded and reused in the run

    @property
    def verdict(self) -> str:
        return {EXIT_GO: "GO", EXIT_STOP: "STOP", EXIT_CAUTION: "PROCEED WITH CAUTION"}[self.exit_code]


def decide(results: list[GateResult], matrix: dict[int, Action], planned: list[int]) -> Decision:
    """Apply the matrix to results in gate order; a `stop` or `keep-baseline` ends the run."""
    notes: list[str] = []
    code = EXIT_GO
    for result in results:
        if result.status == "pass":
            notes.append(f"gate {result.gate} ({result.name}) passed.")
            continue
        action = matrix[result.gate]
        why = "; ".join(f"{c.name}: {c.detail}" for c in result.failures)
        notes.append(f"gate {result.gate} ({result.name}) failed ({why}) -> {ACTIONS[action]}.")
        if action in ("stop", "keep-baseline"):
            code = EXIT_STOP
            break
        code = EXIT_CAUTION
    done = {r.gate for r in results}
    return Decision(results, notes, code, [n for n in planned if n not in done])


def run_gates(
    config: GateConfig,
    out_dir: Path,
    first: int = 0,
    last: int = 5,
    runner: Callable[[GateConfig, int], GateResult] = _run_one,
) -> Decision:
    """Run the configured gates in [first, last] in order, writing each gate's JSON as it finishes."""
    planned = [n for n in sorted(config.gates) if first <= n <= last]
    if not planned:
        raise GateInputError(f"{config.source}: no configured gate in {first}..{last}")
    results: list[GateResult] = []
    with weights_shared() as shared:
        for number in planned:
            started = time.perf_counter()
            result = runner(config, number)
            result.details.setdefault("gate_s", time.perf_counter() - started)
            result.write(out_dir)
            results.append(result)
            if decide(results, config.matrix, planned).exit_code == EXIT_STOP:
                break
    decision = decide(results, config.matrix, planned)
    decision.weights = shared
    write_report(decision, config.matrix, out_dir)
    return decision


def _curve_link(result: GateResult, out_dir: Path) -> str:
    """A copy of the loss-curve PNG beside the report, linked relatively, so the report travels whole."""
    source = Path(str(result.details["loss_curve_png"]))
    name = f"gate{result.gate}-loss_curve.png"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if source.resolve() != (out_dir / name).resolve():
            shutil.copyfile(source, out_dir / name)
    except OSError:
        return f"![loss curve]({source})"
    return f"![loss curve]({name})"


def write_report(decision: Decision, matrix: dict[int, Action], out_dir: Path) -> Path:
    lines = [
        f"# Gate decision: {decision.verdict}",
        "",
        "| gate | name | status | on failure | seconds |",
        "|---|---|---|---|---|",
    ]
    for r in decision.results:
        took = r.details.get("gate_s")
        seconds = f"{took:.1f}" if isinstance(took, (int, float)) else "-"
        lines.append(f"| {r.gate} | {r.name} | {r.status} | {matrix[r.gate]} | {seconds} |")
    for n in decision.skipped:
        lines.append(f"| {n} | {GATE_NAMES[n]} | not run | {matrix[n]} | - |")
    lines += ["", "## Why", "", *(f"- {note}" for note in decision.notes)]
    if decision.skipped:
        lines.append(f"- not run after the stop: gates {', '.join(map(str, decision.skipped))}.")
    for r in decision.results:
        if isinstance(r.details.get("table_md"), str):
            lines += ["", f"## Gate {r.gate} ({r.name}): tool calls per category", "", r.details["table_md"]]
        if isinstance(r.details.get("loss_curve_png"), str):
            lines += ["", f"## Gate {r.gate} ({r.name}): loss curve", "", _curve_link(r, out_dir)]
    shared = decision.weights
    if shared is not None and shared.loads:
        lines += [
            "",
            f"Local weights: loaded {shared.loads} time(s), reused {shared.reuses} time(s) across gates "
            f"({shared.saved_s:.1f} s of loading saved).",
        ]
    lines += ["", f"Exit code {decision.exit_code} (0 GO, 1 STOP, 3 proceed with caution / soft no-go).", ""]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "decision.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines), "utf-8")
    os.replace(tmp, path)
    return path
