"""Tasks: the SWE-bench record schema (plus `environment`), loaders for tasks, predictions and suites."""

from devloop.tasks.loader import LoadResult, TaskLoadError, load_suite, load_tasks
from devloop.tasks.model import EnvironmentSpec, LogParserName, Prediction, Task
from devloop.tasks.predictions import load_predictions, write_predictions

__all__ = [
    "EnvironmentSpec",
    "LoadResult",
    "LogParserName",
    "Prediction",
    "Task",
    "TaskLoadError",
    "load_predictions",
    "load_suite",
    "load_tasks",
    "write_predictions",
]
