"""Shared by the CLI tests of the repository's environment (test_repo_env*.py): a user's repository with
a gitignored venv built by uv, a scripted agent, and `devloop run` as the user types it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devloop.eval.envs import find_uv
from devloop.workspace import git


@dataclass
class Run:
    proc: subprocess.CompletedProcess[str]
    out: Path

    @property
    def first_line(self) -> str:
        return self.proc.stdout.splitlines()[0] if self.proc.stdout else ""

    @property
    def result(self) -> dict[str, Any]:
        return json.loads((self.out / "result.json").read_text())

    def observations(self) -> list[str]:
        events = [json.loads(line) for line in (self.out / "trajectory.jsonl").read_text().splitlines()]
        return [o["text"] for e in events if e.get("type") == "step" for o in e.get("observations", [])]


class Kit:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.uv = find_uv()
        self.wheels = tmp_path / "wheels"
        self.cache = tmp_path / "cache"  # XDG_CACHE_HOME: devloop's cached envs and interpreter links
        self._runs = 0

    def repo(self, files: dict[str, str], name: str = "proj") -> Path:
        repo = self.tmp / name
        for rel, text in {".gitignore": ".venv/\nvenv/\nnode_modules/\n", **files}.items():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_text(text)
        git(repo, "init", "-q")
        git(repo, "add", "-A")
        git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "init")
        return repo

    def tinydep_wheel(self) -> Path:
        self.wheels.mkdir(exist_ok=True)
        wheel = self.wheels / "tinydep-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as z:
            z.writestr("tinydep/__init__.py", "VALUE = 42\n")
            z.writestr(
                "tinydep-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: tinydep\nVersion: 1.0\n"
            )
            z.writestr(
                "tinydep-1.0.dist-info/WHEEL",
                "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
            )
            z.writestr("tinydep-1.0.dist-info/RECORD", "")
        return wheel

    def venv(self, path: Path, *, pytest_too: bool = True, tinydep: bool = True) -> Path:
        """`uv venv` + `uv pip install` (from uv's cache when it has pytest, else the index); skips the
        test when pytest cannot be installed at all."""
        if self.uv is None:
            pytest.skip("uv is not installed")
        subprocess.run([self.uv, "venv", "-q", str(path), "--python", sys.executable], check=True)
        python = str(path / "bin" / "python")
        if pytest_too:
            for extra in (["--offline"], []):
                done = subprocess.run(
                    [self.uv, "pip", "install", "-q", *extra, "--python", python, "pytest"],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if done.returncode == 0:
                    break
            else:
                pytest.skip(f"pytest cannot be installed with uv: {done.stderr.strip()[-200:]}")
        if tinydep:
            subprocess.run(
                [self.uv, "pip", "install", "-q", "--offline", "--python", python, str(self.tinydep_wheel())],
                check=True,
            )
        return path

    def script(self, calls: list[tuple[str, dict[str, Any]]]) -> Path:
        path = self.tmp / f"script-{self._runs}.jsonl"
        lines = []
        for i, (name, args) in enumerate([*calls, ("finish", {"message": "done"})]):
            call = {
                "id": f"c{i}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
            lines.append(json.dumps({"role": "assistant", "content": "", "tool_calls": [call]}))
        path.write_text("\n".join(lines) + "\n")
        return path

    def run(
        self,
        repo: Path,
        calls: list[tuple[str, dict[str, Any]]],
        *args: str,
        env: dict[str, str] | None = None,
    ) -> Run:
        self._runs += 1
        out = self.tmp / f"out-{self._runs}"
        base = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
        base["XDG_CACHE_HOME"] = str(self.cache)
        if self.uv and "UV_CACHE_DIR" not in base:  # uv keeps its own cache (where pytest may be)
            found = subprocess.run([self.uv, "cache", "dir"], capture_output=True, text=True, check=False)
            base["UV_CACHE_DIR"] = found.stdout.strip()
        proc = subprocess.run(
            [sys.executable, "-m", "devloop", "run", "--repo", str(repo), "--issue", "check the env",
             "--model", f"scripted/{self.script(calls)}", "--output", str(out), *args],
            capture_output=True, text=True, check=False, timeout=300, env={**base, **(env or {})},
        )  # fmt: skip
        return Run(proc, out)


@pytest.fixture
def kit(tmp_path: Path) -> Kit:
    return Kit(tmp_path)
