"""Harness overhead and environment build speed, in one run.

1. Per-instance harness time minus the test command's own time, with a warm environment cache, on a tiny
   generated task (or the tasks of --tasks with --mirrors); the removal of the instance's work directory
   counts as overhead too. Target: < 1 s.
2. Building the same pinned environment with uv and with pip, alternating, each into a fresh environment
   cache: cold (an empty package cache, so every wheel is downloaded) and warm (the builder's package cache
   filled by an earlier build). Target: uv >= 5x pip.

The default pins are pytest and its requirements at the versions installed beside this script, so they
always resolve together.

Real-instance mode (`--instance ID --tasks lite.json --mirrors D`): one official SWE-bench record, its
environment from the official table as `devloop eval` gives it (requirements locked); part 1 grades its
gold patch, part 2 builds its locked pins with uv and with pip, and part 3 runs its install command
(`pip install -e .`) as the spec has it and with `uv pip install` instead, alternating, each in a fresh
clone of the cached venv, inside the grading sandbox: the per-instance install is what dominates.
`--only build-cache` (real-instance mode) grades the gold patch with an empty build cache (the install
runs and fills it) and again with the entry it left (restored instead), alternating over --rounds: the
install's seconds against the restore's, the instance's wall time, the entry's size, and the verdicts.

    python bench/harness_overhead.py [--runs 5] [--rounds 3] [--pins "pytest==8.3.3 pluggy==1.5.0 ..."]
                                     [--tasks F --mirrors D [--instance ID [--only build-cache]]]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from packaging.requirements import Requirement

from devloop.eval import EnvironmentManager, grade
from devloop.tasks import EnvironmentSpec, Task, load_tasks

HERE = f"{sys.version_info.major}.{sys.version_info.minor}"


def installed_pins(dist: str = "pytest") -> list[str]:
    """`dist` and its unconditional requirements pinned at the versions installed here."""
    pins = [f"{dist}=={importlib.metadata.version(dist)}"]
    for text in importlib.metadata.requires(dist) or []:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            pins.append(f"{req.name}=={importlib.metadata.version(req.name)}")
    return pins


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
            work = Path(tempfile.mkdtemp())
            v = grade(task, task.patch, env_manager=manager, mirrors=mirrors, workdir=work / "w",
                      log_dir=work / "logs")  # fmt: skip
            started = time.monotonic()
            shutil.rmtree(work)  # the instance's clone and venv copy: a cost of every instance
            cleanup = time.monotonic() - started
            total, tests, install = (
                v.timings["total"] + cleanup,
                v.timings.get("tests", 0.0),
                v.timings.get("install", 0.0),
            )
            rows.append({"instance_id": task.instance_id, "run": i, "category": v.category.value, "total_s": total,
                         "tests_s": tests, "install_s": install, "cleanup_s": round(cleanup, 3), "overhead_s": round(total - tests, 3),
                         "overhead_without_install_s": round(total - tests - install, 3)})  # fmt: skip
    return {
        "runs": rows,
        "median_overhead_s": statistics.median(r["overhead_s"] for r in rows),
        "median_overhead_without_install_s": statistics.median(r["overhead_without_install_s"] for r in rows),
        "total_over_tests": [  # each instance's wall time as a ratio to its tests' own: median, min, max
            round(f(r["total_s"] / r["tests_s"] for r in rows if r["tests_s"]), 2)
            for f in (statistics.median, min, max)
        ],
    }


def official_task(tasks: Path, mirrors: Path, instance: str, cache: Path) -> Task:
    """The record `instance` of `tasks` with the environment `devloop eval` gives it (official table,
    requirements read from the mirror and locked)."""
    from devloop.swebench.locks import Locker
    from devloop.swebench.records import fill_environments

    found = [t for t in load_tasks(tasks, strict=False).tasks if t.instance_id == instance]
    if not found:
        raise SystemExit(f"{tasks}: no instance {instance}")
    fill_environments(found, locker=Locker(cache), mirrors=mirrors)
    if found[0].environment is None:
        raise SystemExit(f"{instance}: no environment: {'; '.join(found[0].environment_missing)}")
    return found[0]


def uv_install(install: str) -> str | None:
    """The install script with `python -m pip install` run by uv (offline: the sandbox has no network,
    and every requirement is already in the venv), or None when it has no pip install."""
    uv = shutil.which("uv")
    if uv is None or "python -m pip install" not in install:
        return None
    return install.replace("python -m pip install", f"{uv} pip install --offline --python python", 1)


def measure_install(task: Task, mirrors: Path | None, cache: Path, rounds: int) -> dict[str, object]:
    """The task's install command with pip (as the spec has it) and with uv, alternating, each in a
    fresh instance (grading its gold patch, so both installs are known to work)."""
    assert task.environment is not None and task.environment.install
    variants = {"pip": task.environment.install, "uv": uv_install(task.environment.install)}
    if variants["uv"] is None:
        return {"skipped": "no uv, or no `python -m pip install` in the install command"}
    manager = EnvironmentManager(cache)
    times: dict[str, list[float]] = {"pip": [], "uv": []}
    categories: dict[str, list[str]] = {"pip": [], "uv": []}
    for r in range(rounds):
        for name in ("pip", "uv") if r % 2 == 0 else ("uv", "pip"):
            variant = task.model_copy(
                update={"environment": task.environment.model_copy(update={"install": variants[name]})}
            )
            with tempfile.TemporaryDirectory() as work:
                v = grade(variant, task.patch, env_manager=manager, mirrors=mirrors, workdir=Path(work) / "w",
                          log_dir=Path(work) / "logs")  # fmt: skip
            times[name].append(v.timings.get("install", 0.0))
            categories[name].append(v.category.value)
    ratios = [p / u for p, u in zip(times["pip"], times["uv"], strict=True) if u]
    return {
        "rounds": rounds,
        "categories": categories,
        "pip_s": round(statistics.median(times["pip"]), 3),
        "uv_s": round(statistics.median(times["uv"]), 3),
        "speedup": round(statistics.median(ratios), 1) if ratios else None,
        "spread": [round(min(ratios), 1), round(max(ratios), 1)] if ratios else None,
    }


def measure_build_cache(task: Task, mirrors: Path | None, cache: Path, rounds: int) -> dict[str, object]:
    """Grade the gold patch with an empty build cache (fill) and with the entry that left (reuse), the
    order alternating per round, each in a fresh instance."""
    manager = EnvironmentManager(cache)
    assert task.environment is not None
    manager.venv_for(task.environment)  # the venv build is not what is measured
    runs: dict[str, list[dict[str, object]]] = {"fill": [], "reuse": []}
    for r in range(rounds):
        for mode in ("fill", "reuse") if r % 2 == 0 else ("reuse", "fill"):
            if mode == "fill":
                shutil.rmtree(cache / "builds", ignore_errors=True)
            elif not (cache / "builds").is_dir():  # round 1 starts with reuse: fill once, not measured
                with tempfile.TemporaryDirectory() as work:
                    grade(task, task.patch, env_manager=manager, mirrors=mirrors, workdir=Path(work) / "w",
                          log_dir=Path(work) / "logs")  # fmt: skip
            with tempfile.TemporaryDirectory() as work:
                v = grade(task, task.patch, env_manager=manager, mirrors=mirrors, workdir=Path(work) / "w",
                          log_dir=Path(work) / "logs")  # fmt: skip
            print(
                f"round {r} {mode}: {v.category.value}, build cache {v.extra.get('build_cache')}, "
                f"install {v.timings.get('install')} s, restore {v.timings.get('build_cache_restore')} s, "
                f"total {v.timings['total']} s",
                file=sys.stderr,
                flush=True,
            )
            runs[mode].append({"category": v.category.value, "build_cache": v.extra.get("build_cache"),
                               "install_s": v.timings.get("install", v.timings.get("build_cache_restore")),
                               "total_s": v.timings["total"], "bytes": v.extra.get("build_cache_bytes")})  # fmt: skip
    med = {m: {k: statistics.median(float(x[k]) for x in rows if x[k] is not None)  # type: ignore[arg-type]
               for k in ("install_s", "total_s")} for m, rows in runs.items()}  # fmt: skip
    sizes = [x["bytes"] for x in runs["fill"] if x["bytes"] is not None]
    return {
        "rounds": rounds,
        "runs": runs,
        "install_fill_s": round(med["fill"]["install_s"], 3),
        "install_reuse_s": round(med["reuse"]["install_s"], 3),
        "total_fill_s": round(med["fill"]["total_s"], 3),
        "total_reuse_s": round(med["reuse"]["total_s"], 3),
        "total_ratio": round(med["fill"]["total_s"] / med["reuse"]["total_s"], 1),
        "entry_bytes": sizes[0] if sizes else None,
        "verdicts_equal": len({x["category"] for rows in runs.values() for x in rows}) == 1,
    }


def _build_once(spec: EnvironmentSpec, builder: str, pkg_cache: Path) -> float:
    os.environ["UV_CACHE_DIR" if builder == "uv" else "PIP_CACHE_DIR"] = str(pkg_cache)
    with tempfile.TemporaryDirectory() as cache:
        manager = EnvironmentManager(Path(cache), use_uv=builder == "uv")
        started = time.monotonic()
        manager.venv_for(spec)
        return time.monotonic() - started


def measure_builds(pins: list[str], rounds: int, python: str = HERE) -> dict[str, object]:
    spec = EnvironmentSpec(python=python, pip=pins)
    saved = {k: os.environ.get(k) for k in ("UV_CACHE_DIR", "PIP_CACHE_DIR")}
    times: dict[str, list[float]] = {f"{b}_{c}": [] for c in ("cold", "warm") for b in ("uv", "pip")}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            warm = {b: Path(tmp) / f"{b}-warm" for b in ("uv", "pip")}
            for builder, cache in warm.items():  # fill each builder's package cache once
                _build_once(spec, builder, cache)
            for r in range(rounds):
                for builder in ("uv", "pip") if r % 2 == 0 else ("pip", "uv"):
                    cold = Path(tmp) / f"{builder}-cold-{r}"
                    times[f"{builder}_cold"].append(_build_once(spec, builder, cold))
                    shutil.rmtree(cold, ignore_errors=True)
                    times[f"{builder}_warm"].append(_build_once(spec, builder, warm[builder]))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    out: dict[str, object] = {"pins": pins, "rounds": rounds}
    for cache in ("cold", "warm"):
        ratios = [p / u for p, u in zip(times[f"pip_{cache}"], times[f"uv_{cache}"], strict=True)]
        out[cache] = {
            "uv_s": round(statistics.median(times[f"uv_{cache}"]), 3),
            "pip_s": round(statistics.median(times[f"pip_{cache}"]), 3),
            "speedup": round(statistics.median(ratios), 1),
            "spread": [round(min(ratios), 1), round(max(ratios), 1)],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="alternating uv/pip build rounds")
    parser.add_argument("--pins", help="space-separated pins for the uv vs pip build (default: pytest's)")
    parser.add_argument("--tasks", type=Path, help="measure these tasks (they need `environment`) instead")
    parser.add_argument("--mirrors", type=Path)
    parser.add_argument("--cache-dir", type=Path, help="environment cache for the overhead part")
    parser.add_argument("--instance", help="real-instance mode: this official record of --tasks")
    parser.add_argument("--only", choices=["build-cache"], help="real-instance mode: only this measurement")
    args = parser.parse_args()
    if args.instance and not (args.tasks and args.mirrors):
        parser.error("--instance needs --tasks and --mirrors")
    if args.only and not args.instance:
        parser.error("--only needs --instance")
    if args.only == "build-cache":
        with tempfile.TemporaryDirectory() as tmp:
            cache = args.cache_dir or Path(tmp) / "cache"
            c = measure_build_cache(official_task(args.tasks, args.mirrors, args.instance, cache), args.mirrors,
                                    cache, args.rounds)  # fmt: skip
        print(json.dumps(c, indent=1))
        size = f"{c['entry_bytes'] / 1e6:.1f} MB" if c["entry_bytes"] is not None else "no entry"
        print(f"\nbuild cache ({args.instance}, {c['rounds']} rounds): install {c['install_fill_s']:.2f} s (fill) vs "
              f"restore {c['install_reuse_s']:.3f} s (reuse); instance {c['total_fill_s']:.2f} s vs "
              f"{c['total_reuse_s']:.2f} s -> {c['total_ratio']}x; entry {size}; verdicts equal: {c['verdicts_equal']}")  # fmt: skip
        return
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache_dir or Path(tmp) / "cache"
        pins = args.pins.split() if args.pins else installed_pins()
        python = HERE
        if args.instance:
            task = official_task(args.tasks, args.mirrors, args.instance, cache)
            assert task.environment is not None
            tasks, pins, python = [task], list(task.environment.pip), task.environment.python
        else:
            spec = EnvironmentSpec(python=HERE, pip=installed_pins(), test_cmd="pytest -rA")
            tasks = load_tasks(args.tasks, strict=True).tasks if args.tasks else [tiny_task(Path(tmp), spec)]
        result = {"overhead": measure_overhead(tasks, args.mirrors, cache, args.runs),
                  "env_build": measure_builds(pins, args.rounds, python)}  # fmt: skip
        if args.instance:
            result["install"] = measure_install(tasks[0], args.mirrors, cache, args.rounds)
    o, b = result["overhead"], result["env_build"]
    print(json.dumps(result, indent=1))
    print(
        f"\nharness overhead (median, warm): {o['median_overhead_s']:.3f} s "
        f"({o['median_overhead_without_install_s']:.3f} s without the install command); target < 1 s; "
        f"wall time / tests' own time {o['total_over_tests'][0]}x (spread {o['total_over_tests'][1]}-"
        f"{o['total_over_tests'][2]})"
    )
    for cache in ("cold", "warm"):
        c = b[cache]
        print(f"env build, {cache} package cache: uv {c['uv_s']:.2f} s, pip {c['pip_s']:.2f} s -> "
              f"{c['speedup']}x (spread {c['spread'][0]}-{c['spread'][1]}); target >= 5x")  # fmt: skip
    if isinstance(i := result.get("install"), dict):
        if "skipped" in i:
            print(f"install: skipped ({i['skipped']})")
        else:
            print(f"install command ({args.instance}): pip {i['pip_s']:.2f} s, uv {i['uv_s']:.2f} s -> "
                  f"{i['speedup']}x (spread {i['spread']}); verdicts {i['categories']}")  # fmt: skip


if __name__ == "__main__":
    main()
