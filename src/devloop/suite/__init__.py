"""devloop's built-in evaluation suite (`--suite builtin`)."""

from devloop.suite.builtin_tasks import (
    BUILTIN_DIR,
    SuiteError,
    expected_base_commit,
    list_builtin,
    load_task,
    materialize_builtin,
    task_dir,
)

__all__ = [
    "BUILTIN_DIR",
    "SuiteError",
    "expected_base_commit",
    "list_builtin",
    "load_task",
    "materialize_builtin",
    "task_dir",
]
