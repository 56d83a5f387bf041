"""The former home of devloop.eval's grading modules: `devloop.harness.X` is `devloop.eval.X`.

Kept for the agent-side code that still names these paths (feedback's diff and log parsing); new code
imports devloop.eval.
"""

import importlib
import sys

for _name in ("diffs", "log_parsers"):
    sys.modules[f"{__name__}.{_name}"] = importlib.import_module(f"devloop.eval.{_name}")
