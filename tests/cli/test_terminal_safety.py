"""Text a model wrote never reaches the terminal as control sequences."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from devloop.cli.safe_text import shown

OSC52 = "\x1b]52;c;cm0gLXJmIH4K\x07"  # "write `rm -rf ~` into the clipboard"


def test_shown_makes_every_control_character_visible() -> None:
    assert shown(f"ok{OSC52}\tend\n") == "ok\\x1b]52;c;cm0gLXJmIH4K\\x07\tend\n"
    assert shown("\x9b2J") == "\\x9b2J"  # 8-bit CSI
    assert shown("héllo ✓") == "héllo ✓"


def test_replay_shows_escape_sequences_as_text(tmp_path: Path) -> None:
    events = [
        {"type": "start", "model": "m", "repo": "r", "task": f"task {OSC52}"},
        {
            "type": "step",
            "step": 1,
            "timings": {"model_s": 0.1},
            "usage": {},
            "completion": {"content": f"thinking {OSC52}"},
            "calls": [{"name": "execute_bash", "arguments": {"command": f"printf '{OSC52}'"}}],
            "observations": [{"text": f"out {OSC52}"}],
        },
        {"type": "end", "result": {"exit_status": "finished", "steps": 1, "reason": f"done {OSC52}"}},
    ]
    path = tmp_path / "trajectory.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    result = subprocess.run(
        [sys.executable, "-m", "devloop", "replay", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert "\x1b]52" not in result.stdout and "\x07" not in result.stdout
    assert result.stdout.count("\\x1b]52") >= 4


def test_square_brackets_in_a_path_are_printed_as_they_are(tmp_path: Path) -> None:
    from devloop.demo import demo_issue, demo_script, make_demo_repo

    repo = make_demo_repo(tmp_path / "my[bold]repo[/]")
    script = tmp_path / "script.jsonl"
    script.write_text("".join(json.dumps(m) + "\n" for m in demo_script("native")))
    out = tmp_path / "out[red]"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "devloop",
            "run",
            "--repo",
            str(repo),
            "--issue",
            demo_issue(),
            "--model",
            f"scripted/{script}",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    header = proc.stdout.splitlines()[0]
    assert str(repo) in header and str(out) in header
