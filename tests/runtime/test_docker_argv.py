"""The docker runtime's `docker run` argv (docker need not be installed): chat's protected paths inside the
workspace (.git, .devloop, devloop.toml) are mounted read-only over its read-write mount, as under bwrap."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from devloop.runtime.docker import run_argv


def mounts(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == "--mount"]


def test_protected_paths_are_mounted_read_only_over_the_workspace(tmp_path: Path) -> None:
    root, scratch = tmp_path / "repo", tmp_path / "scratch"
    (root / ".git").mkdir(parents=True)
    (root / ".devloop").mkdir()
    (root / "devloop.toml").write_text("")
    (root / "gitlink").symlink_to(root / ".git")
    argv = run_argv("docker", "img", "c1", root, scratch, ro_inside=[
        root / ".git", root / ".devloop", root / "devloop.toml", root / "gitlink", root / "missing"])  # fmt: skip
    assert mounts(argv) == [
        f"type=bind,source={root / p},target={root / p},readonly"
        for p in (".git", ".devloop", "devloop.toml")
    ]  # a link (docker would mount what it leads to) and what does not exist are not mounted
    assert argv.index(f"{root}:{root}:rw") < argv.index("--mount")  # the workspace's mount, then these
    assert (
        argv[-3:] == ["img", "sleep", "infinity"]
        and "--read-only" in argv
        and argv[argv.index("--network") + 1] == "none"
    )
    assert mounts(run_argv("docker", "img", "c1", root, scratch)) == []  # `devloop run`: nothing held


def test_a_path_with_a_comma_is_quoted_as_one_field(tmp_path: Path) -> None:
    root = tmp_path / 'a,b"c'
    (root / ".git").mkdir(parents=True)
    (mount,) = mounts(run_argv("docker", "img", "c1", root, tmp_path / "s", ro_inside=[root / ".git"]))
    quoted = str(root / ".git").replace('"', '""')
    assert mount == f'type=bind,"source={quoted}","target={quoted}",readonly'


def test_a_session_on_docker_passes_what_it_protects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from devloop.config import RunSettings
    from devloop.session import Session

    seen: dict[str, Any] = {}
    monkeypatch.setattr("devloop.session.get_runtime", lambda name, root, **kw: seen.update(name=name, **kw))
    (tmp_path / "s.jsonl").write_text('{"content": "x"}\n')
    session = Session.prepare(RunSettings(model=f"scripted/{tmp_path / 's.jsonl'}", sandbox="none"))
    session.model.close()
    session.sandbox = "docker"
    ws = SimpleNamespace(root=tmp_path, read_only_paths=[])
    session.open_runtime(ws, tmp_path / "out", [], None, protect=[tmp_path / ".git", tmp_path / ".devloop"])  # type: ignore[arg-type]
    assert seen["name"] == "docker" and seen["ro_inside"] == [tmp_path / ".git", tmp_path / ".devloop"]
