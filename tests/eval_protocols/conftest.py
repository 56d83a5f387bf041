"""Protocol tests: the harness's tiny calc task repository, and a routed model server.

The routed server answers each chat request from a per-test `route(task, attempt, step, temperature)`,
where `task` is named in the task prompt's issue text (TASK-<name>), `attempt` is the unit index read from
the working copy's path in the prompt (else a count of the task's runs so far) and `step` counts the run's assistant messages. It
records every request body, so tests can assert which temperatures each attempt was sampled at.
"""

from __future__ import annotations

import importlib.util
import json
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

# The harness's fixtures (calc repository, one shared test venv per session) without copying them.
_spec = importlib.util.spec_from_file_location(
    "_harness_conftest", Path(__file__).parents[1] / "eval" / "conftest.py"
)
assert _spec and _spec.loader
_harness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_harness)
env_cache = _harness.env_cache
spec = _harness.spec
env_manager = _harness.env_manager
calc_repo = _harness.calc_repo
calc_patches = _harness.calc_patches
make_task = _harness.make_task
calc_diff = _harness.calc_diff
calc_sources = _harness.calc_sources
CALC = _harness.CALC
tmpdir_of_workdirs = _harness.tmpdir_of_workdirs

Route = Callable[[str, int, int, float], dict[str, Any]]


def call(name: str, **arguments: Any) -> dict[str, Any]:
    """An assistant message with one native tool call."""
    return {"role": "assistant", "content": "",
            "tool_calls": [{"id": "c", "type": "function",
                            "function": {"name": name, "arguments": json.dumps(arguments)}}]}  # fmt: skip


def edit(old: str, new: str, path: str = "calc.py") -> dict[str, Any]:
    return call("str_replace_editor", command="str_replace", path=path, old_str=old, new_str=new)


def create(path: str, text: str) -> dict[str, Any]:
    return call("str_replace_editor", command="create", path=path, file_text=text)


FINISH = call("finish", message="done")
NOOP = call("execute_bash", command="true")
FIX_ADD = edit("return a - b", "return a + b")
FIX_NEG = edit("    return a\n", "    return -a\n")
NEG_TEST = "from calc import neg\n\n\ndef test_neg_own():\n    assert neg(4) == -4\n"
BREAK_MUL = edit("return a * b", "return a * b + 1")

# Looks, for 4 s, for any grading tree staged beside the agent's work dir (<tmp>/devloop-*/grade/tree), and
# writes what it found into the patch (seen.txt): the agent's sandbox must not see it.
LOOK = call(
    "execute_bash",
    command='tmp=$(dirname "$(dirname "$(dirname "$PWD")")"); for i in $(seq 40); do '
    'ls -d "$tmp"/devloop-*/grade/tree/calc.py >> seen.txt 2>/dev/null && break; sleep 0.1; done; '
    "echo looked >> seen.txt",
)

SCRIPTS: dict[str, list[dict[str, Any]]] = {
    "fix": [FIX_ADD, FIX_NEG, FINISH],  # resolves
    "empty": [FINISH],  # finishes with an empty patch
    "half": [FIX_ADD, NOOP, NOOP, NOOP, NOOP],  # a partial patch, cut by max_iterations
    "half_done": [FIX_ADD, FINISH],  # a partial patch, finished
    "half_own_test": [FIX_ADD, create("tests/test_own.py", NEG_TEST), FINISH],  # its own test fails
    "fix_break_mul": [FIX_ADD, FIX_NEG, BREAK_MUL, FINISH],  # fixes the bug, breaks a visible test
    "look_then_fix": [LOOK, FIX_ADD, FIX_NEG, FINISH],  # resolves, its patch saying what it saw
}


def scripted(plan: dict[str, list[str]]) -> Route:
    """A route from {task: [script name of attempt 0, attempt 1, ...]}."""

    def route(task: str, attempt: int, step: int, temperature: float) -> dict[str, Any]:
        if attempt >= len(plan[task]):
            return {"role": "assistant", "content": "[no script for this attempt]"}
        script = SCRIPTS[plan[task][attempt]]
        return script[step] if step < len(script) else NOOP

    return route


class RoutedServer:
    """An OpenAI-compatible chat server on 127.0.0.1 answering from a route; see the module doc."""

    def __init__(self, route: Route):
        self.route = route
        self.requests: list[dict[str, Any]] = []
        self.attempts: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                message = outer.answer(body)
                data = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                                   "choices": [{"index": 0, "message": message, "logprobs": None,
                                                "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
                                   "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}).encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @staticmethod
    def task_of(body: dict[str, Any]) -> str:
        user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        match = re.search(r"TASK-(\w+)", user)
        assert match, "the task prompt should carry the issue text"
        return match.group(1)

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        task = self.task_of(body)
        step = sum(m["role"] == "assistant" for m in body["messages"])
        # The unit's working copy is named devloop-<instance>-<index>-*: the attempt, even across a resume.
        named = re.search(r"devloop-calc__calc-\w+?-(\d+)-", json.dumps(body["messages"][:2]))
        with self._lock:
            self.requests.append(body)
            if step == 0:
                self.attempts[task] += 1
            attempt = int(named.group(1)) if named else self.attempts[task] - 1
        return self.route(task, attempt, step, body.get("temperature", 0.0))

    def temperatures(self, task: str) -> list[float]:
        """The temperature of every request for `task`, in order."""
        return [b.get("temperature") for b in self.requests if self.task_of(b) == task]

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[dict[str, list[str]]], RoutedServer]]:
    """Starts a routed server from {task: [script name per attempt]} (see SCRIPTS)."""
    servers: list[RoutedServer] = []

    def start(plan: dict[str, list[str]]) -> RoutedServer:
        servers.append(RoutedServer(scripted(plan)))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def calc_task(make_task: Callable[..., Any]) -> Callable[[str], Any]:
    """A calc task whose issue text names it (TASK-<name>), so the routed server can tell tasks apart."""
    return lambda name: make_task(
        f"calc__calc-{name}", problem_statement=f"TASK-{name}: add() subtracts, neg() does nothing"
    )
