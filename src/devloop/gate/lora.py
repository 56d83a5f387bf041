"""Gate 4: a small LoRA (peft) on chat-formatted tool-call examples: training loss must fall and validation
loss must not rise; the adapter is fused (`merge_and_unload`), saved, reloaded from disk and must
reproduce the fused model's validation loss. torch / transformers / peft are imported here only."""

from __future__ import annotations

import importlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devloop.gate.result import Check, GateInputError, GateResult, library_versions
from devloop.gate.smoke import load_local


@dataclass
class LoraSettings:
    weights: str
    examples: tuple[dict[str, Any], ...]  # {"prompt": ..., "completion": ...}
    validation: tuple[dict[str, Any], ...]
    steps: int = 8
    learning_rate: float = 5e-3
    rank: int = 8
    out_dir: str = "lora-merged"
    seed: int = 0


def _texts(tokenizer: Any, rows: tuple[dict[str, Any], ...]) -> list[str]:
    """Each example in the model's chat format when it has a template, else prompt + completion."""
    texts = []
    for row in rows:
        if getattr(tokenizer, "chat_template", None):
            messages = [
                {"role": "user", "content": row["prompt"]},
                {"role": "assistant", "content": row["completion"]},
            ]
            texts.append(str(tokenizer.apply_chat_template(messages, tokenize=False)))
        else:
            texts.append(f"{row['prompt']}\n{row['completion']}{tokenizer.eos_token or ''}")
    return texts


def _loss(torch: Any, model: Any, batch: Any) -> float:
    with torch.no_grad():
        return float(model(**batch, labels=batch["input_ids"]).loss)


def run_lora_gate(settings: LoraSettings) -> GateResult:
    if not settings.examples or not settings.validation:
        raise GateInputError("gate4: training examples and validation examples are both required")
    torch: Any = importlib.import_module("torch")
    try:
        peft: Any = importlib.import_module("peft")
    except ImportError as e:
        raise GateInputError(f"gate4 needs peft: pip install 'devloop[gate]' ({e})") from e
    result = GateResult(gate=4, name="lora", versions=library_versions())
    torch.manual_seed(settings.seed)
    tokenizer, model, device = load_local(Path(settings.weights))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    def batch(rows: tuple[dict[str, Any], ...]) -> Any:
        return tokenizer(_texts(tokenizer, rows), return_tensors="pt", padding=True).to(device)

    train, valid = batch(settings.examples), batch(settings.validation)
    config = peft.LoraConfig(r=settings.rank, lora_alpha=2 * settings.rank, target_modules="all-linear")
    model = peft.get_peft_model(model, config)
    optimiser = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=settings.learning_rate
    )
    valid_before = _loss(torch, model, valid)
    curve: list[float] = []
    started = time.perf_counter()
    model.train()
    for _ in range(settings.steps):
        loss = model(**train, labels=train["input_ids"]).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
        curve.append(float(loss.detach()))
    model.eval()
    valid_after = _loss(torch, model, valid)
    result.details.update({"train_s": time.perf_counter() - started, "loss_curve": curve})
    result.details.update({"validation_loss_before": valid_before, "validation_loss_after": valid_after})
    finite = all(math.isfinite(v) for v in curve)
    result.checks.append(
        Check("training loss falls", finite and curve[-1] < curve[0], f"{curve[0]:.3f} -> {curve[-1]:.3f}")
    )
    result.checks.append(
        Check(
            "no divergence",
            valid_after <= valid_before,
            f"validation {valid_before:.3f} -> {valid_after:.3f}",
        )
    )
    merged = model.merge_and_unload()
    out = Path(settings.out_dir)
    merged.save_pretrained(out)
    tokenizer.save_pretrained(out)
    _, reloaded, _ = load_local(out)
    valid_reloaded = _loss(torch, reloaded, valid)
    result.details.update({"merged_dir": str(out), "validation_loss_reloaded": valid_reloaded})
    same = math.isclose(valid_reloaded, valid_after, rel_tol=1e-3, abs_tol=1e-4)
    result.checks.append(Check("fused model reloads", same, f"reloaded validation loss {valid_reloaded:.4f}"))
    (out / "loss_curve.json").write_text(json.dumps(curve) + "\n", "utf-8")
    return result


def read_examples(path: Path) -> tuple[dict[str, Any], ...]:
    """A JSONL file of {"prompt", "completion"} rows; a bad line is named by file and line."""
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError as e:
        raise GateInputError(f"cannot read {path}: {e.strerror}") from e
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise GateInputError(f"{path}:{n}: not JSON ({e})") from e
        if not (
            isinstance(row, dict)
            and isinstance(row.get("prompt"), str)
            and isinstance(row.get("completion"), str)
        ):
            raise GateInputError(f'{path}:{n}: expected {{"prompt": str, "completion": str}}')
        rows.append(row)
    if not rows:
        raise GateInputError(f"{path}: no examples")
    return tuple(rows)


def settings_from_table(base: Path, where: str, table: dict[str, Any]) -> LoraSettings:
    """LoraSettings from a [gate4] table; paths are relative to `base` (the config's directory)."""
    allowed = {"weights", "examples", "validation", "steps", "learning_rate", "rank", "out_dir", "seed"}
    unknown = set(table) - allowed
    if unknown:
        raise GateInputError(f"{where}: gate4: unknown key {sorted(unknown)[0]!r}")
    for key in ("weights", "examples", "validation"):
        if not isinstance(table.get(key), str):
            raise GateInputError(f"{where}: gate4.{key}: a path is required")
    for key in ("steps", "rank", "seed"):
        if key in table and (
            not isinstance(table[key], int) or isinstance(table[key], bool) or table[key] < 0
        ):
            raise GateInputError(f"{where}: gate4.{key}: a non-negative integer")
    values = dict(table)
    for key in ("weights", "examples", "validation", "out_dir"):
        if key in values and not Path(values[key]).is_absolute():
            values[key] = str(base / values[key])
    values["examples"] = read_examples(Path(values["examples"]))
    values["validation"] = read_examples(Path(values["validation"]))
    return LoraSettings(**values)
