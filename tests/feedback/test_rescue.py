"""Every shipped rescue rule fires on real output from a real (tmp) repository and does what it says."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from devloop.feedback.rescue import RescueContext, RescueEngine, RescueResult, load_rules
from devloop.runtime import LocalRuntime
from devloop.tools.bash import format_result
from devloop.types import CommandResult

SHIPPED = [r.name for r in load_rules()]


class Shell:
    """A CommandRunner running each command in a fresh bash in `root` (records what ran)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.commands: list[str] = []

    def run(self, command: str, timeout: float) -> CommandResult:
        self.commands.append(command)
        p = subprocess.run(
            ["bash", "-c", command], cwd=self.root, capture_output=True, text=True, timeout=timeout
        )
        return CommandResult(p.stdout + p.stderr, p.returncode)


class GitRestorer:
    """restore_file from the repository's HEAD commit (the 'last checkpoint' of these tests)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def restore_file(self, path: str) -> bool:
        return subprocess.run(["git", "checkout", "HEAD", "--", path], cwd=self.root).returncode == 0


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    return subprocess.run(
        ["git", *args], cwd=root, env=env, capture_output=True, text=True, check=False
    ).stdout


def commit_all(root: Path) -> None:
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")


def out(root: Path, *argv: str, **kw: object) -> str:
    p = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=60, **kw)  # type: ignore[call-overload]
    return p.stdout + p.stderr


def py(root: Path, code: str) -> str:
    return out(root, sys.executable, "-c", code)


def pytest_out(root: Path, *args: str) -> str:
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # this machine's plugins cost ~1 s a run
    return out(root, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, env=env)


def fire(root: Path, output: str, edited: list[str] = (), **ctx: object) -> RescueResult:  # type: ignore[assignment]
    results = RescueEngine(load_rules(), RescueContext(root, **ctx)).apply(output, edited_files=edited)  # type: ignore[arg-type]
    return results


# --- one case per shipped rule: (tmp root) -> (results, the rule expected, extra check) ---------------------

Case = Callable[[Path], None]
CASES: dict[str, Case] = {}


def case(name: str) -> Callable[[Case], Case]:
    def deco(fn: Case) -> Case:
        CASES[name] = fn
        return fn

    return deco


def only(results: list[RescueResult], name: str) -> RescueResult:
    hits = [r for r in results if r.rule == name]
    assert hits, f"rule {name} did not fire; fired: {[r.rule for r in results]}"
    return hits[0]


def make_wheel(dest: Path, dist: str, module: str) -> Path:
    """A minimal pure-Python wheel, so installing needs no network."""
    wheel = dest / f"{dist}-1.0-py3-none-any.whl"
    info = f"{dist}-1.0.dist-info"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(f"{module}/__init__.py", "VALUE = 42\n")
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        z.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        z.writestr(f"{info}/RECORD", "")
    return wheel


@case("module_not_found")
def _module_not_found(root: Path) -> None:
    write(
        root,
        {"requirements.txt": "requests>=2\ntinydep>=1.0  # the data layer\n", "app.py": "import tinydep\n"},
    )
    venv = root.parent / "venv"
    subprocess.run(["uv", "venv", "-q", str(venv), "--python", sys.executable], check=True)
    wheels = root.parent / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "tinydep", "tinydep")
    vpy = venv / "bin" / "python"
    output = out(root, str(vpy), "app.py")
    install = f"uv pip install -q --offline --no-index --find-links {wheels} --python {vpy} {{requirement}}"
    r = only(fire(root, output, runtime=Shell(root), install_command=install), "module_not_found")
    assert r.applied and "installed `tinydep>=1.0`" in r.message and "requirements.txt" in r.message
    assert out(root, str(vpy), "-c", "import tinydep; print(tinydep.VALUE)").strip() == "42"
    # an undeclared module is never installed
    shell = Shell(root)
    r = only(fire(root, py(root, "import leftpadx"), runtime=shell), "module_not_found")
    assert not r.applied and shell.commands == [] and "declares no requirement" in r.message


@case("syntax_error_in_edited_file")
def _syntax(root: Path) -> None:
    write(root, {"pkg/__init__.py": "", "pkg/mod.py": "def f(x):\n    return x + 1\n"})
    commit_all(root)
    (root / "pkg/mod.py").write_text("def f(x:\n    return x + 1\n")
    output = pytest_out(root, "--co", "--pyargs", "pkg.mod") + py(root, "import pkg.mod")
    untouched = fire(root, output, [], checkpoints=GitRestorer(root))
    assert "syntax_error_in_edited_file" not in [
        r.rule for r in untouched
    ]  # not the agent's file: left alone
    r = only(
        fire(root, output, [str(root / "pkg/mod.py")], checkpoints=GitRestorer(root)),
        "syntax_error_in_edited_file",
    )
    assert r.applied and "restored" in r.message and "pkg/mod.py" in r.message
    assert py(root, "import pkg.mod; print(pkg.mod.f(1))").strip() == "2"


@case("indentation_error")
def _indent(root: Path) -> None:
    write(root, {"mod.py": "def f(x):\n    y = x\n\treturn y\n"})
    r = only(fire(root, py(root, "import mod")), "indentation_error")
    assert "TabError" in r.message and "→return y" in r.message and ">    3 |" in r.message


@case("fixture_not_found")
def _fixture(root: Path) -> None:
    write(root, {
        "tests/conftest.py": "import pytest\n\n@pytest.fixture\ndef db_session():\n    return 1\n",
        "tests/test_db.py": "def test_q(db_sesion):\n    assert db_sesion\n",
    })  # fmt: skip
    r = only(fire(root, pytest_out(root, "tests")), "fixture_not_found")
    assert "tests/conftest.py" in r.message and "`db_session` (tests/conftest.py:3)" in r.message


@case("circular_import")
def _circular(root: Path) -> None:
    write(root, {"shop/__init__.py": "", "shop/a.py": "from shop.b import g\n\ndef f():\n    return 1\n",
                 "shop/b.py": "from shop.a import f\n\ndef g():\n    return f()\n"})  # fmt: skip
    r = only(fire(root, py(root, "import shop.a")), "circular_import")
    assert "shop.a -> shop.b -> shop.a" in r.message


@case("cannot_import_name")
def _cannot_import(root: Path) -> None:
    write(root, {"pkg/__init__.py": "", "pkg/util.py": "def parse_value(s):\n    return s\n",
                 "pkg/other.py": "def parse_val(s):\n    return s\n"})  # fmt: skip
    r = only(fire(root, py(root, "from pkg.util import parse_val")), "cannot_import_name")
    assert "pkg/other.py:1" in r.message and "parse_value" in r.message


@case("module_attribute_error")
def _attribute(root: Path) -> None:
    write(root, {"pkg/__init__.py": "", "pkg/util.py": "def parse_value(s):\n    return s\n"})
    r = only(fire(root, py(root, "import pkg.util; pkg.util.parse_val('1')")), "module_attribute_error")
    assert "Close names in it: parse_value" in r.message


@case("name_error")
def _name_error(root: Path) -> None:
    write(root, {"helpers.py": "def helper():\n    return 1\n", "main.py": "print(helper())\n"})
    r = only(fire(root, out(root, sys.executable, "main.py")), "name_error")
    assert "helpers.py:1" in r.message


@case("missing_argument")
def _missing_arg(root: Path) -> None:
    write(root, {"geo.py": "def area(width,\n         height):\n    return width * height\n"})
    r = only(fire(root, py(root, "import geo; geo.area(3)")), "missing_argument")
    assert "geo.py:1: def area(width, height):" in r.message and "'height'" in r.message


@case("recursion_depth")
def _recursion(root: Path) -> None:
    write(root, {"rec.py": "def walk(n):\n    return walk(n + 1)\n"})
    r = only(fire(root, py(root, "import rec; rec.walk(0)")), "recursion_depth")
    assert "walk (rec.py:2)" in r.message


@case("command_not_found")
def _command(root: Path) -> None:
    r = only(
        fire(root, out(root, "/bin/bash", "-c", "jq .", env={"PATH": "/nonexistent"})), "command_not_found"
    )
    assert "`jq`" in r.message and "Debian package jq" in r.message
    r = only(
        fire(root, out(root, "/bin/sh", "-c", "xvfb-run x", env={"PATH": "/nonexistent"})),
        "command_not_found",
    )
    assert "xvfb" in r.message


@case("pytest_path_not_found")
def _pytest_path(root: Path) -> None:
    write(root, {"tests/test_math.py": "def test_x():\n    assert 1\n"})
    r = only(fire(root, pytest_out(root, "tests/test_mathh.py")), "pytest_path_not_found")
    assert "tests/test_math.py" in r.message


@case("pytest_usage_error")
def _pytest_usage(root: Path) -> None:
    write(root, {"test_a.py": "def test_x():\n    assert 1\n"})
    r = only(fire(root, pytest_out(root, "-p", "no:rerunfailures", "--reruns", "2")), "pytest_usage_error")
    assert "pytest-rerunfailures" in r.message and "--reruns" in r.message


@case("test_timeout")
def _timeout(root: Path) -> None:
    rt = LocalRuntime(root)
    try:
        result = rt.run("sleep 5", 0.3)
    finally:
        rt.close()
    r = only(fire(root, format_result(result, cap=1000, timeout=0.3)), "test_timeout")
    assert "(0.3 s)" in r.message


@case("merge_conflict_markers")
def _conflict(root: Path) -> None:
    write(root, {"cfg.py": "LIMIT = 1\n"})
    commit_all(root)
    git(root, "checkout", "-qb", "other")
    write(root, {"cfg.py": "LIMIT = 2\n"})
    git(root, "commit", "-qam", "two")
    git(root, "checkout", "-q", "-")
    write(root, {"cfg.py": "LIMIT = 3\n"})
    git(root, "commit", "-qam", "three")
    git(root, "merge", "other")
    assert "<<<<<<<" in (root / "cfg.py").read_text()
    assert not [r for r in fire(root, "", []) if r.rule == "merge_conflict_markers"]
    r = only(fire(root, "", ["cfg.py"]), "merge_conflict_markers")
    assert "cfg.py" in r.message and "(line 1)" in r.message


@case("permission_denied")
def _permission(root: Path) -> None:
    # A directory of its own under /tmp: as root the command runs as nobody (root ignores modes), which must
    # be able to reach it.
    base = Path(tempfile.mkdtemp(prefix="devloop-perm-"))
    try:
        base.chmod(0o755)
        locked = base / "locked"
        locked.mkdir(mode=0o555)
        target = locked / "x.txt"
        kw: dict[str, object] = {"user": 65534, "group": 65534} if os.geteuid() == 0 else {}
        output = out(base, "/bin/sh", "-c", f"echo x > {target}", **kw)
        r = only(fire(root, output), "permission_denied")
        assert f"`{target}`" in r.message and str(root) in r.message
        py_output = f"PermissionError: [Errno 13] Permission denied: '{target}'"  # Python's wording
        assert f"`{target}`" in only(fire(root, py_output), "permission_denied").message
    finally:
        locked.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


@case("file_not_found")
def _file_not_found(root: Path) -> None:
    write(root, {"data/input.csv": "a,b\n"})
    r = only(fire(root, py(root, "open('data/inputs.csv')")), "file_not_found")
    assert "data/input.csv" in r.message


@case("stale_bytecode")
def _stale(root: Path) -> None:
    write(
        root,
        {
            "tests/a/test_util.py": "def test_a():\n    pass\n",
            "tests/b/test_util.py": "def test_b():\n    pass\n",
        },
    )
    (root / "tests/a/__pycache__").mkdir()
    shell = Shell(root)
    r = only(fire(root, pytest_out(root, "tests"), runtime=shell), "stale_bytecode")
    assert r.applied and "test_util" in r.message and not (root / "tests/a/__pycache__").exists()


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_rule_fires(name: str, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    assert name in CASES, f"shipped rule {name} has no triggering test"
    CASES[name](root)


def test_at_least_twelve_rules_ship() -> None:
    assert len(SHIPPED) >= 12 and len(set(SHIPPED)) == len(SHIPPED)
