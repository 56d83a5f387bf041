"""An official spec mapped to a devloop test environment, with what devloop cannot reproduce named.

`environment_for(record)` looks up the record's (repo, version) in the shipped table and returns the
environment, or None and the missing pieces: conda environments, apt packages, downloads at setup time,
anything devloop would otherwise have to silently leave out. Host facts the official containers fix
(a generated locale, a CPU limit, a non-root test user) are not missing pieces: they travel in `host`
for the engine to reproduce, or to name in the verdict when it cannot.

Mapping, per spec key:
- `python` -> the interpreter version; `pip_packages` -> pins layered over conda `packages`, which are
  installed from PyPI under the same names (listed in `notes`).
- `packages: requirements.txt` -> `requirements`: the candidate paths, read at `environment_setup_commit`
  by the engine (`requirements.expand_requirements`), installed before `pip` (`requirements.layer`).
- `MAP_REPO_TO_INSTALL`, tree-local `pre_install` steps and `install` -> one bash script (`install`),
  stopping at the first failing step as the official `set -euxo pipefail` scripts do.
- `eval_commands` exports -> `env`; `test_cmd` and the repository's log parser as they are.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from devloop.swebench.log_parsers import PARSERS, ParserName
from devloop.swebench.requirements import layer
from devloop.swebench.specs import SpecTable, table


class HostFacts(BaseModel):
    """What the official container fixes about the machine the tests run on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    locale: str | None = None
    """A locale the official image generates (e.g. "en_US.UTF-8"); the tests' env selects it."""
    cpus: float | None = None
    """The container's CPU limit (`nano_cpus`); some tests skip or change with the CPU count."""
    non_root: bool = False
    """The tests run as a non-root user (`execute_test_as_nonroot`)."""


class RequirementsSource(BaseModel):
    """A requirements file to read from the repository at `commit`: the first of `paths` present."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    paths: list[str]
    commit: str | None = None


class SwebenchEnvironment(BaseModel):
    """A devloop environment derived from one official spec."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    python: str
    pip: list[str] = Field(default_factory=list)
    """Requirements installed after `requirements` (layered over it, see `requirements.layer`)."""
    requirements: RequirementsSource | None = None
    install: str | None = None
    """A bash script run in the checked-out tree before the patch is applied."""
    test_cmd: str
    """The official test command; the test files of test_patch are appended."""
    log_parser: ParserName
    env: dict[str, str] = Field(default_factory=dict)
    host: HostFacts = Field(default_factory=HostFacts)
    notes: list[str] = Field(default_factory=list)
    """Deliberate substitutions (e.g. conda packages taken from PyPI), for the verdict to show."""
    source: str
    """Where it came from, e.g. "swebench 4.1.0 django/django 3.0"."""

    def environment_fields(self) -> dict[str, Any]:
        """The fields devloop's `EnvironmentSpec` has (python, pip, install, test_cmd, log_parser, env)."""
        return self.model_dump(include={"python", "pip", "install", "test_cmd", "log_parser", "env"})


_KNOWN_KEYS = {
    "python", "packages", "pip_packages", "pre_install", "install", "eval_commands", "test_cmd",
    "nano_cpus", "execute_test_as_nonroot", "no_use_env",
}  # fmt: skip
_LOCALE_NAME = re.compile(r"\b([a-z]{2,3}_[A-Z]{2})[. ]UTF-8\b")
_APT_INSTALL = re.compile(r"\bapt-get\s+install\b(?P<rest>[^;&|]*)")
_DOWNLOADERS = ("wget", "curl")
_PIP_INSTALL = re.compile(r"\bpip install\b")
_TOX_ENV = re.compile(r"(?:^|\s)-e\s*([A-Za-z0-9_.-]+)(?:\s|$)")
# The official images check the repository out at /testbed; devloop's tree is the install's cwd.
_OFFICIAL_TREE = "/testbed"


def _apt_packages(step: str) -> list[str]:
    return [p for m in _APT_INSTALL.finditer(step) for p in m.group("rest").split() if not p.startswith("-")]


def _first_word(step: str) -> str:
    words = step.split()
    return words[0] if words else ""


class _Mapping:
    """Builds one environment; collects its missing pieces, notes and host facts."""

    def __init__(self, repo: str, version: str, spec: Mapping[str, Any], source: SpecTable):
        self.repo, self.version, self.spec, self.table = repo, version, spec, source
        self.missing: list[str] = []
        self.notes: list[str] = []
        self.locale = False

    def conda_packages(self) -> tuple[list[str], RequirementsSource | None]:
        packages = self.spec.get("packages") or ""
        if not packages:
            return [], None
        if packages == "requirements.txt":
            paths = self.table.requirements_paths.get(self.repo)
            if not paths:
                self.missing.append(
                    f"requirements.txt, but swebench names no requirements file for {self.repo}"
                )
                return [], None
            return [], RequirementsSource(paths=paths)
        if packages == "environment.yml":
            paths = self.table.environment_yml_paths.get(self.repo, ["environment.yml"])
            self.missing.append(f"a conda environment ({' or '.join(paths)}), which devloop cannot build")
            return [], None
        # Here, not at import: packaging's parser costs ~17 ms of every `devloop eval` start, and only a
        # spec with conda packages needs it.
        from packaging.requirements import InvalidRequirement, Requirement

        pins: list[str] = []
        for token in shlex.split(packages):
            try:
                Requirement(token)
            except InvalidRequirement:
                self.missing.append(f"conda package {token!r}, which has no pip form")
                continue
            pins.append(token)
        if pins:
            self.notes.append(f"conda packages installed from PyPI: {' '.join(pins)}")
        return pins, None

    def setup_step(self, step: str) -> str | None:
        """A pre_install step as a tree-local shell step, or None (a host fact or a missing piece)."""
        if "apt-get" in step:
            packages = _apt_packages(step)
            if "locales" in packages:
                self.locale = True
                packages.remove("locales")
            if packages:
                self.missing.append(f"system packages (apt-get install): {' '.join(packages)}")
            return None
        if "locale-gen" in step or "/etc/locale.gen" in step:
            self.locale = True
            return None
        if _first_word(step) in _DOWNLOADERS:
            self.missing.append(f"a download at setup time: {step}")
            return None
        return step.replace(_OFFICIAL_TREE, "$PWD")

    def isolated_build_off(self, install: str) -> str:
        """`pip install` without build isolation: an isolated build downloads its backend, and the
        sandbox has no network; the backend (pyproject's build-system.requires) is in the environment."""
        if "--no-build-isolation" in install or not _PIP_INSTALL.search(install):
            return install
        self.notes.append("pip install runs with --no-build-isolation (build-system.requires preinstalled)")
        return _PIP_INSTALL.sub(r"\g<0> --no-build-isolation", install)

    def current_env_step(self, test_cmd: str) -> str | None:
        """`tox --current-env -eNAME` runs `.tox/NAME/bin/python`, a symlink to the interpreter tox runs
        under. In the official conda environment that is a real interpreter; in a venv it is a symlink,
        and Python looks for `pyvenv.cfg` beside the path it was started by, so the tests would run
        outside the venv, without its packages. Making `.tox/NAME` the venv itself keeps them in it."""
        if "--current-env" not in test_cmd.split():
            return None
        found = _TOX_ENV.search(test_cmd)
        if found is None:
            return None
        name = found.group(1)
        self.notes.append(f"tox --current-env: .tox/{name} is the venv (a venv's interpreter is a symlink)")
        return f'mkdir -p .tox && ln -sfn "$VIRTUAL_ENV" .tox/{name}'

    def eval_env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for command in self.spec.get("eval_commands", []):
            words = shlex.split(command)
            if words and words[0] == "export" and all("=" in w for w in words[1:]):
                for word in words[1:]:
                    name, value = word.split("=", 1)
                    env[name] = value
            elif "locale-gen" in command:
                self.locale = True
            else:
                self.missing.append(f"an eval command that is not an export: {command}")
        return env

    def build(self) -> SwebenchEnvironment:
        for key in sorted(set(self.spec) - _KNOWN_KEYS):
            self.missing.append(f"spec key {key!r}, which devloop does not understand")
        conda, requirements = self.conda_packages()
        pip = layer(conda, list(self.spec.get("pip_packages", [])))
        steps = [self.table.install_commands[self.repo]] if self.repo in self.table.install_commands else []
        steps += [s for s in map(self.setup_step, self.spec.get("pre_install", [])) if s is not None]
        if self.spec.get("install"):
            steps.append(self.isolated_build_off(self.spec["install"]))
        env = self.eval_env()
        test_cmd = self.spec.get("test_cmd", "")
        if isinstance(test_cmd, str) and (step := self.current_env_step(test_cmd)):
            steps.append(step)
        if not test_cmd:
            self.missing.append("the spec has no test_cmd")
        elif not isinstance(test_cmd, str):
            self.missing.append(f"test_cmd {test_cmd!r} is not one shell command")
            test_cmd = str(test_cmd)
        parser = self.table.log_parsers.get(self.repo)
        if parser not in PARSERS:
            self.missing.append(f"no official Python log parser for {self.repo}")
            parser = "pytest"
        locale = None
        if self.locale:
            named = env.get("LC_ALL") or env.get("LANG") or ""
            found = _LOCALE_NAME.search(named) or _LOCALE_NAME.search(
                " ".join(self.spec.get("pre_install", []))
            )
            locale = f"{found.group(1)}.UTF-8" if found else "en_US.UTF-8"
        nano = self.spec.get("nano_cpus")
        return SwebenchEnvironment(
            python=str(self.spec.get("python", "")),
            pip=pip,
            requirements=requirements,
            install="\n".join(["set -euxo pipefail", *steps]) if steps else None,
            test_cmd=test_cmd,
            log_parser=parser,  # type: ignore[arg-type]
            env=env,
            host=HostFacts(
                locale=locale,
                cpus=nano / 1e9 if isinstance(nano, int | float) else None,
                non_root=bool(self.spec.get("execute_test_as_nonroot")),
            ),
            notes=self.notes,
            source=f"swebench {self.table.swebench_version} {self.repo} {self.version}",
        )


def map_spec(
    repo: str, version: str | None, *, setup_commit: str | None = None, source: SpecTable | None = None
) -> tuple[SwebenchEnvironment | None, list[str]]:
    """The environment of (repo, version) even when pieces are missing (then they are listed), or None
    and the reason when the table has no spec for it."""
    source = source or table()
    if version is None:
        return None, ["the record has no version, so it has no official spec"]
    spec = source.spec(repo, version)
    if spec is None:
        return None, [f"swebench {source.swebench_version} has no spec for {repo} version {version}"]
    mapping = _Mapping(repo, version, spec, source)
    environment = mapping.build()
    if environment.requirements is not None and setup_commit is not None:
        environment = environment.model_copy(
            update={"requirements": environment.requirements.model_copy(update={"commit": setup_commit})}
        )
    return environment, mapping.missing


def _field(record: Any, name: str) -> Any:
    return record.get(name) if isinstance(record, Mapping) else getattr(record, name, None)


def environment_for(record: Any) -> tuple[SwebenchEnvironment | None, list[str]]:
    """The official environment of a task record (a `Task` or a mapping with repo, version,
    environment_setup_commit), or None and the missing pieces: never an environment that silently lacks
    something the official one has."""
    version = _field(record, "version")
    environment, missing = map_spec(
        str(_field(record, "repo")),
        None if version is None else str(version),
        setup_commit=_field(record, "environment_setup_commit") or _field(record, "base_commit"),
    )
    return (None, missing) if missing else (environment, [])
