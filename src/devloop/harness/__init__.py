"""The former home of devloop.eval's grading modules: `devloop.harness.X` is `devloop.eval.X`.

Kept so code outside eval that still names these paths (feedback, reports) imports the same module
objects; new code imports devloop.eval.
"""

import importlib
import sys

for _name in ("diffs", "envs", "grading", "log_parsers", "store", "verdict"):
    sys.modules[f"{__name__}.{_name}"] = importlib.import_module(f"devloop.eval.{_name}")
