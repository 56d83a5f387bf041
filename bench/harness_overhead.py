"""Harness overhead and environment build speed, in one run.

1. Per-instance harness time minus the test command's own time, with a warm environment cache, on a tiny
   generated task (or the tasks of --tasks with --mirrors). Target: < 1 s.
2. Building the same pinned environment with uv and with pip, each into a fresh cache dir. Target: uv >= 5x.

    python bench/harness_overhead.py [--runs 5] [--pins "attrs==23.1.0 pluggy==1.3.0"] [--tasks F --mirrors D]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from devloop.eval import EnvironmentManager, grade
from devloop.tasks import EnvironmentSpec, Task, load_tasks

HERE = f"{sys.version_info.major}.{sys.version_info.minor}"
DEFAULT_PINS = f"pytest=={pytest.__version__} attrs==23.1.0 pluggy==1.5.0 iniconfig==2.0.0 packaging==23.1"


def _git(cwd: Path, *args: str, stdin: str | None = None) -> str:
    return subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", *args], cwd=cwd, input=stdin,
                          capture_output=True, text=True, check=True).stdout  # fmt: skip


def tiny_task(root: Path, spec: EnvironmentSpec) -> Task:
    """A repository with a bug, its fix and a test patch: the smallest realistic instance."""
    repo = root / "repo"
    (repo / "tests").mkdir(parents=True)
    (repo / "conftest.py").write_text("")
    (repo / "mod.py").write_text("def double(x):\n    return x + x + 1\n")
    (repo / "tests" / "test_mod.py").write_text(
        "from mod import double\n\n\ndef test_zero():\n    assert double(0) >= 0\n"
    )
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    base = _git(repo, "rev-parse", "HEAD").strip()

    def diff(path: str, text: str) -> str:
        (repo / path).write_text(text)
        out = _git(repo, "diff")
        _git(repo, "checkout", "-q", "--", path)
        return out

    patch = diff("mod.py", "def double(x):\n    return x + x\n")
    test_patch = diff("tests/test_mod.py", (repo / "tests" / "test_mod.py").read_text()
                      + "\n\ndef test_two():\n    assert double(2) == 4\n")  # fmt: skip
    return Task(instance_id="bench__tiny-1", repo="bench/tiny", base_commit=base, problem_statement="off by one",
                patch=patch, test_patch=test_patch, FAIL_TO_PASS=["tests/test_mod.py::test_two"],
                PASS_TO_PASS=["tests/test_mod.py::test_zero"], repo_path=repo, environment=spec)  # fmt: skip


def measure_overhead(tasks: list[Task], mirrors: Path | None, cache: Path, runs: int) -> dict[str, object]:
    manager = EnvironmentManager(cache)
    rows = []
    for task in tasks:
        assert task.environment is not None, f"{task.instance_id} has no environment"
        manager.venv_for(task.environment)  # warm the cache: the build is not overhead
        for i in range(runs):
            with tempfile.TemporaryDirectory() as work:
                v = grade(task, task.patch, env_manager=manager, mirrors=mirrors, workdir=Path(work) / "w",
                          log_dir=Path(work) / "logs")  # fmt: skip
            total, tests, install = (
                v.timings["total"],
                v.timings.get("tests", 0.0),
                v.timings.get("install", 0.0),
            )
            rows.append({"instance_id": task.instance_id, "run": i, "category": v.category.value, "total_s": total,
                         "tests_s": tests, "install_s": install, "overhead_s": round(total - tests, 3),
                         "overhead_without_install_s": round(total - tests - install, 3)})  # fmt: skip
    return {
        "runs": rows,
        "median_overhead_s": statistics.median(r["overhead_s"] for r in rows),
        "median_overhead_without_install_s": statistics.median(r["overhead_without_install_s"] for r in rows),
    }


def measure_builds(pins: list[str]) -> dict[str, object]:
    spec = EnvironmentSpec(python=HERE, pip=pins)
    out: dict[str, object] = {"pins": pins}
    for builder in ("uv", "pip"):
        with tempfile.TemporaryDirectory() as cache:
            manager = EnvironmentManager(Path(cache), use_uv=builder == "uv")
            started = time.monotonic()
            manager.venv_for(spec)
            out[f"{builder}_s"] = round(time.monotonic() - started, 3)
    out["speedup"] = round(out["pip_s"] / out["uv_s"], 1)  # type: ignore[operator]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pins", default=DEFAULT_PINS, help="space-separated pins for the uv vs pip build")
    parser.add_argument("--tasks", type=Path, help="measure these tasks (they need `environment`) instead")
    parser.add_argument("--mirrors", type=Path)
    parser.add_argument("--cache-dir", type=Path, help="environment cache for the overhead part")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache_dir or Path(tmp) / "cache"
        spec = EnvironmentSpec(python=HERE, pip=[f"pytest=={pytest.__version__}"], test_cmd="pytest -rA")
        tasks = load_tasks(args.tasks, strict=True).tasks if args.tasks else [tiny_task(Path(tmp), spec)]
        result = {"overhead": measure_overhead(tasks, args.mirrors, cache, args.runs),
                  "env_build": measure_builds(args.pins.split())}  # fmt: skip
    o, b = result["overhead"], result["env_build"]
    print(json.dumps(result, indent=1))
    print(
        f"\nharness overhead (median, warm): {o['median_overhead_s']:.3f} s "
        f"({o['median_overhead_without_install_s']:.3f} s without the install command); target < 1 s"
    )
    print(f"env build: uv {b['uv_s']:.2f} s, pip {b['pip_s']:.2f} s -> {b['speedup']}x; target >= 5x")  # fmt: skip


if __name__ == "__main__":
    main()
