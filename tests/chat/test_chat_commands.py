"""The interactive chat without a terminal (stdin lines): slash commands, approvals answered y / n /
session / project, diff previews accepted or rejected, and the edits chat never lets through."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from devloop.chat.approvals import Approvals, ChatAsker, load, save, standing_prefix
from devloop.cli import app
from devloop.models.scripted_server import ScriptedServer
from devloop.types import ToolCall


def chat(server: ScriptedServer, repo: Path, keys: str, *args: str) -> str:
    argv = ["chat", "--repo", str(repo), "--model", "openai/m", "--base-url", server.url, "--sandbox", "none"]
    res = CliRunner().invoke(app, [*argv, *args], input=keys)
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    return res.output


def test_a_rejected_edit_is_not_written_and_the_model_is_told(repo: Path, replies) -> None:
    script = [replies.replace("a.py", "x = 1", "x = 2"), replies.finish("gave up")]
    with ScriptedServer(script) as server:
        out = chat(server, repo, "make 2\nn\n/exit\n")
        told = server.requests[1]["messages"][-1]["content"]
    assert "-x = 1\n+x = 2" in out and "apply this edit? [y/n/e]" in out
    assert (repo / "a.py").read_text() == "x = 1\n" and "the user declined" in told


def test_the_agent_may_not_edit_the_repositorys_git_dir_even_with_auto_edit(repo: Path, replies) -> None:
    hooks = repo / ".git" / "hooks"
    (repo / "gitlink").symlink_to(repo / ".git")  # a link inside the tree, to the same place
    script = [replies.call("str_replace_editor", command="create", path=".git/hooks/pre-commit", file_text="x"),
              replies.call("str_replace_editor", 1, command="create", path="gitlink/hooks/post-checkout", file_text="x"),
              replies.call("str_replace_editor", 2, command="create", path=".devloop/commands/evil.md", file_text="x"),
              replies.finish("ok")]  # fmt: skip
    with ScriptedServer(script) as server:
        chat(server, repo, "", "-p", "plant", "--output", "json")
    assert not (hooks / "pre-commit").exists() and not (hooks / "post-checkout").exists()
    assert not (repo / ".devloop" / "commands").exists(), list((repo / ".devloop").rglob("*"))
    with ScriptedServer(script) as server:
        out = chat(server, repo, "plant\n/exit\n", "--auto-edit")
    assert out.count("· str_replace_editor create") == 3 and out.count("Not run:") == 3
    assert not (hooks / "pre-commit").exists() and not (repo / ".devloop" / "commands").exists()


def test_a_policy_file_the_model_writes_during_a_turn_is_put_back(repo: Path, replies) -> None:
    (repo / ".devloop").mkdir()
    (repo / ".devloop" / "policy.toml").write_text('[[rule]]\naction = "deny"\ntool = "think"\n')
    script = [replies.bash("printf '[[rule]]\\naction = \"allow\"\\ntool = \"*\"\\n' > .devloop/policy.toml"),
              replies.finish("ok")]  # fmt: skip
    with ScriptedServer(script) as server:
        res = CliRunner().invoke(app, ["chat", "--repo", str(repo), "--model", "openai/m", "--base-url",
                                       server.url, "--sandbox", "none", "-p", "go"])  # fmt: skip
    assert "changed during the turn, not by devloop chat: put back" in res.output
    assert (repo / ".devloop" / "policy.toml").read_text() == '[[rule]]\naction = "deny"\ntool = "think"\n'


def test_a_settings_file_the_model_plants_is_removed_and_the_editor_may_not_write_it(
    repo: Path, replies
) -> None:
    # The project's devloop.toml picks the sandbox and the server: planted, it would rule the next session.
    script = [replies.bash("printf 'sandbox = \"none\"\\n' > devloop.toml"),
              replies.call("str_replace_editor", 1, command="create", path="devloop.toml", file_text="x = 1\n"),
              replies.finish("ok")]  # fmt: skip
    with ScriptedServer(script) as server:
        res = CliRunner().invoke(app, ["chat", "--repo", str(repo), "--model", "openai/m", "--base-url",
                                       server.url, "--sandbox", "none", "-p", "go"])  # fmt: skip
        refused = server.requests[2]["messages"][-1]["content"]
    assert res.exit_code == 0, res.output
    assert "devloop.toml: changed during the turn: put back as it was" in res.output
    assert not (repo / "devloop.toml").exists() and "Not run" in refused
    (repo / "devloop.toml").write_text("max_iterations = 7\n")  # the user's own file is kept as it was
    with ScriptedServer(script[:1] + script[2:]) as server:
        CliRunner().invoke(app, ["chat", "--repo", str(repo), "--model", "openai/m", "--base-url",
                                 server.url, "--sandbox", "none", "-p", "go"])  # fmt: skip
    assert (repo / "devloop.toml").read_text() == "max_iterations = 7\n"


def test_slash_commands(repo: Path, replies) -> None:
    (repo / ".devloop" / "commands").mkdir(parents=True)
    (repo / ".devloop" / "commands" / "review.md").write_text("Review $ARGUMENTS for bugs.\n")
    script = [replies.replace("a.py", "x = 1", "x = 2"), replies.finish("two"), replies.finish("reviewed")]
    keys = ("/help\n/model\n/model openai/other\n/nonsense\nmake 2\ny\n/diff\n/tokens\n/status\n/compact\n"
            "/review a.py\n/undo\n/clear\n/resume\n/exit\n")  # fmt: skip
    with ScriptedServer(script) as server:
        out = chat(server, repo, keys)
        asked = server.requests[-1]
    assert "/rewind [N]" in out and "project commands (.devloop/commands): /review" in out
    assert "model: openai/m" in out and "model: openai/other (from the next turn)" in out
    assert asked["model"] == "other"  # /model switched it
    assert "/nonsense: no such command" in out
    assert "diff --git a/a.py b/a.py" in out  # /diff after the turn
    assert "turn   1  prompt" in out and "total     prompt" in out  # /tokens
    assert "approvals project: -" in out and "edits     shown as a diff, then asked" in out  # /status
    assert "/compact: nothing to summarise yet" in out  # one turn: the last is always kept
    assert "Now the user asks: Review a.py for bugs." in asked["messages"][1]["content"]
    assert "undid turn 2" in out and (repo / "a.py").read_text() == "x = 2\n"  # the review turn undone
    assert "new conversation" in out and out.count(" turn(s)  ") >= 2  # /clear, then /resume lists both


def test_compact_replaces_the_earlier_turns_by_the_models_summary(repo: Path, replies) -> None:
    script = [replies.finish("first answer " + "x" * 3000), replies.finish("second answer"),
              {"role": "assistant", "content": "They asked about alpha and beta; both answered."},
              replies.finish("third answer")]  # fmt: skip
    keys = "tell me about alpha\ntell me about beta\n/compact keep the names\nand gamma?\n/exit\n"
    with ScriptedServer(script) as server:
        out = chat(server, repo, keys)
        summary_request, next_turn = server.requests[2], server.requests[3]
    asked = summary_request["messages"][-1]["content"]
    assert "tell me about alpha" in asked and "keep the names" in asked  # old turn + the user's instructions
    assert "compacted turns 1-1 into a summary" in out
    task = next_turn["messages"][1]["content"]
    assert "Summary of turns 1-1:\nThey asked about alpha and beta" in task
    assert "x" * 3000 not in task and "Turn 2. The user asked: tell me about beta" in task
    with ScriptedServer([]) as server:  # the summary is saved with the session
        resumed = chat(server, repo, "/status\n/exit\n", "--continue")
    assert "3 turn(s)" in resumed


def test_the_history_is_compacted_before_a_turn_once_it_fills_the_window(
    repo: Path, replies, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEVLOOP_CONTEXT_WINDOW", "4000")  # history past 0.5 x 0.8 x 4000 tokens compacts
    long = "y" * 8000  # ~2,000 tokens of answer
    script = [replies.finish("one " + long), replies.finish("two " + long),
              {"role": "assistant", "content": "Turn one answered at length."}, replies.finish("three")]  # fmt: skip
    with ScriptedServer(script) as server:
        out = chat(server, repo, "first\nsecond\nthird\n/exit\n")
        third = server.requests[3]["messages"][1]["content"]
    assert "compacted turns 1-1 into a summary" in out
    assert "Summary of turns 1-1:\nTurn one answered at length." in third and "one " + long not in third
    assert "two " + long in third  # the last turn stays verbatim


def test_continue_shows_the_history_and_the_context_size(repo: Path, replies) -> None:
    with ScriptedServer([replies.finish("hello back")]) as server:
        chat(server, repo, "", "-p", "hello there")
    with ScriptedServer([]) as server:
        out = chat(server, repo, "/exit\n", "--continue")
        listed = chat(server, repo, "", "--resume", "list")
    assert (
        "> hello there\n  hello back  [finished]" in out
        and "context ≈" in out
        and "tokens used so far" in out
    )
    assert "  1 turn(s)  hello there" in listed


def test_a_server_that_rejects_the_image_gets_a_clear_message(repo: Path, replies) -> None:
    (repo / "shot.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    fault = {"fault": {"status": 400, "message": "image input is not supported"}}
    with ScriptedServer([fault]) as server:
        res = CliRunner().invoke(app, ["chat", "--repo", str(repo), "--model", "openai/m", "--base-url",
                                       server.url, "--sandbox", "none", "-p", "look at @shot.png"])  # fmt: skip
    assert res.exit_code == 1
    assert "the server rejected the attached image" in res.output and "images = false" in res.output


def ask(asker: ChatAsker, command: str) -> bool:
    return asker(ToolCall("execute_bash", {"command": command}), None)


def test_always_for_the_session_or_the_project(tmp_path: Path) -> None:
    repo, store = tmp_path / "repo", tmp_path / "store"
    repo.mkdir()
    answers = iter(["s", "p", "n", "y"])
    questions: list[dict[str, str]] = []

    def choose(_q: str, choices: dict[str, str], detail: str = "") -> str:
        questions.append(choices)
        return next(answers)

    asker = ChatAsker(Approvals(), repo, store, choose, lambda _t: None)
    assert ask(asker, "pytest -q tests")  # s: `pytest` this session
    assert ask(asker, "pytest tests/x.py") and len(questions) == 1  # not asked again
    assert ask(asker, "git status -s")  # p: `git status` for the project
    assert not ask(asker, "echo x > f")  # n; a redirection is offered once only
    assert set(questions[-1]) == {"y", "n"}
    assert ask(asker, "cat a; rm -rf b")  # y, asked: no rule covers a list
    assert load(repo, store).commands == ["git status"]  # the session's rule was not saved
    again = ChatAsker(load(repo, store), repo, store, choose, lambda _t: None)
    assert ask(again, "git status") and not again.standing(ToolCall("execute_bash", {"command": "pytest"}))


def test_never_for_a_tool_refuses_without_asking(tmp_path: Path) -> None:
    save(Approvals(tools={"execute_bash": "never"}), tmp_path, tmp_path / "store")
    asker = ChatAsker(load(tmp_path, tmp_path / "store"), tmp_path, tmp_path / "store",
                      lambda *_: pytest.fail("asked"), lambda _t: None)  # fmt: skip
    assert not ask(asker, "ls")


@pytest.mark.parametrize(
    "command, prefix",
    [("git status -s", "git status"), ("pytest -q", "pytest"), ("git -C x log", "git"), ("ls", "ls"),
     ("echo x > f", None), ("a && b", None)],
)  # fmt: skip
def test_standing_prefix(command: str, prefix: str | None) -> None:
    assert standing_prefix(command) == prefix


def test_an_exit_at_once_waits_for_the_warm_up_imports(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The interpreter shutting down under a thread that is importing aborts the process now and then
    # (SIGSEGV, "exception not rethrown"): /exit returns only once the warm-up is done.
    import time

    import devloop.chat.commands as commands

    finished: list[float] = []

    def slow_warm_up() -> None:
        time.sleep(0.3)
        finished.append(time.monotonic())

    monkeypatch.setattr(commands, "warm_up", slow_warm_up)
    with ScriptedServer([]) as server:
        chat(server, repo, "/exit\n")
        returned = time.monotonic()
    assert finished and finished[0] <= returned
