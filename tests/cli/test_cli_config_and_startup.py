"""The CLI's first impressions: a bad ./devloop.toml names file and line, `--version` / `--help` load
no heavy module (so they start at once), and the scripted server's --help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devloop.demo import make_demo_repo


def devloop(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devloop", *args], capture_output=True, text=True, cwd=cwd, check=False,
        timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('model = "openai/x"\n\nmax_iterations = \n', "devloop.toml:3: not valid TOML: Invalid value"),
        ('model = "openai/x"\n[agent\n', "devloop.toml:2: not valid TOML"),
        (
            'model = "openai/x"\ntool_fromat = "xml"\n',
            "setting 'tool_fromat': Extra inputs are not permitted",
        ),
        ('# comment\nmodel = "openai/x"\n\n  max_iterations = 0\n', "setting 'max_iterations': Input should"),
        ('model = "openai/x"\n[feedback]\nx = 1\n', "setting 'feedback': Extra inputs are not permitted"),
    ],
)
def test_a_bad_project_config_names_file_and_line(tmp_path: Path, toml: str, expected: str) -> None:
    repo = make_demo_repo(tmp_path / "statkit")
    (tmp_path / "devloop.toml").write_text(toml)
    proc = devloop("run", "--repo", str(repo), "--issue", "x", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert expected in proc.stderr
    if "setting" in expected:  # the key's own line, as file:line
        line = next(n for n, text in enumerate(toml.splitlines(), 1) if expected.split("'")[1] in text)
        assert f"(config file {tmp_path / 'devloop.toml'}:{line})" in proc.stderr


HEAVY = ("openai", "httpx", "pydantic", "pydantic_settings", "jinja2", "numpy", "matplotlib",
         "markdown_it", "rich", "yaml", "devloop.session", "devloop.agent", "devloop.config")  # fmt: skip


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_version_and_help_import_no_heavy_module(flag: str) -> None:
    # The entry point as the `devloop` script runs it; then what was imported. Each name above costs
    # tens of milliseconds or more at import (measured with -X importtime; bench/startup.py).
    code = (
        "import sys, json, contextlib, io\n"
        f"sys.argv = ['devloop', {flag!r}]\n"
        "from devloop.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try:\n        main()\n    except SystemExit as e:\n        code = e.code\n"
        "print(json.dumps({'code': code, 'out': out.getvalue(), 'modules': sorted(sys.modules)}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seen = json.loads(proc.stdout)
    assert seen["code"] in (0, None)
    loaded = [m for m in seen["modules"] if m in HEAVY or m.split(".")[0] in HEAVY]
    assert loaded == [], loaded
    if flag == "--help":
        for name in ("run", "replay", "recover", "demo", "eval", "sweep", "report", "compare", "policy"):
            assert f"\n  {name} " in seen["out"]
        listed = seen["out"].split("Commands:")[1].splitlines()
        assert not [line for line in listed if line.endswith("...")]  # no one-liner cut short
    else:
        assert seen["out"].startswith("devloop ")


def test_every_listed_command_loads_and_has_help() -> None:
    from devloop.cli import COMMANDS, _load

    for name in COMMANDS:
        command = _load(name)
        assert command.name == name and (command.help or "").strip()


def test_the_devloop_process_freezes_what_it_loaded_and_a_host_process_does_not() -> None:
    # The `devloop` process moves a command's modules out of the collector's sight once they are loaded,
    # so later collections and the exit do not walk them (bench/startup.py: the one-step run's CPU).
    code = (
        "import gc, sys, contextlib, io\n"
        "sys.argv = ['devloop', 'eval', '--help']\n"
        "from devloop.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main()\n    except SystemExit:\n        pass\n"
        "print(gc.get_freeze_count())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(proc.stdout.strip()) > 10_000
    # A program (or this test run) loading a command in-process keeps its collector as it was.
    import gc

    from devloop.cli import _load, _loaded

    _loaded.pop("eval", None)
    before = gc.get_freeze_count()
    _load("eval")
    assert gc.get_freeze_count() == before


def test_unknown_command_is_a_usage_error() -> None:
    proc = devloop("frobnicate")
    assert proc.returncode == 2 and "No such command 'frobnicate'" in proc.stderr


def test_scripted_server_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "devloop.models.scripted_server", "--help"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "SCRIPT.jsonl" in proc.stdout and "--model-name" in proc.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "devloop.models.scripted_server"], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and "required: SCRIPT.jsonl" in bad.stderr
