"""`devloop dataset build|inspect|rules`: fine-tuning data sets from graded eval runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from devloop.cli.errors import fail

dataset_app = typer.Typer(no_args_is_help=True, help="Fine-tuning data sets from graded runs.")


def register(app: typer.Typer) -> None:
    app.add_typer(dataset_app, name="dataset")


@dataset_app.command("build", no_args_is_help=True)
def build_(
    runs: Annotated[
        list[Path],
        typer.Argument(help="Eval run directories, `devloop run` directories, chat sessions or chat stores."),
    ],
    out: Annotated[Path, typer.Option("--out", help="Where to write the data set.")],
    filters: Annotated[
        Path | None, typer.Option("--filters", help="TOML file with [stage1] / [stage2] rules.")
    ] = None,
    format_: Annotated[str, typer.Option("--format", help="openai, mistral or sharegpt.")] = "openai",
    render: Annotated[str, typer.Option("--render", help="Comma list of native, xml.")] = "native",
    split_by: Annotated[str, typer.Option("--split-by", help="repo or instance.")] = "repo",
    valid_fraction: Annotated[float, typer.Option("--valid-fraction", help="Share in valid.")] = 0.1,
    decontaminate: Annotated[
        Path | None, typer.Option("--decontaminate", help="Tasks file: its ids and problems excluded.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split.")] = 0,
    system_prompt: Annotated[
        Path | None,
        typer.Option("--system-prompt", help="The inference system prompt, swapped in for each run's."),
    ] = None,
) -> None:
    """Write DIR/stage1, DIR/stage2 (train/valid JSONL and hf/), DIR/preferences, DIR/refiner,
    trajectories.jsonl, filter_report.json, report.md and plots/."""
    from devloop.dataset.build import FORMATS, build, load_filters, task_ids
    from devloop.dataset.collect import kind

    if format_ not in FORMATS:
        fail(f"--format {format_}: give one of {', '.join(FORMATS)}")
    renders = tuple(r.strip() for r in render.split(",") if r.strip())
    if not renders or set(renders) - {"native", "xml"}:
        fail(f"--render {render}: give native, xml or native,xml")
    if split_by not in ("repo", "instance"):
        fail(f"--split-by {split_by}: give repo or instance")
    if not 0.0 <= valid_fraction < 1.0:
        fail(f"--valid-fraction {valid_fraction}: give a number in [0, 1)")
    for run in runs:
        if kind(run) is None:
            fail(
                f"{run}: not an eval run directory (instances/), a run directory (trajectory.jsonl), "
                "a chat session (session.json) or a chat store (sessions/)"
            )
    try:
        rules = load_filters(filters)
        exclude = task_ids(decontaminate) if decontaminate else None
        system = system_prompt.read_text(encoding="utf-8") if system_prompt else None
    except (OSError, ValueError, KeyError, UnicodeDecodeError) as exc:
        fail(str(exc))
    report = build(
        runs, out, seed=seed, valid_fraction=valid_fraction, renders=renders, split_by=split_by,
        filters=rules, exclude=exclude, fmt=format_, system=system,
    )  # fmt: skip
    for stage, s in report["stages"].items():
        typer.echo(f"{stage}: train {s['kept']['train']}, valid {s['kept']['valid']}")
    for name, n in sorted(report["outputs"].items()):
        typer.echo(f"{name}: {n}")
    if report["mistral_invalid"]:
        typer.echo(f"rows mistral-common refused (left out, see report.md): {len(report['mistral_invalid'])}")


@dataset_app.command("inspect", no_args_is_help=True)
def inspect_(
    dir_: Annotated[Path, typer.Argument(help="A data set written by dataset build.")],
    tokenizer: Annotated[
        str | None,
        typer.Option(
            "--tokenizer",
            help="Show the example as this Mistral tokenizer encodes it: mistral (the tekken file inside "
            "mistral-common), or a tekken.json / tokenizer.model.vN.",
        ),
    ] = None,
) -> None:
    """Print counts per stage and split, and one example as the model sees it."""
    from devloop.cli.safe_text import shown
    from devloop.dataset.inspect import inspect

    try:
        text = inspect(dir_, tokenizer)
    except (OSError, ValueError) as exc:
        fail(str(exc))
    typer.echo(shown(text))  # the example is model-written: no escape sequence reaches the terminal


@dataset_app.command("rules")
def rules_() -> None:
    """Print the default stage rules as a --filters TOML file (copy, edit, pass back with --filters)."""
    from devloop.dataset.filters import DEFAULTS

    typer.echo(DEFAULTS.read_text(encoding="utf-8"), nl=False)
