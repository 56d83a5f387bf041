"""Modules every agent command loads do not pull in the sandbox code or the metrics/diff libraries."""

from __future__ import annotations

import json
import subprocess
import sys


def _imported_after(code: str) -> set[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_settings_and_feedback_modules_import_no_sandbox_metrics_or_rich() -> None:
    loaded = _imported_after(
        "import devloop.config, devloop.runtime, devloop.runtime.probe\n"
        "import devloop.feedback.metrics, devloop.feedback.livediff"
    )
    assert "devloop.config" in loaded and "devloop.feedback.metrics" in loaded
    heavy = {"devloop.runtime.bwrap", "devloop.runtime.docker", "devloop.runtime.shell", "prometheus_client",
             "rich.console"}  # fmt: skip
    assert not heavy & loaded, heavy & loaded


def test_lazy_names_still_resolve_and_runtimes_start_by_name(tmp_path) -> None:
    import devloop.runtime as rt
    from devloop.runtime import BwrapRuntime, LocalRuntime, resolve_sandbox

    assert BwrapRuntime.__name__ == "BwrapRuntime" and resolve_sandbox("none") == ("none", None)
    shell = rt.get_runtime("none", tmp_path)
    try:
        assert isinstance(shell, LocalRuntime) and shell.run("echo hi", 5).output == "hi\n"
    finally:
        shell.close()
    try:
        rt.NoSuchThing  # noqa: B018
    except AttributeError as e:
        assert "NoSuchThing" in str(e)
    else:
        raise AssertionError("an unknown name must raise AttributeError")
