"""`devloop eval` protocol flags: bad combinations are one-line errors, never tracebacks."""

from __future__ import annotations

import pytest
from cli_inprocess import run_devloop


@pytest.mark.parametrize("args, message", [
    (["--protocol", "nope"], "unknown protocol 'nope'"),
    (["--protocol", "iterative", "--attempts", "4"], "needs 4 --temperatures"),
    (["--protocol", "iterative", "--temperatures", "0,x"], "'x' is not a number"),
    (["--protocol", "iterative", "--temperature", "0.5"], "drop --temperature"),
    (["--protocol", "best-of", "--samples", "1"], "best-of needs --samples 2"),
    (["--executor", "dask"], "unknown executor 'dask'"),
    (["--ray-address", "auto"], "--ray-address needs --executor ray"),
    (["--protocol", "samples", "--samples", "2", "--predictions", "gold", "--model", None], "not --predictions"),
])  # fmt: skip
def test_bad_protocol_flags(args: list[str | None], message: str) -> None:
    base = ["eval", "--suite", "builtin", "--model", "oracle"]
    if None in args:  # swap --model for --predictions
        base = ["eval", "--suite", "builtin"]
        args = [a for a in args if a not in ("--model", None)]
    proc = run_devloop([*base, *args])  # type: ignore[list-item]
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
