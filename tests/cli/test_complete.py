"""`devloop complete`: the request body splits the file at the cursor; the insertion alone is printed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_inprocess import run_devloop

from devloop.complete import CursorError, split_at
from devloop.models.scripted_server import ScriptedServer

SOURCE = "def add(a, b):\n    return \n\n\ndef mul(a, b):\n    pass\n"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "ops.py"
    path.write_text(SOURCE)
    return path


def env(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("DEVLOOP_") and "API_KEY" not in k}
    return {**keep, **extra}


def test_openai_servers_get_prompt_and_suffix_on_v1_completions(source: Path, tmp_path: Path) -> None:
    with ScriptedServer([{"content": "a + b"}]) as server:
        proc = run_devloop(["complete", source, "--line", "2", "--col", "12", "--model", "openai/coder",
                            "--base-url", server.url], cwd=tmp_path, env=env())  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "a + b"  # the insertion only: nothing added
    assert server.request_paths == ["/v1/completions"]
    body = server.requests[0]
    assert (body["model"], body["prompt"], body["suffix"]) == (
        "coder",
        "def add(a, b):\n    return ",
        SOURCE[26:],
    )
    assert body["prompt"] + body["suffix"] == SOURCE


def test_mistral_models_use_the_fim_endpoint(source: Path, tmp_path: Path) -> None:
    with ScriptedServer([{"content": "    return a * b\n"}]) as server:
        proc = run_devloop(["complete", source, "--line", "6", "--col", "1", "--model", "mistral/codestral-latest",
                            "--base-url", server.url], cwd=tmp_path, env=env(MISTRAL_API_KEY="k"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "    return a * b\n"
    assert server.request_paths == ["/v1/fim/completions"]
    body = server.requests[0]
    assert (
        body["prompt"] == "def add(a, b):\n    return \n\n\ndef mul(a, b):\n"
        and body["suffix"] == "    pass\n"
    )
    headers = {k.lower(): v for k, v in server.request_headers[0].items()}
    assert headers["authorization"] == "Bearer k"


def test_a_server_without_suffix_support_and_bad_cursors_are_one_line(source: Path, tmp_path: Path) -> None:
    with ScriptedServer([{"content": "x"}], suffix=False) as server:
        proc = run_devloop(["complete", source, "--line", "2", "--model", "openai/m", "--base-url", server.url],
                           cwd=tmp_path, env=env())  # fmt: skip
    assert (
        proc.returncode == 1 and "does not support `suffix`" in proc.stderr and "Traceback" not in proc.stderr
    )
    for args, said in (
        (["--line", "9"], ":9: --line must be 1-7"),
        (["--line", "2", "--col", "40"], ":2: --col"),
    ):
        proc = run_devloop(["complete", source, *args, "--model", "openai/m", "--base-url", "http://127.0.0.1:9/v1"],
                           cwd=tmp_path, env=env())  # fmt: skip
        assert proc.returncode == 2 and said in proc.stderr and str(source) in proc.stderr
    proc = run_devloop(["complete", tmp_path / "missing.py", "--line", "1", "--model", "openai/m"], cwd=tmp_path,
                       env=env())  # fmt: skip
    assert proc.returncode == 2 and "no such file" in proc.stderr
    proc = run_devloop(["complete", source, "--line", "1", "--model", "mistral/c"], cwd=tmp_path, env=env())
    assert proc.returncode == 2 and "MISTRAL_API_KEY" in proc.stderr


def test_the_cursor_splits_at_line_and_column() -> None:
    assert split_at("ab\ncd\n", 2) == ("ab\ncd", "\n")  # no column: the end of the line
    assert split_at("ab\ncd\n", 2, 2) == ("ab\nc", "d\n")
    assert split_at("ab\ncd\n", 3) == ("ab\ncd\n", "")  # the line after the final newline
    assert split_at("", 1) == ("", "")
    assert split_at("é\r\nx", 1, 2) == ("é", "\r\nx")
    with pytest.raises(CursorError, match="f:0: --line must be 1-3"):
        split_at("ab\ncd\n", 0, name="f")
