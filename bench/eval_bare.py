"""The floor of bench/eval_overhead.py: the builtin suite's test commands run bare (no devloop, no
sandbox), one at a time and two at a time, on trees holding what the grading's trees hold (the base
commit's files with the gold and test patches applied; made here with `git archive | tar` and `git apply`,
untimed). It only ever runs the packaged builtin suite's own tests on its gold patches, never a model's.

From a graded run directory it takes, per instance, the repository and base commit, the gold and test
patches and the environment's test command (tasks.jsonl), and runs that command on the test patch's
files as the grading does (devloop.swebench.directives), checked against the `$ ...` line the grading's
test log starts with. Each tree is made once; every timed pass runs on fresh copies of
them (copied before the clock starts: the tests write their bytecode into the tree, as they do under
devloop, so a second pass on the same tree would do less work). The lanes take the instances longest
first, as devloop's scheduler does, and each command's exit status must be 0 (the gold patches pass), so
the floor and devloop run the same tests to the same end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from diskprobe import busy_cpu_s

from devloop.swebench.directives import test_directives


@dataclass(frozen=True)
class Case:
    instance_id: str
    command: str
    seconds: float  # its tests' own time in the graded run: the lanes' order


def cases(run_dir: Path, trees: Path) -> list[Case]:
    """The run's instances, each with its tree made under `trees` (base commit + gold + test patch)."""
    found = []
    for line in (run_dir / "tasks.jsonl").read_text().splitlines():
        task = json.loads(line)
        iid = task["instance_id"]
        inst = run_dir / "instances" / iid
        command = " ".join(
            [task["environment"]["test_cmd"], *test_directives(task["test_patch"], task["repo"])]
        )
        log = inst / "attempts" / "0" / "test_output.txt"
        if not log.read_text(errors="replace").startswith(f"$ {command}\n"):
            raise SystemExit(f"{log}: the grading ran another command than `{command}`")
        verdict = json.loads((inst / "verdict.json").read_text())
        tree = trees / iid
        tree.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "-C", task["repo_path"], "archive", task["base_commit"]], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
        for patch in (task["patch"], task["test_patch"]):
            subprocess.run(["git", "apply", "-"], cwd=tree, input=patch.encode(), check=True)
        found.append(Case(iid, command, float(verdict["timings"]["tests"])))
    return sorted(found, key=lambda c: -c.seconds)


def venv_env(cache: Path) -> dict[str, str]:
    """This process's environment with the suite's cached venv first on PATH (the builtin suite's
    instances share one environment)."""
    venvs = [p for p in (cache / "venvs").iterdir() if p.is_dir() and not p.name.startswith(".")]
    if len(venvs) != 1:
        raise SystemExit(f"{cache}/venvs: expected the suite's one cached environment, found {len(venvs)}")
    path = f"{venvs[0] / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "PATH": path, "VIRTUAL_ENV": str(venvs[0])}


def bare_pass(
    found: list[Case],
    trees: Path,
    work: Path,
    lanes: int,
    env: dict[str, str],
    cpu: list[float] | None = None,
) -> float:
    """Wall seconds for `lanes` threads to run every case's command in a fresh copy of its tree (each
    taking the next case, longest first); the copies are made before and removed after the clock.
    `cpu` gets the machine's busy CPU seconds over the same span (diskprobe.busy_cpu_s)."""
    for case in found:
        shutil.copytree(trees / case.instance_id, work / case.instance_id, symlinks=True)
    queue = list(found)
    lock = threading.Lock()
    failed: list[str] = []

    def lane() -> None:
        while True:
            with lock:
                if not queue:
                    return
                case = queue.pop(0)
            with open(work / f"{case.instance_id}.log", "wb") as out:
                code = subprocess.run(["bash", "-c", case.command], cwd=work / case.instance_id, env=env,
                                      stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT).returncode  # fmt: skip
            if code != 0:
                failed.append(f"{case.instance_id} exited {code}")

    threads = [threading.Thread(target=lane) for _ in range(lanes)]
    busy0, t0 = busy_cpu_s(), time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if cpu is not None:
        cpu.append(busy_cpu_s() - busy0)
    shutil.rmtree(work)
    os.sync()  # untimed, as after each devloop run
    if failed:
        raise SystemExit(f"the bare tests failed: {', '.join(failed)}")
    return wall
