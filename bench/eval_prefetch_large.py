"""Prefetch on a large tree: `devloop eval` with and without `--no-prefetch` when each instance's tree is
as large as a SWE-bench repository's.

A generated git repository of `--files` Python files (default 6,000, about django's count) in 60
packages; `--instances` tasks at its one commit, each graded with a one-line gold patch and a test
command that takes `--test-seconds` (a `sleep`: the tests' own time without their CPU, so that only the
tree's making is compared). One worker, the default sandbox, a warm environment cache (the builtin
suite's environment, built by a first unmeasured run). Each round runs both, in alternating order, and
prints the wall time of each, the ratio, and what the extraction took per instance (the `extract`
timing: for a prefetched grading, the staging's).

Without `--agent-latency`, the gold patches are graded as predictions: the prefetch makes the next
grading's tree during this one's tests. With `--agent-latency S`, an agent makes each patch: a scripted
model whose every reply takes S seconds (a model's pace; `latency` in the script format) and which
answers `--agent-steps` replies (looks around, makes the gold edit, finishes). The prefetch then makes
each attempt's own grading tree while its agent works; `--no-prefetch` makes it after the agent finishes.

    python bench/eval_prefetch_large.py [--rounds 2] [--files 6000] [--instances 4] [--test-seconds 6]
                                        [--agent-latency S [--agent-steps 4]] [--against REV]

`--against REV` adds, in every round, the prefetch run of that git revision's `src/` (exported to a
temporary directory): the same tasks, script and cache. With an agent, REV must know the script's
`latency` (else its model answers at once and the two do different work).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", *args], cwd=cwd,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout


def make_tasks(root: Path, files: int, instances: int, test_seconds: float) -> Path:
    repo = root / "repo"
    rng = random.Random(1)
    for i in range(files):
        sub = repo / f"pkg{i % 60}" / f"sub{i % 7}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"m{i}.py").write_text(f"x = {i}\n" * rng.randint(5, 200))
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    base = git(repo, "rev-parse", "HEAD").strip()
    with (repo / "pkg0" / "sub0" / "m0.py").open("a") as f:
        f.write("x = -1\n")
    gold = git(repo, "diff")
    git(repo, "checkout", "-q", ".")
    env = {"python": f"{sys.version_info.major}.{sys.version_info.minor}", "pip": ["pytest==8.3.3"],
           "install": "", "test_cmd": f"sh -c 'sleep {test_seconds:g}; echo PASSED t::ok'", "log_parser": "pytest",
           "env": {}}  # fmt: skip
    tasks = [
        {"instance_id": f"large__tree-{i}", "repo": "large/tree", "base_commit": base, "problem_statement": "x",
         "patch": gold, "test_patch": "", "FAIL_TO_PASS": ["t::ok"], "PASS_TO_PASS": [], "repo_path": str(repo),
         "environment": env}
        for i in range(instances)
    ]  # fmt: skip
    path = root / "tasks.json"
    path.write_text(json.dumps(tasks))
    return path


def agent_script(root: Path, latency: float, steps: int) -> Path:
    """A scripted model that takes `latency` seconds per reply: `steps` - 2 looks, the gold edit, finish."""

    def bash(command: str) -> dict[str, object]:
        return {"content": "", "latency": latency,
                "tool_calls": [{"function": {"name": "execute_bash", "arguments": {"command": command}}}]}  # fmt: skip

    entries = [bash("ls pkg0/sub0 | head -3") for _ in range(max(0, steps - 2))]
    entries += [bash("echo 'x = -1' >> pkg0/sub0/m0.py"),
                {"content": "", "latency": latency,
                 "tool_calls": [{"function": {"name": "finish", "arguments": {"message": "done"}}}]}]  # fmt: skip
    path = root / "agent.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


def run_eval(
    tasks: Path, out: Path, cache: Path, prefetch: bool, agent: Path | None = None, src: Path | None = None
) -> tuple[float, list[float], list[float]]:
    """(wall seconds, each instance's extract seconds, each instance's agent seconds) of one 1-worker run:
    the gold predictions graded, or the scripted `agent`'s patches made and graded; `src`: that `src/`
    tree's devloop instead of this one."""
    solve = (
        ["--predictions", "gold"]
        if agent is None
        else ["--model", f"scripted/{agent}", "--protocol", "single"]
    )
    argv = [sys.executable, "-m", "devloop", "eval", "--tasks", str(tasks), *solve,
            "--workers", "1", "--output", str(out), "--run-id", "r", "--cache-dir", str(cache)]  # fmt: skip
    argv += [] if prefetch else ["--no-prefetch"]
    env = os.environ if src is None else {**os.environ, "PYTHONPATH": str(src)}
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    wall = time.perf_counter() - t0
    verdicts = [json.loads(p.read_text()) for p in sorted((out / "r" / "instances").glob("*/verdict.json"))]
    if proc.returncode != 0 or not verdicts or any(v["category"] != "resolved" for v in verdicts):
        raise SystemExit(
            f"devloop eval did not resolve every instance: {(proc.stderr or proc.stdout)[-500:]}"
        )
    shutil.rmtree(out)
    os.sync()  # untimed: this run's writes go back to the disk before the next run starts
    timings = [v["timings"] for v in verdicts]
    return (
        wall,
        [float(t.get("extract", 0.0)) for t in timings],
        [float(t.get("agent", 0.0)) for t in timings],
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--files", type=int, default=6000)
    ap.add_argument("--instances", type=int, default=4)
    ap.add_argument("--test-seconds", type=float, default=6.0)
    ap.add_argument("--agent-latency", type=float, default=None, help="seconds per model reply: an agent run")
    ap.add_argument("--agent-steps", type=int, default=4)
    ap.add_argument("--against", metavar="REV", help="also the prefetch run of this git revision's src/")
    args = ap.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory(prefix="devloop-bench-large-") as tmp_s:
        tmp = Path(tmp_s)
        tasks = make_tasks(tmp, args.files, args.instances, args.test_seconds)
        cache = tmp / "cache"
        agent = (
            None if args.agent_latency is None else agent_script(tmp, args.agent_latency, args.agent_steps)
        )
        old = None
        if args.against:
            from startup import export_src  # bench/startup.py, beside this file

            (tmp / "old").mkdir()
            old = export_src(args.against, tmp / "old")
        run_eval(tasks, tmp / "warm", cache, True, agent)  # builds the environment once
        # Each side: (prefetch, src). Their order turns by one each round.
        sides: list[tuple[str, bool, Path | None]] = [
            ("prefetch", True, None),
            ("--no-prefetch", False, None),
        ]
        if old is not None:
            sides.append((f"{args.against} (prefetch)", True, old))
        walls: dict[str, list[float]] = {name: [] for name, _, _ in sides}
        extract: dict[str, list[float]] = {name: [] for name, _, _ in sides}
        agents: dict[str, list[float]] = {name: [] for name, _, _ in sides}
        for r in range(args.rounds):
            for i in range(len(sides)):
                name, prefetch, src = sides[(i + r) % len(sides)]
                wall, ext, ag = run_eval(tasks, tmp / f"run{r}-{i}", cache, prefetch, agent, src)
                walls[name].append(wall)
                extract[name] += ext
                agents[name] += ag
        solver = ("gold predictions" if agent is None
                  else f"an agent of {args.agent_steps} replies at {args.agent_latency:g} s each")  # fmt: skip
        print(f"{args.instances} instances of a {args.files}-file tree, tests {args.test_seconds:g} s each, "
              f"1 worker, {solver}")  # fmt: skip
        for name, _, _ in sides:
            part = f"; the agent's part {statistics.median(agents[name]):.2f} s" if agent is not None else ""
            print(f"  {name:<14} wall {statistics.median(walls[name]):6.1f} s "
                  f"(per instance: extraction {statistics.median(extract[name]):.2f} s{part})")  # fmt: skip

        def ratio(a: str, b: str) -> None:
            rs = [x / y for x, y in zip(walls[a], walls[b], strict=True)]
            print(f"  {a} / {b}, wall: {statistics.median(rs):.2f}x (spread {min(rs):.2f}-{max(rs):.2f})")

        ratio("prefetch", "--no-prefetch")
        if old is not None:
            ratio("prefetch", sides[2][0])
            ratio("--no-prefetch", sides[2][0])


if __name__ == "__main__":
    main()
