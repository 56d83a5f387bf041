"""`devloop gate`: gated model evaluation, cheapest gate first, stopped by a decision matrix."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from devloop.cli.errors import fail

if TYPE_CHECKING:
    from devloop.gate.result import GateResult

gate_app = typer.Typer(
    name="gate",
    help="Gated model evaluation: exit 0 GO, 1 STOP, 3 proceed with caution / soft no-go.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the `gate` command group to `app`."""
    app.add_typer(gate_app, name="gate")


OutOption = Annotated[Path, typer.Option("--out", help="Directory for gateN-*.json and decision.md.")]


@gate_app.command("run")
def run(
    config: Annotated[Path, typer.Option("--config", help="gates.toml: [gateN] tables and [decision].")],
    first: Annotated[int, typer.Option("--from", help="First gate to run.")] = 0,
    last: Annotated[int, typer.Option("--to", help="Last gate to run.")] = 5,
    out: OutOption = Path("gates-out"),
) -> None:
    """Run the configured gates in order; stop where the decision matrix says STOP."""
    from devloop.gate.matrix import load_config, run_gates
    from devloop.gate.result import GateInputError

    if not (0 <= first <= last <= 5):
        fail(f"--from {first} --to {last}: gates are 0..5 and --from must not exceed --to")
    try:
        decision = run_gates(load_config(config), out, first, last)
    except GateInputError as e:
        fail(str(e))
    for note in decision.notes:
        typer.echo(note)
    typer.echo(f"{decision.verdict} (report: {out / 'decision.md'})")
    raise typer.Exit(decision.exit_code)


@gate_app.command("tokenizer")
def tokenizer(
    path: Annotated[Path, typer.Option("--tokenizer", help="Tokenizer file or directory (local only).")],
    family: Annotated[str, typer.Option("--family", help="mistral or hermes.")] = "mistral",
    out: OutOption = Path("gates-out"),
) -> None:
    """Gate 0: tool-call delimiters are single tokens; a rendered tool call parses back."""
    from devloop.gate.tokenizer import FAMILIES, run_tokenizer_gate

    if family not in FAMILIES:
        fail(f"--family {family!r}: must be one of {', '.join(FAMILIES)}")
    _finish(lambda: run_tokenizer_gate(path, family), 0, out)


@gate_app.command("latency")
def latency(
    model: Annotated[
        str | None, typer.Option("--model", help="openai/NAME, mistral/NAME or scripted/PATH.")
    ] = None,
    weights: Annotated[
        Path | None, typer.Option("--weights", help="Local weights: a transformers directory or a .gguf.")
    ] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="Tokens per reply.", min=1)] = 256,
    base_url: Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible server URL.")] = None,
    max_mean_s: Annotated[float | None, typer.Option("--max-mean-s", help="Ceiling on the mean.")] = None,
    max_p90_s: Annotated[float | None, typer.Option("--max-p90-s", help="Ceiling on the p90.")] = None,
    baseline_mean_s: Annotated[
        float | None, typer.Option("--baseline-mean-s", help="The current model's recorded mean.")
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option("--baseline", help="A gate2-latency.json recorded on the current model: its mean."),
    ] = None,
    max_ratio: Annotated[float, typer.Option("--max-ratio", help="Allowed mean / baseline mean.")] = 1.0,
    out: OutOption = Path("gates-out"),
) -> None:
    """Gate 2: mean and p90 generation time on representative queries."""
    from devloop.gate.latency import LatencySettings, run_latency_gate

    if (model is None) == (weights is None):
        fail("gate latency: give exactly one of --model (a served model) or --weights (local weights)")
    settings = LatencySettings(
        model=model,
        weights=str(weights) if weights else None,
        max_tokens=max_tokens,
        base_url=base_url,
        max_mean_s=max_mean_s,
        max_p90_s=max_p90_s,
        baseline_mean_s=baseline_mean_s,
        baseline=str(baseline) if baseline else None,
        max_ratio=max_ratio,
    )
    _finish(lambda: run_latency_gate(settings), 2, out)


@gate_app.command("smoke")
def smoke(
    model: Annotated[str | None, typer.Option("--model", help="A served model: openai/NAME, ...")] = None,
    weights: Annotated[
        Path | None, typer.Option("--weights", help="Local weights: a transformers directory or a .gguf.")
    ] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible server URL.")] = None,
    max_load_s: Annotated[float | None, typer.Option("--max-load-s", help="Ceiling on load time.")] = None,
    max_peak_mb: Annotated[float | None, typer.Option("--max-peak-mb", help="Ceiling on peak RSS.")] = None,
    runtime: Annotated[
        str, typer.Option("--runtime", help="transformers, or llama.cpp for a .gguf (the llama extra).")
    ] = "transformers",
    out: OutOption = Path("gates-out"),
) -> None:
    """Gate 1: the model loads and writes Python that parses."""
    from devloop.gate.llamacpp import RUNTIMES
    from devloop.gate.smoke import SmokeSettings, run_smoke_gate

    if runtime not in RUNTIMES:
        fail(f"--runtime {runtime!r}: must be one of {', '.join(RUNTIMES)}")
    settings = SmokeSettings(
        runtime=runtime,
        model=model,
        weights=str(weights) if weights else None,
        base_url=base_url,
        max_load_s=max_load_s,
        max_peak_mb=max_peak_mb,
    )
    _finish(lambda: run_smoke_gate(settings), 1, out)


@gate_app.command("tools")
def tools(
    model: Annotated[str | None, typer.Option("--model", help="A served model: openai/NAME, ...")] = None,
    weights: Annotated[
        Path | None, typer.Option("--weights", help="Local weights: a transformers directory or a .gguf.")
    ] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible server URL.")] = None,
    formats: Annotated[
        list[str] | None, typer.Option("--format", help="A tool-call format (repeatable; default: all).")
    ] = None,
    suite: Annotated[
        Path | None, typer.Option("--suite", help="A suite JSON (default: the shipped one).")
    ] = None,
    split: Annotated[str, typer.Option("--split", help="train, validation or test.")] = "test",
    per_category: Annotated[
        int | None, typer.Option("--per-category", help="Only the first N queries of each category.")
    ] = None,
    require: Annotated[
        str, typer.Option("--require", help="any: some format passes; all: every one.")
    ] = "any",
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="Tokens per reply.")] = 256,
    out: OutOption = Path("gates-out"),
) -> None:
    """Gate 3: zero-shot tool calling on devloop's suite, per category, in every tool-call format."""
    from devloop.formats.registry import FORMAT_NAMES
    from devloop.gate.tools import ToolsSettings, run_tools_gate

    for name in formats or ():
        if name.strip().lower() not in FORMAT_NAMES:
            fail(f"--format {name!r}: must be one of {', '.join(FORMAT_NAMES)}")
    settings = ToolsSettings(
        model=model,
        weights=str(weights) if weights else None,
        base_url=base_url,
        formats=tuple(formats) if formats else FORMAT_NAMES,
        suite=str(suite) if suite else None,
        split=split,
        per_category=per_category,
        require=require,
        max_tokens=max_tokens,
    )
    _finish(lambda: run_tools_gate(settings), 3, out)


@gate_app.command("full")
def full(
    model: Annotated[str | None, typer.Option("--model", help="A served model: openai/NAME, ...")] = None,
    weights: Annotated[
        Path | None, typer.Option("--weights", help="Local weights: a transformers directory or a .gguf.")
    ] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible server URL.")] = None,
    format_name: Annotated[
        str, typer.Option("--format", help="The tool-call format to deploy with.")
    ] = "mistral",
    overall_min: Annotated[float, typer.Option("--overall-min", help="Overall pass rate needed.")] = 0.85,
    max_size_mb: Annotated[
        float | None, typer.Option("--max-size-mb", help="Ceiling on size on disk.")
    ] = None,
    max_mean_s: Annotated[
        float | None, typer.Option("--max-mean-s", help="Ceiling on seconds per query.")
    ] = None,
    gguf_out: Annotated[
        Path | None, typer.Option("--gguf-out", help="Export the weights to this GGUF (the gguf package).")
    ] = None,
    gguf_type: Annotated[str, typer.Option("--gguf-type", help="f32, f16, bf16, q8_0, ...")] = "f16",
    quantize: Annotated[
        str | None, typer.Option("--quantize", help="More GGUF types, e.g. Q8_0,Q4_0 (Q4_K_M: llama.cpp).")
    ] = None,
    llama_cpp: Annotated[Path | None, typer.Option("--llama-cpp", help="llama.cpp checkout.")] = None,
    gguf_in_llama_cpp: Annotated[
        bool,
        typer.Option(
            "--gguf-in-llama-cpp", help="Also load and run each exported GGUF in llama.cpp (the llama extra)."
        ),
    ] = False,
    train_steps: Annotated[
        int | None,
        typer.Option(
            "--train-steps", help="First train a LoRA on --weights for K steps (Gate 4 at full scale).", min=1
        ),
    ] = None,
    examples: Annotated[
        Path | None,
        typer.Option("--examples", help="Training JSONL for --train-steps (default: the suite's)."),
    ] = None,
    merged: Annotated[
        Path, typer.Option("--merged", help="Where --train-steps saves the fused model.")
    ] = Path("gate5-merged"),
    out: OutOption = Path("gates-out"),
) -> None:
    """Gate 5: optional full-scale LoRA, then the full suite (overall and per-category minimums), size,
    speed, optional GGUF export."""
    from devloop.formats.registry import FORMAT_NAMES
    from devloop.gate.full import FullSettings, run_full_gate
    from devloop.gate.lora import SUITE_DATA, TRAIN_FORMATS, LoraSettings
    from devloop.gate.lora_data import read_examples
    from devloop.gate.result import GateInputError

    if format_name not in FORMAT_NAMES:
        fail(f"--format {format_name!r}: must be one of {', '.join(FORMAT_NAMES)}")
    train = None
    if train_steps is not None:
        if weights is None:
            fail("--train-steps: needs --weights (local weights to train)")
        if format_name not in TRAIN_FORMATS:
            fail(f"--train-steps: --format must be one the model writes as text ({', '.join(TRAIN_FORMATS)})")
        try:
            rows = read_examples(examples) if examples else SUITE_DATA
        except GateInputError as e:
            fail(str(e))
        train = LoraSettings(
            weights=str(weights), examples=rows, format=format_name, steps=train_steps, out_dir=str(merged),
            baseline=False, min_accuracy=0.0,
        )  # fmt: skip
    if gguf_in_llama_cpp and gguf_out is None:
        fail("--gguf-in-llama-cpp: needs --gguf-out (the file to run)")
    if gguf_out is not None and llama_cpp is None:
        from devloop.gate.gguf_export import ExportError, normalise_type

        try:
            normalise_type(gguf_type)
        except ExportError as e:
            fail(f"--gguf-type: {e}")
    settings = FullSettings(
        model=model,
        weights=str(weights) if weights else None,
        base_url=base_url,
        format=format_name,
        overall_min=overall_min,
        max_size_mb=max_size_mb,
        max_mean_s=max_mean_s,
        gguf_out=str(gguf_out) if gguf_out else None,
        gguf_type=gguf_type,
        quantize=quantize,
        llama_cpp=str(llama_cpp) if llama_cpp else None,
        gguf_in_llama_cpp=gguf_in_llama_cpp,
        train=train,
    )
    _finish(lambda: run_full_gate(settings), 5, out)


@gate_app.command("lora")
def lora(
    weights: Annotated[
        Path, typer.Option("--weights", help="Local weights: a transformers directory or a .gguf.")
    ],
    examples: Annotated[
        Path | None,
        typer.Option(
            "--examples",
            help="Training JSONL: {prompt, completion} or {messages} (default: the suite's train split).",
        ),
    ] = None,
    validation: Annotated[
        Path | None,
        typer.Option("--validation", help="Validation JSONL, same shapes (default: the suite's)."),
    ] = None,
    format_name: Annotated[
        str, typer.Option("--format", help="mistral, hermes or xml: how calls are written.")
    ] = "mistral",
    steps: Annotated[int, typer.Option("--steps", help="Training steps.")] = 8,
    max_examples: Annotated[
        int | None, typer.Option("--max-examples", help="Train on the first N examples only.", min=1)
    ] = None,
    learning_rate: Annotated[float, typer.Option("--learning-rate", help="AdamW learning rate.")] = 5e-3,
    rank: Annotated[int, typer.Option("--rank", help="LoRA rank.")] = 8,
    min_accuracy: Annotated[
        float, typer.Option("--min-accuracy", help="Held-out tool calls that must be right.")
    ] = 0.6,
    merged: Annotated[Path, typer.Option("--merged", help="Where the fused model is saved.")] = Path(
        "lora-merged"
    ),
    out: OutOption = Path("gates-out"),
) -> None:
    """Gate 4: LoRA steps (peft + trl); loss falls, no divergence, the fused model reloads and calls tools."""
    from devloop.gate.lora import SUITE_DATA, LoraSettings, run_lora_gate
    from devloop.gate.lora_data import read_examples

    def run_gate() -> GateResult:
        settings = LoraSettings(
            weights=str(weights),
            examples=read_examples(examples) if examples else SUITE_DATA,
            validation=read_examples(validation) if validation else SUITE_DATA,
            format=format_name,
            steps=steps,
            max_examples=max_examples,
            learning_rate=learning_rate,
            rank=rank,
            min_accuracy=min_accuracy,
            out_dir=str(merged),
        )
        return run_lora_gate(settings)

    _finish(run_gate, 4, out)


def _finish(run_gate: Callable[[], GateResult], number: int, out: Path) -> None:
    """Run one gate, write its JSON and a one-gate decision report, exit by the default matrix."""
    from devloop.gate.matrix import DEFAULT_MATRIX, decide, write_report
    from devloop.gate.result import GateInputError

    started = time.perf_counter()
    try:
        result = run_gate()
    except GateInputError as e:
        fail(str(e))
    result.details.setdefault("gate_s", time.perf_counter() - started)
    result.write(out)
    for check in result.checks:
        mark = {True: "ok", False: "FAIL", None: "n/a"}[check.ok]
        typer.echo(f"{mark:4} {check.name}: {check.detail}")
    if isinstance(result.details.get("table_md"), str):
        typer.echo(result.details["table_md"])
    decision = decide([result], DEFAULT_MATRIX, [number])
    write_report(decision, DEFAULT_MATRIX, out)
    typer.echo(decision.verdict)
    raise typer.Exit(decision.exit_code)
