"""What `devloop eval` and `devloop sweep` share for protocols: flag checking and the run itself."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError
from rich.console import Console

from devloop.cli.errors import fail
from devloop.config import RunSettings
from devloop.protocols.engine import ProtocolError, ProtocolResult, run_protocol
from devloop.protocols.executors import EXECUTORS, ExecutorError, make_executor
from devloop.protocols.policy import PROTOCOLS, ProtocolConfig
from devloop.tasks.model import Task


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
                    executor: str, ray_address: str | None, grading_predictions: bool) -> ProtocolConfig | None:  # fmt: skip
    """The protocol the flags ask for; None for the plain single-attempt local run (the harness's run_eval,
    whose layout keeps each agent run in instances/<id>/agent). Fails with one line on a bad combination."""
    if name not in PROTOCOLS:
        fail(f"--protocol: unknown protocol {name!r}; expected one of {', '.join(PROTOCOLS)}")
    if executor not in EXECUTORS:
        fail(f"--executor: unknown executor {executor!r}; expected one of {', '.join(EXECUTORS)}")
    if ray_address and executor != "ray":
        fail("--ray-address needs --executor ray")
    if grading_predictions:
        if name != "single" or executor != "local":
            fail("--protocol and --executor ray run the agent: use them with --model, not --predictions")
        return None
    if name == "iterative" and temperature is not None:
        fail("--protocol iterative samples each attempt at its --temperatures value; drop --temperature")
    if name == "best-of" and samples < 2:
        fail("--protocol best-of needs --samples 2 or more")
    if name == "single" and executor == "local":
        return None
    try:
        return ProtocolConfig(name=name, attempts=attempts, temperatures=parse_floats(temperatures, "--temperatures"),
                              samples=samples, temperature=temperature or 0.0)  # type: ignore[arg-type]  # fmt: skip
    except ValidationError as exc:
        fail(exc.errors()[0]["msg"].removeprefix("Value error, "))


def run_protocol_cli(tasks: Sequence[Task], settings: RunSettings, config: ProtocolConfig, *, executor: str,
                     ray_address: str | None, workers: int, run_id: str | None, output: Path,
                     cache_dir: Path | None, mirrors: Path | None, test_timeout: float, keep_workdirs: bool,
                     console: Console, progress: bool = True) -> ProtocolResult:  # fmt: skip
    """Start the executor, run the protocol, and turn its errors into one-line CLI errors."""
    from devloop.harness import default_run_id

    run_id = run_id or default_run_id()
    if not run_id or "/" in run_id or run_id in (".", ".."):
        fail(f"--run-id {run_id!r} must be a plain directory name")
    try:
        pool = make_executor(executor, workers, ray_address)
    except ExecutorError as exc:
        fail(str(exc))
    try:
        return run_protocol(tasks, settings, config, executor=pool, run_id=run_id, output=output,
                            cache_dir=cache_dir, mirrors=mirrors, test_timeout=test_timeout,
                            keep_workdirs=keep_workdirs, console=console, progress=progress,
                            meta={"executor": executor, "workers": workers})  # fmt: skip
    except ProtocolError as exc:
        pool.close(cancel=True)
        fail(str(exc))
