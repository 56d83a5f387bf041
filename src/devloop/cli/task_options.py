"""The task, grading and executor options `devloop eval`, `devloop sweep` and `devloop validate` share:
one definition each, so a flag reads and is explained the same in every command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

TASKS = "Tasks"
RUN = "Run"
EXECUTOR = "Executor"

Tasks = Annotated[
    Path | None,
    typer.Option(
        "--tasks",
        help="Task records: .json (list or dict by id) or .jsonl, "
        "in SWE-bench's fields (+ optional environment, repo_path).",
        rich_help_panel=TASKS,
    ),
]
Suite = Annotated[
    str | None,
    typer.Option(
        "--suite",
        help="A built-in suite: 'builtin' (20 small Python projects with real bugs).",
        rich_help_panel=TASKS,
    ),
]
Mirrors = Annotated[
    Path | None,
    typer.Option(
        "--mirrors",
        help="DIR holding each task's git repository (bare or not) as DIR/<owner>__<name> "
        "or DIR/<owner>+<name>/repo.",
        rich_help_panel=TASKS,
    ),
]
Instances = Annotated[
    str | None,
    typer.Option("--instances", help="Only these instance ids (comma-separated).", rich_help_panel=TASKS),
]
TestTimeout = Annotated[
    float, typer.Option("--test-timeout", help="Seconds for one instance's tests.", rich_help_panel=RUN)
]
CacheDir = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir", help="Environment cache \\[default: the user cache dir].", rich_help_panel=RUN
    ),
]
NoBuildCache = Annotated[
    bool,
    typer.Option(
        "--no-build-cache",
        help="Run every install command instead of restoring what an earlier grading's install of the same "
        "(repository, commit, environment, install script) left, from <cache-dir>/builds.",
        rich_help_panel=RUN,
    ),
]
NoPrefetch = Annotated[
    bool,
    typer.Option(
        "--no-prefetch",
        help="Make each grading's tree in its turn, instead of while the previous instance's tests run "
        "(each worker stages the tree and sandbox of the grading it runs next; no command of that task "
        "starts early).",
        rich_help_panel=RUN,
    ),
]
Grading = Annotated[
    str,
    typer.Option(
        "--grading",
        metavar="swebench4|swebench5",
        help="The official grading rules: swebench4 (the published Lite/Verified numbers) or swebench5 "
        "(a skipped FAIL_TO_PASS test fails; a non-zero test exit with no failure in the log is invalid).",
        rich_help_panel=RUN,
    ),
]
Executor = Annotated[
    str,
    typer.Option(
        "--executor",
        metavar="local|ray",
        help="What runs the attempts: a local process pool of --workers, or Ray (pip install 'devloop\\[ray]').",
        rich_help_panel=EXECUTOR,
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        metavar="ADDR",
        help="Join this Ray cluster (e.g. auto, ray://host:10001) \\[default: start Ray here with --workers CPUs].",
        rich_help_panel=EXECUTOR,
    ),
]
