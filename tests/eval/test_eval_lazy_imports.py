"""Grading given predictions never runs the agent nor a bootstrap: an `eval` process does not import them."""

from __future__ import annotations

import json
import subprocess
import sys


def test_eval_engine_imports_neither_the_agent_session_nor_numpy() -> None:
    code = (
        "import sys, json\nimport devloop.cli.eval_support, devloop.eval.engine, devloop.eval.store\n"
        "print(json.dumps(sorted(m for m in ('devloop.session', 'numpy') if m in sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout) == []


def test_the_bootstrap_still_works_when_numpy_is_imported_late() -> None:
    from devloop.stats.intervals import bootstrap_ci, paired_bootstrap_diff_ci, wilson

    assert bootstrap_ci([1.0, 1.0, 1.0]) == (1.0, 1.0)
    lo, hi = paired_bootstrap_diff_ci([0, 0, 1, 1], [1, 1, 1, 1])
    assert 0.0 <= lo <= hi <= 1.0
    assert wilson(5, 10)[0] < 0.5 < wilson(5, 10)[1]
