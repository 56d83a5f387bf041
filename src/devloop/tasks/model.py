"""The task record: SWE-bench's fields plus an optional local repository and test environment."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from devloop.tasks.safety import component_problem, patch_problem

# pytest, sympy and the other official names read logs as the official SWE-bench parsers do
# (devloop.swebench.log_parsers); junit is devloop's own (JUnit XML in the log).
LogParserName = Literal[
    "pytest", "sympy", "junit", "django", "pytest_options", "pytest_v2", "matplotlib", "seaborn"
]

_PYTHON_VERSION = re.compile(r"^\d+(\.\d+){0,2}$")


def _json_list(value: Any) -> Any:
    """Accept a list, or a JSON-encoded list as the official SWE-bench files store FAIL_TO_PASS."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a JSON list ({exc.msg})") from None
        if not isinstance(value, list):
            raise ValueError("JSON string does not hold a list")
    return value


class EnvironmentSpec(BaseModel):
    """How to build and run a task's tests: interpreter, pinned packages, install and test commands.

    Tasks sharing (python, pip) share one cached virtual environment; `install` runs per instance in
    the extracted tree (typically an editable install), with `env` set.
    """

    model_config = ConfigDict(extra="forbid")

    python: str
    """Interpreter version, e.g. "3.9" (found on PATH, under $PYENV_ROOT/versions, or via uv)."""
    pip: list[str] = Field(default_factory=list)
    """Requirement specifiers installed into the cached venv, e.g. "attrs==23.1.0"."""
    install: str | None = None
    """Shell command run in the tree before the tests, e.g. "python -m pip install -e .". None: nothing."""
    test_cmd: str = "pytest -rA"
    """Test command; the test files named in test_patch are appended, as the official harness does."""
    log_parser: LogParserName = "pytest"
    """How to read the test log: an official SWE-bench parser (pytest, pytest_options, pytest_v2, django,
    matplotlib, seaborn, sympy) or junit (JUnit XML in the log)."""
    env: dict[str, str] = Field(default_factory=dict)
    """Extra environment variables for the install and test commands."""

    @field_validator("python", mode="before")
    @classmethod
    def _python_version(cls, value: Any) -> Any:
        if isinstance(value, int | float):
            value = str(value)
        if not isinstance(value, str) or not _PYTHON_VERSION.match(value):
            raise ValueError(f"expected a version like '3.9', got {value!r}")
        return value


def _safe_id(value: str) -> str:
    # The id names the instance's run directory and temporary directories: one plain path component.
    if (problem := component_problem(value)) is not None:
        raise ValueError(problem)
    return value


class Task(BaseModel):
    """One SWE-bench-format instance. Unknown fields (e.g. `difficulty` in Verified) are kept."""

    model_config = ConfigDict(extra="allow")

    instance_id: str = Field(min_length=1)
    repo: str = Field(min_length=1)
    base_commit: str = Field(min_length=1)
    problem_statement: str
    patch: str = ""
    test_patch: str = ""
    FAIL_TO_PASS: list[str]
    PASS_TO_PASS: list[str] = Field(default_factory=list)
    version: str | None = None
    environment_setup_commit: str | None = None
    hints_text: str = ""
    created_at: str | None = None
    repo_path: Path | None = None
    """A local git repository holding base_commit (takes precedence over --mirrors)."""
    environment: EnvironmentSpec | None = None
    """How to grade the task; official SWE-bench records have none and get one from the official table
    (`devloop.swebench.records.fill_environments`)."""
    environment_missing: list[str] = Field(default_factory=list)
    """Why the official table gave no environment (each piece devloop cannot reproduce); in the verdict."""

    @field_validator("FAIL_TO_PASS", "PASS_TO_PASS", mode="before")
    @classmethod
    def _test_lists(cls, value: Any) -> Any:
        return _json_list(value)

    @field_validator("instance_id")
    @classmethod
    def _instance_id(cls, value: str) -> str:
        return _safe_id(value)

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str) -> str:
        # `owner/name` becomes the directory `<mirrors>/owner__name`: that must be one plain component.
        if (problem := component_problem(value.replace("/", "__"))) is not None:
            raise ValueError(f"as a mirror directory name: {problem}")
        return value

    @field_validator("patch", "test_patch")
    @classmethod
    def _patch_paths(cls, value: str, info: ValidationInfo) -> str:
        # The harness joins these paths to the instance tree on the host; test paths also reach the shell.
        if (problem := patch_problem(value, shell_safe=info.field_name == "test_patch")) is not None:
            raise ValueError(problem)
        return value

    @field_validator("version", mode="before")
    @classmethod
    def _version_str(cls, value: Any) -> Any:
        # Some dumps store the version as a float (e.g. 0.2).
        return str(value) if isinstance(value, int | float) else value

    @property
    def mirror_name(self) -> str:
        """The directory name of this task's repository under --mirrors: `owner__name`."""
        return self.repo.replace("/", "__")


class Prediction(BaseModel):
    """A patch for one instance, in SWE-bench's predictions format.

    The id is checked like a task's. `model_patch` is not checked here: a patch naming unsafe paths is one
    model's bad output and grades as a failed apply (see `harness.grading`), it does not void the file.
    """

    model_config = ConfigDict(extra="allow")

    instance_id: str = Field(min_length=1)
    model_name_or_path: str = ""
    model_patch: str = ""

    @field_validator("model_patch", "model_name_or_path", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value

    @field_validator("instance_id")
    @classmethod
    def _instance_id(cls, value: str) -> str:
        return _safe_id(value)
