"""Iteration ablation (`ablation`), and the former home of devloop.eval's protocol modules:
`devloop.protocols.X` is `devloop.eval.X` for the names reports still import."""

import importlib
import sys

for _name, _target in (("rundata", "rundata"), ("summary", "summary"), ("units", "records")):
    sys.modules[f"{__name__}.{_name}"] = importlib.import_module(f"devloop.eval.{_target}")
