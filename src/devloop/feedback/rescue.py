"""Rescue rules: regexes over test or command output, each tied to a data-driven action.

Rules are data (the shipped `rules.toml`, plus `--rules FILE` in TOML or YAML): a regex, an action out of a fixed
set (`hint`, `install`, `restore_file`, `run`), an optional `lookup` that gathers facts from the repository, and a
Jinja2 message template rendered with the regex's named groups and those facts. Adding a rule needs no code.
A user rule with the name of a shipped rule replaces it; user tables extend the shipped ones.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from devloop import safefs
from devloop.feedback import rescue_facts as facts
from devloop.feedback.requirements import declared_requirement
from devloop.types import CommandResult

if TYPE_CHECKING:
    import jinja2

Action = Literal["hint", "install", "restore_file", "run"]
Target = Literal["output", "edited_files"]
TABLES = ("import_names", "commands", "pytest_plugins")
# The named group each acting rule needs, and what it means.
_REQUIRED_GROUP = {"install": "module", "restore_file": "file"}
DEFAULT_INSTALL = (
    'if command -v uv >/dev/null 2>&1; then uv pip install -q --python "$(command -v python)" {requirement}; '
    "else python -m pip install -q {requirement}; fi"
)


@cache
def _jinja() -> jinja2.sandbox.SandboxedEnvironment:
    """The templates' environment, made when the first rule is loaded: importing the feedback loop (as
    `import devloop.session` does) leaves jinja2's ~20 ms to whatever first renders a template."""
    import jinja2.sandbox

    return jinja2.sandbox.SandboxedEnvironment(undefined=jinja2.ChainableUndefined, autoescape=False)


class RuleError(ValueError):
    """A rule file is unreadable or holds a bad rule; one line: `file: rule N (name): field: problem`."""


class RuleSpec(BaseModel):
    """One rule as written in a rule file (validated; see rules.toml for the fields' meaning)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    pattern: str | list[str]
    action: Action = "hint"
    message: str
    target: Target = "output"
    lookup: facts.LookupName | None = None
    command: str | None = None
    timeout: float = 300.0

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
            raise ValueError("use letters, digits, '_', '-' or '.'")
        return value

    @field_validator("pattern")
    @classmethod
    def _patterns(cls, value: str | list[str]) -> str | list[str]:
        for p in [value] if isinstance(value, str) else value:
            try:
                re.compile(p)
            except re.error as e:
                raise ValueError(f"bad regex {p!r}: {e}") from None
        if not value:
            raise ValueError("needs at least one regex")
        return value

    @field_validator("message", "command")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None:
            import jinja2

            try:
                _jinja().parse(value)
            except jinja2.TemplateSyntaxError as e:
                raise ValueError(f"template error at line {e.lineno}: {e.message}") from None
        return value

    @model_validator(mode="after")
    def _action_needs(self) -> RuleSpec:
        group = _REQUIRED_GROUP.get(self.action)
        if group and self.target == "output":
            for p in self.patterns:
                if group not in re.compile(p).groupindex:
                    raise ValueError(f"pattern: action {self.action!r} needs a named group (?P<{group}>...)")
        if self.action == "run" and not self.command:
            raise ValueError("command: action 'run' needs a command")
        return self

    @property
    def patterns(self) -> list[str]:
        return [self.pattern] if isinstance(self.pattern, str) else list(self.pattern)


@dataclass
class Rule:
    """A loaded rule: its spec, compiled regexes and templates, and the file it came from."""

    name: str
    patterns: list[re.Pattern[str]]
    action: Action
    message: jinja2.Template
    target: Target = "output"
    lookup: str | None = None
    command: jinja2.Template | None = None
    timeout: float = 300.0
    source: str = ""

    @classmethod
    def from_spec(cls, spec: RuleSpec, source: str = "") -> Rule:
        return cls(
            spec.name, [re.compile(p) for p in spec.patterns], spec.action, _jinja().from_string(spec.message),
            spec.target, spec.lookup, _jinja().from_string(spec.command) if spec.command else None, spec.timeout,
            source,
        )  # fmt: skip


class Rules(list[Rule]):
    """The rules in order, plus the data tables their actions use (import_names, commands, pytest_plugins)."""

    def __init__(self, rules: list[Rule] = (), tables: dict[str, dict[str, Any]] | None = None) -> None:  # type: ignore[assignment]
        super().__init__(rules)
        self.tables: dict[str, dict[str, Any]] = tables if tables is not None else {t: {} for t in TABLES}


def shipped_rules_path() -> Path:
    return Path(str(resources.files("devloop.feedback") / "rules.toml"))


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RuleError(f"{path}: cannot read rule file: {e}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise RuleError(
                f"{path}: YAML rule files need PyYAML (pip install PyYAML), or write TOML"
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise RuleError(f"{path}: invalid YAML: {str(e).splitlines()[0]}") from None
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise RuleError(f"{path}: invalid TOML: {e}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RuleError(f"{path}: expected a table with a 'rules' list, got {type(data).__name__}")
    unknown = set(data) - {"rules", *TABLES}
    if unknown:
        raise RuleError(f"{path}: unknown key {sorted(unknown)[0]!r} (expected rules, {', '.join(TABLES)})")
    return data


def _parse_file(path: Path) -> tuple[list[Rule], dict[str, dict[str, Any]]]:
    data = _read(path)
    raw_rules = data.get("rules", [])
    if not isinstance(raw_rules, list):
        raise RuleError(f"{path}: 'rules' must be a list of tables ([[rules]] in TOML)")
    rules: list[Rule] = []
    seen: set[str] = set()
    for n, raw in enumerate(raw_rules, start=1):
        name = raw.get("name", "?") if isinstance(raw, dict) else "?"
        where = f"{path}: rule {n} ({name})"
        if not isinstance(raw, dict):
            raise RuleError(f"{where}: expected a table, got {type(raw).__name__}")
        try:
            spec = RuleSpec.model_validate(raw)
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(x) for x in err["loc"] if not isinstance(x, int))
            msg = err["msg"].removeprefix("Value error, ")  # rule-wide checks name their field themselves
            raise RuleError(f"{where}: {loc}: {msg}" if loc else f"{where}: {msg}") from None
        if spec.name in seen:
            raise RuleError(f"{where}: name: duplicate rule name in this file")
        seen.add(spec.name)
        rules.append(Rule.from_spec(spec, str(path)))
    tables: dict[str, dict[str, Any]] = {}
    for table in TABLES:
        value = data.get(table, {})
        if not isinstance(value, dict):
            raise RuleError(f"{path}: [{table}] must be a table of name = value")
        tables[table] = value
    return rules, tables


def load_rules(extra: Path | None = None) -> Rules:
    """The shipped rules, then those of `extra` (TOML, or YAML with PyYAML); a same-named rule replaces a
    shipped one in place. Raises RuleError with a one-line message naming the file and rule."""
    rules, tables = _parse_file(shipped_rules_path())
    if extra is not None:
        user_rules, user_tables = _parse_file(Path(extra))
        index = {r.name: i for i, r in enumerate(rules)}
        for rule in user_rules:
            if rule.name in index:
                rules[index[rule.name]] = rule
            else:
                rules.append(rule)
        for table in TABLES:
            tables[table] = {**tables[table], **user_tables[table]}
    return Rules(rules, tables)


# --- the engine ---------------------------------------------------------------------------------------------


class CommandRunner(Protocol):
    """What `install` and `run` need: a shell in the task's environment (a devloop Runtime fits)."""

    def run(self, command: str, timeout: float) -> CommandResult: ...


class FileRestorer(Protocol):
    """What `restore_file` needs: put one file back as it was at the last checkpoint (False if it cannot)."""

    def restore_file(self, path: str) -> bool: ...


class EventSink(Protocol):
    def emit(self, kind: str, **fields: Any) -> None: ...


@dataclass
class RescueContext:
    """Where the rules act: the workspace, its shell, the checkpoints, and where events go."""

    root: Path
    runtime: CommandRunner | None = None
    checkpoints: FileRestorer | None = None
    events: EventSink | None = None
    # `{requirement}` is replaced by the shell-quoted requirement declared in the repository.
    install_command: str = DEFAULT_INSTALL


@dataclass
class RescueResult:
    """What one rule did. `applied`: whether its action took effect (hints always do)."""

    rule: str
    action: str
    applied: bool
    message: str
    detail: dict[str, Any] = field(default_factory=dict)


class RescueEngine:
    """Applies rules to output. Each rule fires once per distinct match per call; `install` and `run` are not
    repeated for the same match over the engine's life (a failing install is not retried every step)."""

    def __init__(self, rules: list[Rule], context: RescueContext) -> None:
        self.rules = rules
        self.ctx = context
        self.tables: dict[str, dict[str, Any]] = getattr(rules, "tables", None) or load_rules().tables
        self._done: set[tuple[str, str]] = set()

    def apply(self, output: str, *, edited_files: list[str] | tuple[str, ...] = ()) -> list[RescueResult]:
        """Run every rule whose pattern matches `output` (or, for target edited_files, an edited file)."""
        results: list[RescueResult] = []
        edited = [facts.relative(p, self.ctx.root) for p in edited_files]
        for rule in self.rules:
            seen: set[str] = set()
            for groups in self._matches(rule, output, edited):
                key = repr(sorted(groups.items()))
                if key in seen:
                    continue
                seen.add(key)
                result = self._act(rule, groups, output, edited, key)
                if result is not None:
                    results.append(result)
                    if self.ctx.events is not None:
                        self.ctx.events.emit(
                            "rescue", rule=rule.name, action=rule.action, applied=result.applied
                        )
        return results

    @staticmethod
    def feedback(results: list[RescueResult]) -> str:
        """The text for the model: one paragraph per result."""
        if not results:
            return ""
        return "Rescue rules matched the last output:\n" + "\n".join(f"- {r.message}" for r in results)

    def _matches(self, rule: Rule, output: str, edited: list[str]) -> list[dict[str, str]]:
        found: list[dict[str, str]] = []
        if rule.target == "output":
            for rx in rule.patterns:
                found += [
                    {k: v for k, v in m.groupdict().items() if v is not None} for m in rx.finditer(output)
                ]
            return found
        for rel in edited:
            try:  # beneath the root: a link out of the workspace, or a FIFO, is skipped like a missing file
                text = safefs.read_text(self.ctx.root, rel, max_bytes=facts.MAX_READ_BYTES)
            except OSError:
                continue
            for rx in rule.patterns:
                m = rx.search(text)
                if m:
                    line = str(text.count("\n", 0, m.start()) + 1)
                    found.append(
                        {
                            **{k: v for k, v in m.groupdict().items() if v is not None},
                            "file": rel,
                            "line": line,
                        }
                    )
                    break
        return found

    def _act(
        self, rule: Rule, groups: dict[str, str], output: str, edited: list[str], key: str
    ) -> RescueResult | None:
        ctx = self.ctx
        values: dict[str, Any] = {**groups, "root": str(ctx.root), "edited_files": edited}
        if "file" in groups:
            values["file"] = facts.relative(groups["file"], ctx.root)
        if rule.lookup:
            values.update(facts.LOOKUPS[rule.lookup](values, ctx.root, output, self.tables))
        applied = True
        if rule.action == "restore_file":
            if values["file"] not in edited:
                return None  # a file the agent did not touch: not the agent's breakage, nothing to undo
            applied = self._restore(values)
        elif rule.action == "install":
            if (rule.name, key) in self._done:
                return None
            self._done.add((rule.name, key))
            applied = self._install(values)
        elif rule.action == "run":
            if (rule.name, key) in self._done:
                return None
            self._done.add((rule.name, key))
            assert rule.command is not None
            applied = self._run(rule.command.render(values), rule.timeout, values)
        message = rule.message.render(values).strip()
        detail = {k: v for k, v in values.items() if k not in ("root", "edited_files")}
        return RescueResult(rule.name, rule.action, applied, message, detail)

    def _restore(self, values: dict[str, Any]) -> bool:
        if self.ctx.checkpoints is None:
            values["restore_error"] = "no checkpoint was taken"
            return False
        ok = self.ctx.checkpoints.restore_file(values["file"])
        values["restored"] = ok
        if not ok:
            values["restore_error"] = "it is not in the last checkpoint"
        return ok

    def _install(self, values: dict[str, Any]) -> bool:
        module = values["module"]
        found = declared_requirement(self.ctx.root, module, self.tables.get("import_names", {}))
        if found is None:
            values["local"] = facts.local_modules(self.ctx.root, module)
            return False
        values["requirement"], values["declared_in"] = found
        command = self.ctx.install_command.replace("{requirement}", shlex.quote(found[0]))
        ok = self._run(command, 600.0, values)
        values["installed"] = ok
        if not ok:
            values["install_error"] = values.pop("run_error", "the installer failed")
        return ok

    def _run(self, command: str, timeout: float, values: dict[str, Any]) -> bool:
        if self.ctx.runtime is None:
            values["run_error"] = "no shell to run it in"
            return False
        result = self.ctx.runtime.run(command, timeout)
        values["command_output"] = result.output[-2000:]
        if result.exit_code == 0:
            return True
        tail = [ln for ln in result.output.strip().splitlines() if ln.strip()]
        values["run_error"] = tail[-1] if tail else f"exit code {result.exit_code}"
        return False
