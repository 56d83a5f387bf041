"""The `devloop` command line (typer). Each subcommand lives in its own module.

A command's module (and what it imports: pydantic, the agent, the openai client) is loaded only when that
command runs or shows its own help, so `devloop --version` and `devloop --help` start at once. The typer
application itself is in devloop.cli.root, loaded by `main` (and by `from devloop.cli import app`), except
for `devloop chat` with arguments its own parser reads in full: typer and click are not loaded before the
chat's first prompt (typer still parses anything else, `--help` and every error included).
"""

from __future__ import annotations

import sys
from typing import Any

# name -> (module under devloop.cli, the line `devloop --help` shows: <= 67 characters, or click cuts it at
# 80 columns), in the order --help lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run_cmd", "Resolve an issue in a repository (patch, trajectory, result)."),
    "chat": ("chat_cmd", "Chat with the agent in your repository; every turn undoable."),
    "replay": ("replay_cmd", "Render a run's trajectory step by step."),
    "recover": ("recover_cmd", "Write result.json and patch.diff of a killed run."),
    "demo": ("demo_cmd", "Watch the agent fix a bug in a bundled example repository."),
    "eval": ("eval_cmd", "Grade patches on SWE-bench-compatible tasks, without Docker."),
    "validate": ("validate_cmd", "Check that gold resolves and the test patch alone fails."),
    "sweep": ("sweep_cmd", "Attempts at every (temperature, max-iterations) setting; pass@k."),
    "report": ("report_cmd", "Summarise runs: resolve rates, pass@k, 95% CIs, plots."),
    "compare": ("compare_cmd", "Compare two runs on their shared tasks (McNemar, bootstrap)."),
    "complete": ("complete_cmd", "Fill in the middle at FILE:LINE:COL; prints the insertion."),
    "search": ("search_cmd", "Rank a repository's files and definitions for a query (BM25)."),
    "localize": ("localize_cmd", "File and function localisation vs SWE-bench gold patches."),
    "review": ("review_cmd", "Judge a run's patches in a local web app; export the reviews."),
    "policy": ("policy_cmd", "Inspect the command policy (allow / ask / deny rules)."),
    "dataset": ("dataset_cmd", "Fine-tuning data sets from graded runs (build, inspect, rules)."),
    "gate": ("gate_cmd", "Gated model evaluation: tokenizer check first, decision matrix."),
}  # fmt: skip


_TYPER_NAMES = ("app", "_LazyGroup", "_load", "_loaded", "_register", "_flags_take_no_value")


def __getattr__(name: str) -> Any:
    """`app` and the root's helpers, from devloop.cli.root (importing typer) when first asked for."""
    if name in _TYPER_NAMES:
        from devloop.cli import root

        return getattr(root, name)
    raise AttributeError(f"module 'devloop.cli' has no attribute {name!r}")


_settling = False  # whether settle() freezes: only in the `devloop` process itself (main), never a host's


def main() -> None:
    global _settling
    _settling = True
    try:
        if sys.argv[1:2] == ["chat"]:
            from devloop.cli.chat_start import main_fast

            main_fast(sys.argv[2:])  # returns only when typer must parse these arguments
        from devloop.cli.root import main as typer_main

        typer_main()
    finally:
        settle()  # the interpreter's exit then collects nothing: a process ends faster by ~0.1 s
        _settling = False


def settle() -> None:
    """Move every object made so far out of the garbage collector's sight (`gc.freeze`).

    A command's modules, its pydantic models and the tasks it loaded live until the process exits, yet
    every full collection would walk them again, and the exit walks them all once more. Called once a
    command's code is loaded, once its inputs are, and at exit; frozen objects are still freed by their
    reference counts, only cycles among them wait for the process to end. A no-op outside `main`: a
    program or test calling the CLI in-process keeps its collector as it was."""
    if _settling:
        import gc

        gc.freeze()
