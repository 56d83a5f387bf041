"""DockerRuntime: the same sandboxed shell in a container. Skips with a reason where no engine runs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from devloop.runtime import get_runtime
from devloop.runtime.base import RuntimeFailure
from devloop.runtime.docker import DockerRuntime, probe_docker
from devloop.runtime.limits import MIB, Limits

DOCKER_PROBLEM = probe_docker()
needs_docker = pytest.mark.skipif(DOCKER_PROBLEM is not None, reason=f"no Docker engine: {DOCKER_PROBLEM}")


def test_without_an_engine_start_is_a_one_line_failure(tmp_path: Path) -> None:
    if DOCKER_PROBLEM is None:
        pytest.skip("a Docker engine is running here")
    with pytest.raises(RuntimeFailure, match="^the docker runtime cannot start: ") as info:
        get_runtime("docker", tmp_path)
    assert "\n" not in str(info.value)


@needs_docker
@pytest.mark.slow
def test_container_shell_persists_and_is_confined(tmp_path: Path) -> None:
    limits = Limits(max_processes=128, max_output_bytes=8 * MIB, max_file_bytes=64 * MIB)
    with DockerRuntime(tmp_path, limits=limits) as rt:
        assert rt.run("cd /tmp && export X=1", 10).exit_code == 0
        assert rt.run("pwd; echo $X", 10).output == "/tmp\n1\n"
        assert rt.run(f"cd {tmp_path} && echo hi > inside.txt", 10).exit_code == 0
        assert (tmp_path / "inside.txt").read_text() == "hi\n"
        assert rt.run("touch /etc/x", 10).exit_code != 0
        started = time.monotonic()
        result = rt.run("sleep 1000", 1)
        assert result.timed_out and time.monotonic() - started < 10
        assert rt.run("echo alive", 10).output == "alive\n"
        assert "153" in rt.run("head -c 1G /dev/zero > big; echo $?", 30).output
