"""Prompt bytes sent per request over a long run, with and without `--condense`, side by side.

One agent run of `--turns` steps (each reads a ~3 KB file, as an agent reading code does), against the
scripted OpenAI-compatible server over HTTP, twice: without condensation, and with it at a context
window of `--window` tokens (the server lists it as vLLM's `max_model_len`). The summary requests the
condensed run makes are counted in its bytes. "Prefix reuse" is the share of each agent request's bytes
that repeat the start of the request before it: what a server's prefix cache can serve warm.

    python bench/prompt_bytes.py [--turns 100] [--window 16000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from devloop.condense import SUMMARY_REQUEST
from devloop.config import load_settings
from devloop.models.scripted_server import ScriptedServer
from devloop.session import run_agent


def make_repo(root: Path) -> Path:
    repo = root / "repo"
    repo.mkdir()
    (repo / "data.txt").write_text("".join(f"row {n}: some value here\n" for n in range(120)))
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    for args in (
        ["init", "-q"],
        ["add", "-A"],
        ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "s"],
    ):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True)
    return repo


def script(turns: int) -> list[dict[str, Any]]:
    def call(i: int, name: str, **args: Any) -> dict[str, Any]:
        fn = {"name": name, "arguments": json.dumps(args)}
        return {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": f"c{i}", "type": "function", "function": fn}],
        }

    steps = [call(i, "execute_bash", command=f"cat data.txt # {i}") for i in range(turns - 1)]
    summaries = [
        {"when": SUMMARY_REQUEST, "content": f"Summary {n}: data.txt read many times."} for n in range(turns)
    ]
    return [*steps, call(turns, "finish", message="done"), *summaries]


def prefix_reuse(requests: list[dict[str, Any]]) -> float:
    """Mean share of each agent request's message bytes equal to the start of the previous one's."""
    texts = [json.dumps(r["messages"]).encode() for r in requests if SUMMARY_REQUEST not in json.dumps(r)]
    shares = []
    for before, now in zip(texts, texts[1:], strict=False):
        n = next(
            (i for i, (a, b) in enumerate(zip(before, now, strict=False)) if a != b),
            min(len(before), len(now)),
        )
        shares.append(n / len(now))
    return statistics.mean(shares) if shares else 0.0


def measure(repo: Path, out: Path, turns: int, window: int | None) -> dict[str, Any]:
    with ScriptedServer(script(turns), context_window=window) as server:
        settings = load_settings(model="openai/scripted", base_url=server.url, sandbox="none",
                                 condense=window is not None, max_iterations=turns + 5)  # fmt: skip
        result = run_agent(repo, "Read data.txt again and again.", settings, out)
        sizes, requests = list(server.request_sizes), list(server.requests)
    summaries = sum(SUMMARY_REQUEST in json.dumps(r) for r in requests)
    return {"status": result.exit_status, "steps": result.steps, "requests": len(sizes), "summaries": summaries,
            "total": sum(sizes), "mean": statistics.mean(sizes), "max": max(sizes), "reuse": prefix_reuse(requests)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--window", type=int, default=16000, help="context window in tokens, condensed run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp))
        plain = measure(repo, Path(tmp) / "plain", args.turns, None)
        condensed = measure(repo, Path(tmp) / "condensed", args.turns, args.window)
    print(f"{args.turns}-turn run, ~3 KB observation per turn; condensed at a {args.window:,}-token window")
    print(f"{'':12}{'status':>10}{'steps':>7}{'requests':>10}{'summaries':>11}{'total bytes':>14}"
          f"{'mean/request':>14}{'max/request':>13}{'prefix reuse':>14}")  # fmt: skip
    for name, row in (("plain", plain), ("--condense", condensed)):
        print(f"{name:12}{row['status']:>10}{row['steps']:>7}{row['requests']:>10}{row['summaries']:>11}"
              f"{row['total']:>14,}{row['mean']:>14,.0f}{row['max']:>13,}{row['reuse']:>14.1%}")  # fmt: skip
    print(
        f"ratio plain / --condense: total bytes {plain['total'] / condensed['total']:.2f}x, "
        f"max request {plain['max'] / condensed['max']:.2f}x"
    )


if __name__ == "__main__":
    main()
