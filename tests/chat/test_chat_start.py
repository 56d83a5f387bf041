"""chat's own start: its arguments read without typer exactly as typer reads them (or left to typer), the
model named without validating the settings exactly as the settings name it, and the settings validated
after the first prompt is drawn, a bad one still ending the chat with its one line and exit code 2."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from devloop.chat.startup import model_hint, user_config_file
from devloop.cli import app
from devloop.cli.chat_start import FLAGS, ChatArgs, Output, parse
from devloop.config import load_settings
from devloop.config import user_config_file as settings_user_config_file

READ = [
    [],
    ["--repo", "r", "--model", "openai/m", "--base-url", "http://h:1/v1"],
    ["-p", "make x 2", "--output", "json", "--max-turns", "7", "--max-tokens-total", "900"],
    ["--continue", "--auto-edit", "--temperature", "0.5", "--top-p", "1", "--seed", "-3"],
    ["--resume=list", "--model=a/b", "--model", "c/d", "--time-limit", "1e3", "--command-timeout", ".5"],
    ["--env", "A=1", "--env", "B=2", "--pass-env", "HOME", "--policy", "p.toml", "--policy", "q.toml"],
    ["--allow-network", "--no-minimize", "--sandbox", "none", "--prompt-dir", "pd", "--rules", "r.toml"],
    ["--no-network", "--minimize", "--hook", "pytest", "--hook-scope", "all", "--queues", "fast:1"],
    ["--retrieve", "3", "--memory-limit", "1G", "--disk-limit", "none", "--stream-diff", "out.diff"],
    ["--timeout-test", "9", "--summary-tokens", "5", "--rollback-threshold", "2", "--max-retry", "1"],
    ["--metrics-port", "0", "--output-cap", "500", "--max-tokens", "10", "--max-retries", "0"],
    ["--api-key-env", "K", "--tool-format", "xml", "-p", "", "--output", "stream"],
]
LEFT_TO_TYPER = [
    ["--help"], ["-h"], ["--bogus"], ["--max-turns", "x"], ["--max-turns", "1_0"], ["--output", "JSON"],
    ["positional"], ["--"], ["-p"], ["-p", "-x"], ["--continue=1"], ["--repo", ""], ["--max-iterations", "3"],
    ["-px"], ["--temperature", "nan"],
]  # fmt: skip


def typer_reading(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> ChatArgs:
    seen: list[ChatArgs] = []

    def capture(args: ChatArgs) -> int:
        seen.append(args)
        return 0

    monkeypatch.setattr("devloop.cli.chat_cmd.run_chat", capture)
    res = CliRunner().invoke(app, ["chat", *argv])
    assert res.exit_code == 0 and len(seen) == 1, res.output
    return seen[0]


@pytest.mark.parametrize("argv", READ, ids=lambda a: " ".join(a)[:40] or "none")
def test_chats_own_reading_of_its_arguments_is_typers(
    argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = parse(argv)
    assert mine is not None
    assert mine == typer_reading(argv, monkeypatch)


def test_what_it_is_unsure_of_is_left_to_typer() -> None:
    for argv in LEFT_TO_TYPER:
        assert parse(argv) is None, argv
    assert parse(["--output", "json"]) == ChatArgs(output=Output.json)


def test_it_knows_every_flag_typer_gives_chat() -> None:
    from devloop.cli import _load

    typers = {opt for p in _load("chat").params for opt in (*p.opts, *p.secondary_opts)}
    assert set(FLAGS) == typers - {"--help", "-h"}


def test_the_help_and_an_unknown_flag_are_typers(tmp_path: Path) -> None:
    devloop = [sys.executable, "-m", "devloop", "chat"]
    shown = subprocess.run([*devloop, "--help"], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert (
        shown.returncode == 0
        and "Usage: devloop chat [OPTIONS]" in shown.stdout
        and "--auto-edit" in shown.stdout
    )
    bad = subprocess.run([*devloop, "--bogus"], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert bad.returncode == 2 and "No such option: --bogus" in bad.stderr


def test_the_model_is_named_as_the_settings_name_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for k in [k for k in os.environ if k.lower() == "devloop_model"]:
        monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)
    assert user_config_file() == settings_user_config_file()
    user, project = user_config_file(), tmp_path / "devloop.toml"
    user.parent.mkdir(parents=True)

    def same(flag: str | None, expected: str | None) -> None:
        assert model_hint(flag) == expected
        if expected is not None:
            assert load_settings(model=flag).model == expected

    same(None, None)  # nowhere: the settings' validation says so
    same("openai/flag", "openai/flag")
    user.write_text('model = "openai/user"\nmax_iterations = 3\n')
    same(None, "openai/user")
    project.write_text('model = "openai/project"\n')
    same(None, "openai/project")
    monkeypatch.setenv("devloop_model", "openai/env")
    same(None, "openai/env")
    same("openai/flag", "openai/flag")
    monkeypatch.delenv("devloop_model")
    project.write_text("model = 3\n")
    same(None, None)  # not a string: the settings say what is wrong
    project.write_text("model = \n")
    same(None, None)  # not TOML
    project.write_text('Model = "openai/x"\n')
    same(None, None)  # a key in another case: not sure how it is read


def on_a_pty(
    argv: list[str], cwd: Path, until: bytes, then: bytes = b"", env: dict[str, str] | None = None
) -> tuple[int, str]:
    """(exit code, everything printed) of `argv` on a pseudo-terminal; `then` typed once `until` shows.
    Nothing answers prompt_toolkit's cursor-position request here: it is told not to ask (or it waits 1 s)."""
    main, sub = pty.openpty()
    proc = subprocess.Popen(
        argv,
        stdin=sub,
        stdout=sub,
        stderr=sub,
        cwd=cwd,
        env={**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1", **(env or {})},
    )
    os.close(sub)
    seen, typed, deadline = b"", False, time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # the other end closed
                    break
                if not chunk:
                    break
                seen += chunk
            if not typed and until in seen:
                os.write(main, then)
                typed = True
            if proc.poll() is not None and not ready:
                break
        return proc.wait(10), re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode(errors="replace"))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main)


SPY = """import json, sys, threading
start, into = threading.Thread.start, sys.argv.pop(1)
def spy(self):
    if self.name == "devloop-warm-up":  # started once the first prompt is drawn
        with open(into, "w") as f:
            json.dump(sorted(sys.modules), f)
    start(self)
threading.Thread.start = spy
sys.argv[0] = "devloop"
from devloop.cli import main
main()
"""


def test_the_first_prompt_is_drawn_before_typer_click_or_pydantic_load(repo: Path, tmp_path: Path) -> None:
    spy, loaded = tmp_path / "spy.py", tmp_path / "modules.json"
    spy.write_text(SPY)
    argv = [sys.executable, str(spy), str(loaded), "chat", "--repo", str(repo), "--model", "openai/m"]
    code, out = on_a_pty(argv, tmp_path, b"/exit to leave", b"/exit\r")
    assert code == 0, out
    modules = {m.split(".")[0] for m in json.loads(loaded.read_text())}
    assert "prompt_toolkit" in modules and "devloop" in modules
    assert not modules & {"typer", "click", "pydantic", "pydantic_settings", "rich", "openai"}, modules


def test_a_bad_setting_found_after_the_prompt_is_drawn_ends_the_chat_with_its_line(
    repo: Path, tmp_path: Path
) -> None:
    argv = [sys.executable, "-m", "devloop", "chat", "--repo", str(repo), "--model", "openai/m"]
    code, out = on_a_pty([*argv, "--temperature", "5"], tmp_path, b"no such text")
    assert code == 2, out
    assert "/exit to leave" in out and "Traceback" not in out
    assert "error: setting 'temperature': Input should be less than or equal to 2 (flag --temperature)" in out
    (tmp_path / "devloop.toml").write_text("max_iterations = 0\n")  # the same from the project's file
    code, out = on_a_pty(argv, tmp_path, b"no such text")
    assert code == 2 and "error: setting 'max_iterations'" in out and "devloop.toml" in out, out


def test_a_turn_waits_for_the_settings_it_runs_with(repo: Path, tmp_path: Path, replies: Any) -> None:
    from devloop.models.scripted_server import ScriptedServer

    with ScriptedServer([replies.finish("all done")]) as server:
        argv = [sys.executable, "-m", "devloop", "chat", "--repo", str(repo), "--model", "openai/m",
                "--base-url", server.url, "--sandbox", "none", "--max-tokens", "77"]  # fmt: skip
        code, out = on_a_pty(argv, tmp_path, b"/exit to leave", b"hello\r/exit\r")
        sent = server.requests[0]
    assert code == 0 and "all done" in out, out
    assert sent["max_tokens"] == 77 and sent["model"] == "m"
