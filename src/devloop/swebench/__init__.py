"""Official SWE-bench records as they are: the environment table, log parsers and grading rules.

- `specs.json` is the official per-(repo, version) environment table, generated from swebench 4.1.0 by
  `generate_specs` (swebench is MIT-licensed; the file carries its notice); `specs` loads it.
- `environments.environment_for(record)` maps a record's spec to a devloop environment, or names what
  devloop cannot reproduce (conda environments, apt packages).
- `log_parsers` reimplements every official Python log parser with the official output; `grading.grade`
  applies the swebench 4.x or 5.x rules to a parsed log.
- `official` loads the installed reference package (for regeneration and the differential tests only).
"""

from devloop.swebench.environments import HostFacts, SwebenchEnvironment, environment_for, map_spec
from devloop.swebench.grading import Grade, grade
from devloop.swebench.log_parsers import PARSERS, LogParseError, parse_log

__all__ = [
    "PARSERS",
    "Grade",
    "HostFacts",
    "LogParseError",
    "SwebenchEnvironment",
    "environment_for",
    "grade",
    "map_spec",
    "parse_log",
]
