"""Gate 4: a small LoRA. Training examples (the tool-calling suite's `train` split rendered in a devloop
tool-call format, or a JSONL of `{"prompt", "completion"}` / `{"messages"}` rows such as `devloop dataset
build` writes) are put in the model's chat format; trl's SFTTrainer trains a peft LoRA for K steps, with the
validation loss measured before, during and after; the adapter is fused (`merge_and_unload`), saved,
reloaded from disk (which must reproduce the fused model's validation loss) and evaluated on the suite's
held-out `validation` queries, which must reach `min_accuracy`. Divergence (validation loss rising) fails
the gate. The loss curve is drawn to a PNG. torch / transformers / peft / trl are imported here only."""

from __future__ import annotations

import importlib
import json
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devloop.gate.lora_data import completion_of, prompt_completion, read_examples, suite_rows
from devloop.gate.result import Check, GateInputError, GateResult, library_versions
from devloop.gate.smoke import load_local
from devloop.gate.suite import load_suite

SUITE_DATA = "suite"  # examples / validation = "suite": the tool-calling suite's train / validation split
TRAIN_FORMATS = ("mistral", "hermes", "xml")  # text formats: the call is the reply text the model learns


@dataclass
class LoraSettings:
    weights: str
    examples: tuple[dict[str, Any], ...] | str = SUITE_DATA  # rows, or "suite"
    validation: tuple[dict[str, Any], ...] | str = SUITE_DATA
    format: str = "mistral"
    suite: str | None = None
    steps: int = 8
    learning_rate: float = 5e-3
    rank: int = 8
    batch_size: int = 4
    out_dir: str = "lora-merged"
    seed: int = 0
    min_accuracy: float = 0.6
    eval_max_tokens: int = 128
    baseline: bool = True  # also evaluate the held-out queries before training, for the contrast
    # The trainer's validation loss every N steps (None: about three times per run; 0: never). Each pass
    # costs a forward over the whole validation set, so evaluating every step of a short CPU run doubles
    # it; the divergence check compares devloop's own losses before and after training either way.
    eval_every: int | None = None
    max_examples: int | None = None  # N: train on the first N examples only


def _loss(torch: Any, model: Any, tokenizer: Any, pairs: list[dict[str, str]], device: str) -> float:
    """Mean loss over the completion tokens of the validation pairs (the prompt masked out), the loss
    trl's SFTTrainer trains prompt/completion rows on: the divergence check and the curve's first point
    must measure what the trainer's own validation loss measures."""
    total, count = 0.0, 0
    eos = tokenizer.eos_token or ""
    for pair in pairs:
        prompt = tokenizer(pair["prompt"], add_special_tokens=False)["input_ids"]
        full = tokenizer(
            pair["prompt"] + pair["completion"] + eos, return_tensors="pt", add_special_tokens=False
        )
        full = full.to(device)
        labels = full["input_ids"].clone()
        labels[:, : len(prompt)] = -100
        n = int((labels[:, 1:] != -100).sum())  # the model predicts token i+1 from token i
        if n == 0:
            continue
        with torch.no_grad():
            total += float(model(**full, labels=labels).loss) * n
        count += n
    return total / count if count else float("nan")


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise GateInputError(f"gate4 needs {name}: pip install 'devloop[gate]' ({e})") from e


def run_lora_gate(settings: LoraSettings) -> GateResult:
    from devloop.gate.local import LocalModel
    from devloop.gate.tools import ask, format_report

    if settings.format not in TRAIN_FORMATS:
        raise GateInputError(
            f"gate4.format: one of {', '.join(TRAIN_FORMATS)} (a call the model writes as text)"
        )
    torch: Any = _import("torch")
    peft: Any = _import("peft")
    trl: Any = _import("trl")
    datasets: Any = _import("datasets")
    suite = load_suite(Path(settings.suite) if settings.suite else None)
    examples = (
        settings.examples
        if not isinstance(settings.examples, str)
        else suite_rows(suite, "train", settings.format)
    )
    validation = (
        settings.validation
        if not isinstance(settings.validation, str)
        else suite_rows(suite, "validation", settings.format)
    )
    if settings.max_examples is not None:
        examples = examples[: settings.max_examples]
    if not examples or not validation:
        raise GateInputError("gate4: training examples and validation examples are both required")
    empty = sum(not completion_of(r, settings.format).strip() for r in examples)
    if empty:
        raise GateInputError(f"gate4: {empty} training example(s) end with an empty assistant turn")
    held_out = suite.split("validation")
    result = GateResult(gate=4, name="lora", versions=library_versions())
    torch.manual_seed(settings.seed)
    started = time.perf_counter()
    tokenizer, model, device = load_local(Path(settings.weights), take=True)  # trained in place
    local = LocalModel.wrap(tokenizer, model, device)
    result.details["load_s"] = time.perf_counter() - started

    def prompt_of(messages: list[dict[str, Any]]) -> str:
        return local.prompt(messages, None)

    train_pairs = [prompt_completion(prompt_of, r, settings.format) for r in examples]
    valid_pairs = [prompt_completion(prompt_of, r, settings.format) for r in validation]
    spec = f"local/{settings.weights}"
    if settings.baseline:
        began = time.perf_counter()
        before = format_report(
            ask(local, spec, settings.format, suite, held_out, settings.eval_max_tokens), {}
        )
        result.details["held_out_before"] = {"passed": before["passed"], "total": before["total"]}
        result.details["baseline_eval_s"] = time.perf_counter() - began
    valid_before = _loss(torch, model, tokenizer, valid_pairs, device)

    cuda = device == "cuda"
    every = eval_interval(settings.steps, settings.eval_every)
    with tempfile.TemporaryDirectory(prefix="devloop-lora-") as scratch:
        config = trl.SFTConfig(
            output_dir=scratch,
            max_steps=settings.steps,
            learning_rate=settings.learning_rate,
            per_device_train_batch_size=settings.batch_size,
            per_device_eval_batch_size=max(1, len(valid_pairs)),
            logging_steps=1,
            eval_strategy="steps" if every else "no",
            eval_steps=every or None,
            save_strategy="no",
            report_to="none",
            seed=settings.seed,
            use_cpu=not cuda,
            bf16=cuda and model.dtype == torch.bfloat16,
            fp16=cuda and model.dtype == torch.float16,  # loss scaling; the LoRA weights stay fp32
            lr_scheduler_type="constant",
            warmup_steps=0,
            dataloader_num_workers=0,
            disable_tqdm=True,
            max_length=None,  # never cut a prompt: its completion is what is learned
        )
        lora_config = peft.LoraConfig(
            r=settings.rank, lora_alpha=2 * settings.rank, target_modules="all-linear", task_type="CAUSAL_LM"
        )
        try:
            trainer = trl.SFTTrainer(
                model=model,
                args=config,
                train_dataset=datasets.Dataset.from_list(train_pairs),
                eval_dataset=datasets.Dataset.from_list(valid_pairs),
                processing_class=tokenizer,
                peft_config=lora_config,
            )
            began = time.perf_counter()
            trainer.train()
            result.details["train_s"] = time.perf_counter() - began
            history = trainer.state.log_history
        except Exception as e:  # noqa: BLE001 - any trainer failure is the gate's verdict, not a crash
            result.checks.append(Check("training runs", False, _one_line(e)))
            return result
    curve = [float(h["loss"]) for h in history if "loss" in h and "eval_loss" not in h]
    evals = [(int(h["step"]), float(h["eval_loss"])) for h in history if "eval_loss" in h]
    trained = trainer.model
    trained.eval()
    valid_after = _loss(torch, trained, tokenizer, valid_pairs, device)
    if not evals or evals[-1][0] != settings.steps:
        # The last point is devloop's own completion-only loss after training: the same measure as the
        # trainer's, so the curve ends where the divergence check looks.
        evals.append((settings.steps, valid_after))
    result.details["eval_every"] = every
    result.details.update({"steps": settings.steps, "examples": len(train_pairs), "format": settings.format})
    result.details.update({"loss_curve": curve, "eval_curve": evals})
    result.details.update({"validation_loss_before": valid_before, "validation_loss_after": valid_after})
    finite = bool(curve) and all(math.isfinite(v) for v in curve)
    result.checks.append(
        Check(
            "training loss falls",
            finite and curve[-1] < curve[0],
            f"{curve[0]:.3f} -> {curve[-1]:.3f}" if curve else "no loss logged",
        )
    )
    rising = not math.isfinite(valid_after) or valid_after > valid_before
    result.checks.append(
        Check("no divergence", not rising, f"validation loss {valid_before:.3f} -> {valid_after:.3f}")
    )
    out = Path(settings.out_dir)
    try:
        merged = trained.merge_and_unload()
        merged.save_pretrained(out)
        tokenizer.save_pretrained(out)
    except Exception as e:  # noqa: BLE001 - a failed fuse or save is reported, not raised
        result.checks.append(Check("fused model saved", False, f"{out}: {_one_line(e)}"))
        return result
    (out / "loss_curve.json").write_text(json.dumps({"train": curve, "validation": evals}) + "\n", "utf-8")
    result.details["loss_curve_png"] = str(plot_curve(curve, evals, valid_before, out / "loss_curve.png"))
    reloaded_tok, reloaded, _ = load_local(out)
    valid_reloaded = _loss(torch, reloaded, reloaded_tok, valid_pairs, device)
    result.details.update({"merged_dir": str(out), "validation_loss_reloaded": valid_reloaded})
    same = math.isclose(valid_reloaded, valid_after, rel_tol=1e-3, abs_tol=1e-4)
    result.checks.append(Check("fused model reloads", same, f"reloaded validation loss {valid_reloaded:.4f}"))
    began = time.perf_counter()
    fused = LocalModel.wrap(reloaded_tok, reloaded, device)
    after = format_report(
        ask(fused, f"local/{out}", settings.format, suite, held_out, settings.eval_max_tokens), {}
    )
    result.details["eval_s"] = time.perf_counter() - began
    result.details["held_out_after"] = {
        "passed": after["passed"],
        "total": after["total"],
        "failures": after["failures"],
    }
    result.checks.append(
        Check(
            "held-out tool calls",
            after["overall"] >= settings.min_accuracy,
            f"{after['passed']}/{after['total']} = {after['overall']:.0%} (min {settings.min_accuracy:.0%})",
        )
    )
    return result


def eval_interval(steps: int, every: int | None) -> int:
    """Steps between the trainer's validation passes (0: none during training)."""
    if every is None:
        return max(1, math.ceil(steps / 3))
    return every


def _one_line(error: BaseException) -> str:
    first = (str(error).strip().splitlines() or [""])[0][:300]
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def plot_curve(curve: list[float], evals: list[tuple[int, float]], valid_before: float, path: Path) -> Path:
    """Training loss per step and validation loss (step 0 = before training) as a PNG."""
    matplotlib: Any = _import("matplotlib")
    matplotlib.use("Agg")  # no display: render to a file
    pyplot: Any = importlib.import_module("matplotlib.pyplot")
    figure, axes = pyplot.subplots(figsize=(6, 3.5), dpi=100)
    axes.plot(range(1, len(curve) + 1), curve, marker="o", markersize=3, label="training loss")
    points = [(0, valid_before), *evals]
    axes.plot([s for s, _ in points], [v for _, v in points], marker="s", label="validation loss")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title("Gate 4: LoRA loss")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
    return path


_INTS = ("steps", "rank", "seed", "batch_size", "eval_max_tokens", "eval_every", "max_examples")


def settings_from_table(
    base: Path, where: str, table: dict[str, Any], section: str = "gate4"
) -> LoraSettings:
    """LoraSettings from a [gate4] table (or `section`, e.g. gate5.train); paths are relative to `base`
    (the config's directory)."""
    allowed = set(LoraSettings.__dataclass_fields__)
    unknown = set(table) - allowed
    if unknown:
        raise GateInputError(f"{where}: {section}: unknown key {sorted(unknown)[0]!r}")
    for key in ("weights", "examples", "validation", "format", "suite", "out_dir"):
        if key in table and not isinstance(table[key], str):
            raise GateInputError(f"{where}: {section}.{key}: a path is required")
    if not isinstance(table.get("weights"), str):
        raise GateInputError(f"{where}: {section}.weights: a path is required")
    for key in _INTS:
        if key in table and (
            not isinstance(table[key], int) or isinstance(table[key], bool) or table[key] < 0
        ):
            raise GateInputError(f"{where}: {section}.{key}: a non-negative integer")
    if table.get("format", "mistral") not in TRAIN_FORMATS:
        raise GateInputError(f"{where}: {section}.format: one of {', '.join(TRAIN_FORMATS)}")
    accuracy = table.get("min_accuracy", 0.6)
    if not isinstance(accuracy, (int, float)) or isinstance(accuracy, bool) or not 0 <= accuracy <= 1:
        raise GateInputError(f"{where}: {section}.min_accuracy: a rate in 0..1")
    values = dict(table)
    for key in ("weights", "examples", "validation", "out_dir", "suite"):
        if key in values and values[key] != SUITE_DATA and not Path(values[key]).is_absolute():
            values[key] = str(base / values[key])
    for key in ("examples", "validation"):
        if values.get(key, SUITE_DATA) != SUITE_DATA:
            values[key] = read_examples(Path(values[key]))
    return LoraSettings(**values)
