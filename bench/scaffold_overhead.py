"""Scaffold overhead: the same scripted 50-step trajectory through devloop and through mini-swe-agent.

Both agents replay the same 49 bash commands (exploration, edits with sed/heredocs, test runs) on copies of
the same small repository, then submit the diff. devloop's replies come over HTTP from a local
OpenAI-compatible server (its real client path, with the trajectory and the patch written after every
step); mini-swe-agent uses its in-process DeterministicModel and LocalEnvironment (a subprocess per command)
and saves its trajectory after every step, as its CLI does. Rounds alternate between the two so machine
noise hits both alike; the medians and their ratio are printed.

    pip install mini-swe-agent
    python bench/scaffold_overhead.py [--rounds 5]

Target: devloop <= 0.5x mini-swe-agent's wall time.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

from devloop.config import load_settings
from devloop.demo import make_demo_repo
from devloop.models.scripted_server import ScriptedServer
from devloop.session import run_agent

SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && git add -A && git diff --cached"


def commands() -> list[str]:
    """49 realistic agent commands: look around, reproduce, edit, test, repeat."""
    look = [
        "ls -la",
        "find . -name '*.py' -not -path './.git/*' | sort",
        "grep -rn 'def median' .",
        "cat statkit/descriptive.py",
        "head -20 tests/test_descriptive.py",
        "git status --short",
        "python -c 'import statkit; print(statkit.__all__)'",
        "wc -l statkit/*.py tests/*.py",
    ]
    edits = [
        "sed -i 's/middle = len(data) \\/\\/ 2/middle = len(data) \\/\\/ 2  # index of the upper middle/' statkit/descriptive.py",
        "cat > .devloop_repro.py <<'EOF'\nfrom statkit import median\nprint(median([4, 1, 3, 2]))\nEOF",
        "python .devloop_repro.py",
        "python - <<'EOF'\nimport re, pathlib\np = pathlib.Path('statkit/descriptive.py')\ns = p.read_text()\n"
        "s = s.replace('    return data[middle]\\n', '    if len(data) % 2 == 0:\\n        return (data[middle - 1] + "
        "data[middle]) / 2\\n    return data[middle]\\n', 1)\np.write_text(s)\nEOF",
        "python .devloop_repro.py",
        "python -m unittest -q 2>&1 | tail -3",
    ]
    cmds: list[str] = []
    while len(cmds) < 49:
        cmds += look[: 49 - len(cmds)]
        cmds += edits[: 49 - len(cmds)]
    return cmds[:49]


def devloop_once(repo: Path, out: Path, cmds: list[str]) -> tuple[float, float, str]:
    script = [
        {
            "role": "assistant",
            "content": f"Step {i}.",
            "tool_calls": [
                {
                    "id": f"c{i}",
                    "type": "function",
                    "function": {"name": "execute_bash", "arguments": json.dumps({"command": c})},
                }
            ],
        }
        for i, c in enumerate(cmds)
    ]
    script.append(
        {
            "role": "assistant",
            "content": "Done.",
            "tool_calls": [
                {
                    "id": "fin",
                    "type": "function",
                    "function": {"name": "finish", "arguments": '{"message": "done"}'},
                }
            ],
        }
    )
    with ScriptedServer(script) as server:
        settings = load_settings(model="openai/bench", base_url=server.url, max_iterations=100)
        t0 = time.perf_counter()
        result = run_agent(repo, "Fix median for even-length input.", settings, out)
        elapsed = time.perf_counter() - t0
    assert result.exit_status == "finished" and result.steps == 50, result
    steps = [json.loads(line) for line in (out / "trajectory.jsonl").read_text().splitlines()]
    tools = sum(e["timings"]["tools_s"] for e in steps if e["type"] == "step")
    return elapsed, tools, result.patch


def mini_once(repo: Path, out: Path, cmds: list[str]) -> tuple[float, float, str]:
    from minisweagent.agents.default import DefaultAgent
    from minisweagent.environments.local import LocalEnvironment
    from minisweagent.models.test_models import DeterministicModel, make_output

    outputs = [make_output(f"Step {i}.", [{"command": c}]) for i, c in enumerate(cmds)]
    outputs.append(make_output("Done.", [{"command": SUBMIT}]))
    env = LocalEnvironment(cwd=str(repo))
    spent = [0.0]
    execute = env.execute

    def timed_execute(*a, **kw):  # the commands' own time, to separate it from the scaffold's
        t = time.perf_counter()
        try:
            return execute(*a, **kw)
        finally:
            spent[0] += time.perf_counter() - t

    env.execute = timed_execute
    agent = DefaultAgent(
        DeterministicModel(outputs=outputs),
        env,
        system_template="You are a helpful assistant that can run bash commands.",
        instance_template="Please solve this issue: {{task}}",
        step_limit=100,
        cost_limit=0,
        output_path=out / "traj.json",
    )
    t0 = time.perf_counter()
    info = agent.run("Fix median for even-length input.")
    elapsed = time.perf_counter() - t0
    assert info.get("exit_status") == "Submitted", info
    return elapsed, spent[0], info.get("submission", "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    try:
        import minisweagent  # noqa: F401
    except ImportError:
        raise SystemExit("mini-swe-agent is not installed: pip install mini-swe-agent") from None
    logging.getLogger("minisweagent").setLevel(logging.WARNING)
    os.environ.setdefault("MSWEA_SILENT_STARTUP", "1")
    cmds = commands()
    times: dict[str, list[float]] = {"devloop": [], "mini-swe-agent": []}
    overhead: dict[str, list[float]] = {"devloop": [], "mini-swe-agent": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds + 1):  # round 0 warms caches and imports for both
            for name, fn in (("devloop", devloop_once), ("mini-swe-agent", mini_once)):
                base = Path(tmp) / f"{name}-{r}"
                repo = make_demo_repo(base / "repo")
                elapsed, commands_s, patch = fn(repo, base / "out", cmds)
                assert "(data[middle - 1] + data[middle]) / 2" in patch, f"{name}: the fix is missing"
                if r:
                    times[name].append(elapsed)
                    overhead[name].append(elapsed - commands_s)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"50-step scripted trajectory, {args.rounds} alternating rounds (median wall time):")
    for name, t in med.items():
        per = 1000 * t / 50
        print(
            f"  {name:<15} {t:7.3f} s   ({per:5.1f} ms/step; runs: {', '.join(f'{x:.3f}' for x in times[name])})"
        )
    ratio = med["devloop"] / med["mini-swe-agent"]
    print(
        f"  ratio devloop / mini-swe-agent = {ratio:.2f}x  (target <= 0.5x: {'met' if ratio <= 0.5 else 'NOT met'})"
    )
    over = {k: statistics.median(v) for k, v in overhead.items()}
    print("scaffold time alone (wall time minus the time spent inside the 50 commands themselves):")
    for name, t in over.items():
        print(f"  {name:<15} {t:7.3f} s   ({1000 * t / 50:5.1f} ms/step)")
    print(f"  ratio devloop / mini-swe-agent = {over['devloop'] / over['mini-swe-agent']:.2f}x")


if __name__ == "__main__":
    main()
