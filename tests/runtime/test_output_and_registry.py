"""read_capped, the runtime registry, and /proc parsing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devloop.runtime import LocalRuntime, get_runtime, procs, register_runtime, runtime_names
from devloop.runtime.output import read_capped


def test_read_capped_small_file_is_whole(tmp_path: Path) -> None:
    path = tmp_path / "out.log"
    path.write_bytes(b"abc\xffdef")
    assert read_capped(path, cap=100) == ("abc\ufffddef", 7)


def test_read_capped_large_file_keeps_head_and_tail(tmp_path: Path) -> None:
    path = tmp_path / "out.log"
    path.write_bytes(b"H" * 600 + b"M" * 10_000 + b"T" * 600)
    text, size = read_capped(path, cap=1000)
    assert size == 11_200
    assert text.startswith("H" * 500 + "\n[... 10,200 bytes elided; full output in ")
    assert text.endswith(" ...]\n" + "T" * 500)
    assert "M" not in text.replace(str(path), "")


def test_read_capped_missing_file(tmp_path: Path) -> None:
    assert read_capped(tmp_path / "nope.log") == ("", 0)


def test_get_runtime_local_and_unknown(tmp_path: Path) -> None:
    assert {"local", "none"} <= set(runtime_names())
    rt = get_runtime("Local", tmp_path)
    try:
        assert isinstance(rt, LocalRuntime)
        assert rt.run("echo ok", 5).output == "ok\n"
    finally:
        rt.close()
    with pytest.raises(ValueError, match="unknown runtime 'podman': choose one of .*local"):
        get_runtime("podman", tmp_path)


def test_register_runtime_refuses_silent_replacement(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_runtime("local", LocalRuntime)
    with pytest.raises(TypeError, match="spawn_prefix"):
        LocalRuntime(tmp_path, spawn_prefix=["env"])


def test_proc_table_sees_this_process_and_its_session() -> None:
    me = procs.read_proc(os.getpid())
    assert me is not None and me.ppid == os.getppid() and me.sid == os.getsid(0)
    assert os.getpid() in procs.family(os.getppid(), sids=[])
    assert procs.read_proc(2**22 + 12345) is None
