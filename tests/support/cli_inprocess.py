"""`devloop ARGS` run inside the test process, answered like `subprocess.run(..., text=True)`.

A subprocess pays the interpreter and every import again (about a second of CPU per call); the CLI's own
process boundary (exit codes of a real process, signals, kill -9, --help as typed) keeps its subprocess
tests. Here `devloop.cli.main` runs with its argv, environment, working directory and standard streams
swapped for the call, and an exception that escapes it is written to stderr as the traceback Python
would print, so "no Traceback" assertions keep their teeth.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path


class _Stream(io.TextIOWrapper):
    """A text stream over bytes (with `.buffer`, like sys.stdout) that is never a terminal."""

    def __init__(self, data: bytes = b"") -> None:
        super().__init__(io.BytesIO(data), encoding="utf-8", errors="replace", write_through=True)

    def text(self) -> str:
        self.flush()
        return self.buffer.getvalue().decode("utf-8", errors="replace")  # type: ignore[attr-defined]


def run_devloop(
    args: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    from devloop.cli import main

    argv = ["devloop", *map(str, args)]
    saved = (sys.argv, sys.stdin, sys.stdout, sys.stderr, dict(os.environ), os.getcwd())
    out, err = _Stream(), _Stream()
    code: int = 0
    try:
        sys.argv, sys.stdin, sys.stdout, sys.stderr = argv, _Stream((input or "").encode()), out, err
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        if cwd is not None:
            os.chdir(cwd)
        try:
            main()
        except SystemExit as e:
            if e.code is None or isinstance(e.code, int):
                code = e.code or 0
            else:
                err.write(f"{e.code}\n")
                code = 1
        except BaseException:
            traceback.print_exc(file=err)
            code = 1
    finally:
        sys.argv, sys.stdin, sys.stdout, sys.stderr = saved[:4]
        os.environ.clear()
        os.environ.update(saved[4])
        os.chdir(saved[5])
    return subprocess.CompletedProcess(argv, code, out.text(), err.text())
