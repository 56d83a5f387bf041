"""What `devloop eval` and `devloop sweep` share: flag checking, and the run itself with its bar and summary."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from devloop.cli import settle
from devloop.cli.errors import fail
from devloop.cli.eval_view import EvalProgress, print_summary, warnings_for
from devloop.cli.interrupts import latched_interrupt
from devloop.cli.protocol_view import print_protocol
from devloop.config import RunSettings
from devloop.eval.engine import ProtocolError, ProtocolResult, run_protocol
from devloop.eval.executors import EXECUTORS, ExecutorError, make_executor
from devloop.eval.protocols import PROTOCOLS, ProtocolConfig
from devloop.eval.store import RunStore, default_run_id
from devloop.runtime.limits import Limits
from devloop.tasks.model import Prediction, Task


def parse_floats(text: str, flag: str) -> list[float]:
    """ "0,0.1,0.1" -> [0.0, 0.1, 0.1]; a bad item fails naming the flag."""
    values = []
    for item in text.split(","):
        try:
            values.append(float(item.strip()))
        except ValueError:
            fail(f"{flag}: {item.strip()!r} is not a number (expected e.g. 0,0.1,0.1)")
    return values


def parse_ints(text: str, flag: str) -> list[int]:
    """ "30,50,100" -> [30, 50, 100], each > 0; a bad item fails naming the flag."""
    values = []
    for item in text.split(","):
        try:
            value = int(item.strip())
        except ValueError:
            fail(f"{flag}: {item.strip()!r} is not a whole number (expected e.g. 30,50,100)")
        if value <= 0:
            fail(f"{flag}: {value} must be positive")
        values.append(value)
    return values


def protocol_config(name: str, *, attempts: int, temperatures: str, samples: int, temperature: float | None,
                    executor: str, ray_address: str | None, grading_predictions: bool) -> ProtocolConfig:  # fmt: skip
    """The protocol the flags ask for. Fails with one line on a bad combination."""
    if name not in PROTOCOLS:
        fail(f"--protocol: unknown protocol {name!r}; expected one of {', '.join(PROTOCOLS)}")
    if executor not in EXECUTORS:
        fail(f"--executor: unknown executor {executor!r}; expected one of {', '.join(EXECUTORS)}")
    if ray_address and executor != "ray":
        fail("--ray-address needs --executor ray")
    try:
        config = ProtocolConfig(name=name, attempts=attempts, temperatures=parse_floats(temperatures, "--temperatures"),
                                samples=samples, temperature=temperature or 0.0)  # type: ignore[arg-type]  # fmt: skip
    except ValidationError as exc:
        fail(exc.errors()[0]["msg"].removeprefix("Value error, "))
    if grading_predictions and (not config.protocol.takes_predictions or executor != "local"):
        fail("--protocol and --executor ray run the agent: use them with --model, not --predictions")
    if (
        problem := config.protocol.flag_problem(config, temperature_given=temperature is not None)
    ) is not None:
        fail(problem)
    return config


def resume_command(run_id: str, flag: str = "--run-id") -> str:
    """The command line that resumes this run: the one given, with `flag run_id` when it had none."""
    args = sys.argv[1:]
    if not any(a == flag or a.startswith(flag + "=") for a in args):
        args = [*args, flag, run_id]
    return shlex.join(["devloop", *args])


def run_protocol_cli(tasks: Sequence[Task], settings: RunSettings | None, config: ProtocolConfig, *,
                     executor: str, ray_address: str | None, workers: int, run_id: str | None, output: Path,
                     cache_dir: Path | None, mirrors: Path | None, test_timeout: float, keep_workdirs: bool,
                     console: Console, progress: bool = True, predictions: Mapping[str, Prediction] | None = None,
                     confinement: tuple[str, Limits] | None = None, force_resume: bool = False,
                     resume_flag: str = "--run-id", resume_id: str | None = None,
                     grading: str = "swebench4", build_cache: bool = True, prefetch: bool = True) -> ProtocolResult:  # fmt: skip
    """Start the executor, run the protocol behind a progress bar, print the summary and its warnings;
    turn errors into one-line CLI errors, and Ctrl-C into the count on disk and the command that resumes.
    `grading` names the official rules (checked by the caller against `devloop.swebench.grading.RULES`);
    `prefetch` False is --no-prefetch."""
    run_id = run_id or default_run_id()
    if not run_id or "/" in run_id or run_id in (".", ".."):
        fail(f"--run-id {run_id!r} must be a plain directory name")
    settle()  # the tasks and the grading's modules live as long as the run (and a pool's workers fork)
    try:
        pool = make_executor(executor, workers, ray_address, prefetch=prefetch)
    except ExecutorError as exc:
        fail(str(exc))
    store = RunStore(output, run_id)
    try:
        with (
            latched_interrupt() as interrupted,
            EvalProgress(
                config.name if settings else "eval", len(tasks), enabled=progress, console=console
            ) as bar,
        ):

            def on_progress(state: Any) -> None:
                interrupted()
                bar.update(state)

            result = run_protocol(tasks, settings, config, predictions=predictions, executor=pool, run_id=run_id,
                                  output=output, cache_dir=cache_dir, mirrors=mirrors, test_timeout=test_timeout,
                                  keep_workdirs=keep_workdirs, confinement=confinement, force_resume=force_resume,
                                  meta={"executor": executor, "workers": workers}, on_progress=on_progress,
                                  grading=grading, build_cache=build_cache)  # type: ignore[arg-type]  # fmt: skip
            interrupted()  # the last verdict came in after a Ctrl-C that was dropped
    except ProtocolError as exc:
        pool.close(cancel=True)
        fail(str(exc))
    except KeyboardInterrupt:
        on_disk = len(store.done_ids() & {t.instance_id for t in tasks})
        console.print(
            f"[yellow]interrupted:[/] {on_disk} of {len(tasks)} verdicts are on disk in {escape(str(store.root))}; "
            f"resume with: {escape(resume_command(resume_id or run_id, resume_flag))}"
        )
        raise typer.Exit(130) from None
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    if progress:
        print_summary(result.report, console)
        if settings is not None:
            print_protocol(result.sections, console)
    for line in warnings_for(result.report, store, mirrors):
        console.print(f"[yellow]warning:[/] {escape(line)}")
    return result
