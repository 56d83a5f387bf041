from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devloop.runtime.local import LocalRuntime


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[LocalRuntime]:
    workspace = tmp_path / "work"
    workspace.mkdir()
    rt = LocalRuntime(workspace)
    try:
        yield rt
    finally:
        rt.close()
