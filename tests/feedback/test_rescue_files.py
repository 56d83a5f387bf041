"""User rule files: adding and replacing rules without code, and one-line errors for bad ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devloop.feedback.rescue import RescueContext, RescueEngine, RuleError, load_rules

USER_TOML = """
[[rules]]
name = "flaky_network"
pattern = "ConnectionRefusedError: .*port (?P<port>\\\\d+)"
message = "Nothing listens on port {{ port }}: tests must not need the network."

[[rules]]
name = "command_not_found"
pattern = "(?P<command>\\\\w+): command not found"
lookup = "command_package"
message = "custom: {{ command }} via {{ package }}"

[commands]
frobnicate = "the pip package frob"
"""


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def emit(self, kind: str, **fields: Any) -> None:
        self.seen.append((kind, fields))


def test_user_toml_adds_a_rule_and_replaces_a_shipped_one(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(USER_TOML)
    rules = load_rules(path)
    names = [r.name for r in rules]
    assert names[-1] == "flaky_network" and names.count("command_not_found") == 1
    assert len(rules) == len(load_rules()) + 1
    events = Events()
    engine = RescueEngine(rules, RescueContext(tmp_path, events=events))
    results = engine.apply(
        "ConnectionRefusedError: [Errno 111] port 5432\nbash: frobnicate: command not found\n"
    )
    by_rule = {r.rule: r.message for r in results}
    assert by_rule["flaky_network"] == "Nothing listens on port 5432: tests must not need the network."
    assert by_rule["command_not_found"] == "custom: frobnicate via the pip package frob"
    assert [e[1]["rule"] for e in events.seen if e[0] == "rescue"] == ["command_not_found", "flaky_network"]
    text = RescueEngine.feedback(results)
    assert text.startswith("Rescue rules matched") and "port 5432" in text


def test_user_yaml_rules(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n"
        "  - name: slow_db\n"
        "    pattern: 'OperationalError: database is locked'\n"
        "    message: 'SQLite is locked: close connections in the fixture.'\n"
    )
    rules = load_rules(path)
    results = RescueEngine(rules, RescueContext(tmp_path)).apply(
        "sqlite3.OperationalError: database is locked"
    )
    assert [r.rule for r in results] == ["slow_db"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[[rules]]\nname = "x"\npattern = "(unclosed"\nmessage = "m"\n', "rule 1 (x): pattern: bad regex"),
        ('[[rules]]\nname = "x"\npattern = "a"\naction = "reboot"\nmessage = "m"\n', "rule 1 (x): action: Input should be"),
        ('[[rules]]\nname = "x"\npattern = "No module (\\\\w+)"\naction = "install"\nmessage = "m"\n',
         "rule 1 (x): pattern: action 'install' needs a named group (?P<module>...)"),
        ('[[rules]]\nname = "x"\npattern = "a"\nmessage = "{% if %}"\n', "rule 1 (x): message: template error"),
        ('[[rules]]\nname = "x"\npattern = "a"\naction = "run"\nmessage = "m"\n', "rule 1 (x): command: action 'run' needs"),
        ('[[rules]]\nname = "ok"\npattern = "a"\nmessage = "m"\n[[rules]]\nname = "y"\npattern = "b"\n',
         "rule 2 (y): message: Field required"),
        ('[[rules]]\nname = "x"\npattern = "a"\nmessage = "m"\ncolour = "red"\n', "rule 1 (x): colour: Extra inputs"),
        ('[[rules]]\nname = "x"\npattern = "a"\nmessage = "m"\nlookup = "psychic"\n', "rule 1 (x): lookup: Input should be"),
        ("[[rules]\n", "invalid TOML"),
        ('rulez = []\n', "unknown key 'rulez'"),
        ('commands = "jq"\n', "[commands] must be a table"),
    ],
)  # fmt: skip
def test_bad_rule_file_gives_one_line_naming_file_rule_and_field(
    tmp_path: Path, body: str, expected: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(RuleError) as info:
        load_rules(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and expected in message and "\n" not in message


def test_missing_rule_file(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="cannot read rule file"):
        load_rules(tmp_path / "nope.toml")


def test_install_and_run_are_not_repeated_for_the_same_match(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("PyYAML==6.0\n")

    class Recorder:
        def __init__(self) -> None:
            self.commands: list[str] = []

        def run(self, command: str, timeout: float) -> Any:
            from devloop.types import CommandResult

            self.commands.append(command)
            return CommandResult("ok", 0)

    shell = Recorder()
    engine = RescueEngine(
        load_rules(), RescueContext(tmp_path, runtime=shell, install_command="install {requirement}")
    )
    output = "ModuleNotFoundError: No module named 'yaml'\n" * 2
    first = engine.apply(output)
    assert [r.rule for r in first] == ["module_not_found"] and first[0].applied
    assert shell.commands == ["install PyYAML==6.0"]  # import name yaml -> distribution PyYAML, declared pin
    assert engine.apply(output) == [] and len(shell.commands) == 1


def test_restore_file_uses_the_run_checkpoints(tmp_path: Path) -> None:
    import subprocess
    import sys

    from devloop.feedback.checkpoints import Checkpoints
    from devloop.workspace import Workspace

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "mod.py").write_text("def f():\n    return 1\n")
    ws = Workspace.create(repo, parent=tmp_path)
    checkpoints = Checkpoints(ws)
    (ws.root / "mod.py").write_text("def f():\n    return 2\n")
    checkpoints.save(1, ws.diff())
    (ws.root / "mod.py").write_text("def f(:\n    return 3\n")
    output = subprocess.run(
        [sys.executable, "-c", "import mod"], cwd=ws.root, capture_output=True, text=True
    ).stderr
    engine = RescueEngine(load_rules(), RescueContext(ws.root, checkpoints=checkpoints))
    results = engine.apply(output, edited_files=["mod.py"])
    assert [(r.rule, r.applied) for r in results] == [("syntax_error_in_edited_file", True)]
    assert (ws.root / "mod.py").read_text() == "def f():\n    return 2\n"  # the checkpoint, not the base
