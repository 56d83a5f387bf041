"""Test runners for the hook: pytest, jest, and any shell command.

Every runner runs its command through the run's own Runtime (the agent's persistent shell), so tests see the
task's environment and sandbox, and a run past its timeout is killed with every process it started (the
runtime kills the command's whole process family, background jobs included). The command runs in a
subshell that first changes to the workspace root, so the agent's shell keeps its own working directory.
Report files go to the runtime's scratch directory, which sandboxes mount at the same path and which is
outside the workspace (so reports never show up in the patch or in checkpoints).
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import shlex
import shutil
import tempfile
from pathlib import Path
from typing import Any

from devloop import safefs
from devloop.feedback.base import FailureDetail, TestReport, TestRunner
from devloop.runtime.base import Runtime

_PLUGIN_SOURCE = Path(__file__).with_name("pytest_plugin.py")
_PLUGIN_MODULE = "devloop_report"
_TAIL_LINES = 40
_PYTHON = '"$(command -v python || command -v python3)"'
# Set by the run's chosen environment (devloop.repoenv): the hook runs that interpreter, whatever the
# agent's shell has done to PATH since.
_PYTHON_VAR = "DEVLOOP_PYTHON"
# The lines of a runner's output that name why it could not run the tests, most telling first.
_CAUSES = (
    re.compile(r"No module named '?pytest'?"),
    re.compile(r"^E?\s*((?:ModuleNotFound|Import|Syntax|Indentation|Attribute|Name|Type)Error\b.*)$", re.M),
    re.compile(r"^(ImportError while loading conftest.*)$", re.M),
    re.compile(r"^(ERROR: .*)$", re.M),
    re.compile(r"^(INTERNALERROR> .*Error.*)$", re.M),
)
# A report larger than this is not parsed (the pytest -rA summary in the log is used instead).
_MAX_REPORT_BYTES = 64 * 1024 * 1024


def _scratch(runtime: Runtime, kind: str) -> Path:
    """The runtime's scratch subdirectory `kind`: "cmd" (only the host writes; commands read, so code
    devloop hands to a test run goes there) or "out" (commands write; the host reads it with safefs)."""
    scratch = getattr(runtime, f"{kind}_dir", None)
    path = Path(scratch) if scratch else Path(tempfile.mkdtemp(prefix="devloop-tests-"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _remove(path: Path) -> None:
    """Remove a report file the sandbox may have replaced by anything (a directory, say)."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def _tail(text: str, lines: int = _TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


class _ShellRunner:
    """What the runners share: the runtime, the workspace root, a scratch dir and a run counter."""

    def __init__(self, runtime: Runtime, root: Path) -> None:
        self.runtime = runtime
        self.root = Path(root)
        self.scratch = _scratch(runtime, "out")
        self.code_dir = _scratch(runtime, "cmd")
        self.runs = 0

    def _shell(self, command: str, timeout: float) -> Any:
        self.runs += 1
        return self.runtime.run(f"( builtin cd -- {shlex.quote(str(self.root))} && {command} )", timeout)


class PytestRunner(_ShellRunner):
    """pytest with the devloop_report plugin: per-test status, message, last frames, failing frame's locals
    and captured output. Falls back to the `-rA` summary when the plugin could not load."""

    def __init__(self, runtime: Runtime, root: Path, *, args: tuple[str, ...] = ()) -> None:
        super().__init__(runtime, root)
        self.args = args
        chosen = (getattr(runtime, "env", None) or {}).get(_PYTHON_VAR)
        self.python = chosen or None

    def command(self, tests: list[str] | None, report_file: Path) -> str:
        argv = [
            "-m",
            "pytest",
            "-p",
            _PLUGIN_MODULE,
            "-p",
            "no:cacheprovider",
            "-q",
            "-rA",
            "--tb=short",
            "--color=no",
            *self.args,
        ]
        if tests:
            argv += ["--", *tests]
        pythonpath = shlex.quote(str(self.code_dir)) + "${PYTHONPATH:+:$PYTHONPATH}"
        python = shlex.quote(self.python) if self.python else _PYTHON
        return (
            f"DEVLOOP_REPORT_FILE={shlex.quote(str(report_file))} PYTHONPATH={pythonpath} "
            f"{python} {shlex.join(argv)}"
        )

    def run(self, tests: list[str] | None, timeout: float) -> TestReport:
        """Run `tests` (node ids or paths relative to the root; None = the whole suite)."""
        plugin = self.code_dir / f"{_PLUGIN_MODULE}.py"
        if not plugin.exists():  # copied on first use, and again if an unsandboxed command removed it
            shutil.copyfile(_PLUGIN_SOURCE, plugin)
        # An unguessable name: the sandbox can write this directory, and must not plant the next report.
        report_file = self.scratch / f"pytest-report-{self.runs + 1}-{secrets.token_hex(6)}.jsonl"
        command = self.command(tests, report_file)
        result = self._shell(command, timeout)
        records = _read_jsonl(report_file)
        _remove(report_file)
        report = TestReport(
            statuses={},
            duration_s=result.duration_s,
            timed_out=result.timed_out,
            log=result.output,
            command=command,
        )
        if records:
            self._fill(report, records)
        else:
            self._fallback(report, result.exit_code)
        if not report.timed_out:
            report.error = self._error(report, records, result.exit_code)
        return report

    def _error(self, report: TestReport, records: list[dict[str, Any]], exit_code: int | None) -> str:
        """One line when pytest did not judge the tests (missing, crashed, a file not collected), else ""."""
        python = self.python or "the shell's python"
        if re.search(r"No module named '?pytest'?", report.log) and not records:
            return f"pytest is not installed for {python}"
        uncollected = [r for r in records if r.get("when") == "collect" and r.get("status") == "ERROR"]
        if uncollected:
            where = str(uncollected[0].get("id") or "<collection>")
            text = str(uncollected[0].get("message", "")).removeprefix("collection failed: ")
            more = f" (and {len(uncollected) - 1} more)" if len(uncollected) > 1 else ""
            return f"tests not collected: {where}{more}: {_cause(text)}"
        if exit_code in (0, 1, 5) and (records or report.statuses) and "<pytest>" not in report.statuses:
            return ""
        if exit_code in (0, 1, 5) and not report.failures:
            return ""
        return f"pytest did not run the tests (exit {exit_code}): {_cause(report.log)}"

    def _fill(self, report: TestReport, records: list[dict[str, Any]]) -> None:
        for rec in records:
            test_id = self._root_relative(str(rec.get("id", "")), str(rec.get("rootdir") or ""))
            status = str(rec.get("status", "ERROR"))
            if report.statuses.get(test_id) in ("FAILED", "ERROR") and status not in ("FAILED", "ERROR"):
                continue  # a teardown line must not hide the call's failure
            report.statuses[test_id] = status
            if status in ("FAILED", "ERROR"):
                report.failures = [f for f in report.failures if f.test_id != test_id]
                report.failures.append(
                    FailureDetail(
                        test_id,
                        str(rec.get("message", "")),
                        [str(f) for f in rec.get("frames", [])],
                        {str(k): str(v) for k, v in (rec.get("locals") or {}).items()},
                        str(rec.get("stdout", "")),
                        str(rec.get("stderr", "")),
                    )
                )

    def _root_relative(self, node_id: str, rootdir: str) -> str:
        if not rootdir:
            return node_id
        try:
            prefix = Path(rootdir).resolve().relative_to(self.root.resolve())
        except ValueError:
            return node_id
        return node_id if str(prefix) == "." else f"{prefix.as_posix()}/{node_id}"

    def _fallback(self, report: TestReport, exit_code: int | None) -> None:
        """No plugin records: read the -rA summary; if even that is empty, the run itself failed."""
        from devloop.parse.log_parsers import parse_pytest

        report.statuses.update(parse_pytest(report.log))
        if report.statuses or report.timed_out or exit_code == 5:  # 5: pytest collected no tests
            return
        report.statuses["<pytest>"] = "ERROR"
        report.failures.append(
            FailureDetail("<pytest>", f"pytest exited {exit_code}:\n{_tail(report.log, 15)}")
        )


class JestRunner(_ShellRunner):
    """`npx jest --json`. Tests are test or source files: jest picks the tests related to them
    (`--findRelatedTests`), so a changed module brings its dependants' tests along."""

    def command(self, tests: list[str] | None, report_file: Path) -> str:
        """jest from the workspace's node_modules, else from PATH (where a run puts the repository's
        node_modules/.bin, which `npx --no-install` would not look at), else whatever npx finds."""
        args = ["--json", f"--outputFile={report_file}", "--ci", "--silent"]
        if tests:
            args += ["--findRelatedTests", *tests]
        local = shlex.quote(str(self.root / "node_modules" / ".bin"))
        return (
            f'PATH={local}:"$PATH"; if command -v jest >/dev/null 2>&1; then jest {shlex.join(args)}; '
            f"else npx --no-install jest {shlex.join(args)}; fi"
        )

    def run(self, tests: list[str] | None, timeout: float) -> TestReport:
        report_file = self.scratch / f"jest-report-{self.runs + 1}-{secrets.token_hex(6)}.json"
        command = self.command(tests, report_file)
        result = self._shell(command, timeout)
        report = TestReport(
            statuses={},
            duration_s=result.duration_s,
            timed_out=result.timed_out,
            log=result.output,
            command=command,
        )
        try:  # the sandbox can write the scratch dir: no link, FIFO or hard link is read (safefs)
            data = json.loads(safefs.read_regular_file(self.scratch, report_file.name, _MAX_REPORT_BYTES))
        except (OSError, ValueError):
            data = None
        _remove(report_file)
        if isinstance(data, dict):
            self._fill(report, data)
        elif not report.timed_out:
            report.statuses["<jest>"] = "ERROR"
            report.failures.append(
                FailureDetail("<jest>", f"jest exited {result.exit_code}:\n{_tail(result.output, 15)}")
            )
            missing = re.search(
                r"could not determine executable|canceled due to missing packages|jest: (command )?not found",
                result.output,
            )
            report.error = (
                "jest is not installed (no node_modules/.bin/jest in the workspace, the repository or PATH)"
                if missing
                else f"jest did not run the tests (exit {result.exit_code}): {_cause(result.output)}"
            )
        if isinstance(data, dict) and not report.error:
            broken = [f for f in report.failures if f.test_id in report.statuses and " > " not in f.test_id]
            if broken:  # a test file that failed to load or run: not a verdict on its tests
                report.error = f"tests not collected: {broken[0].test_id}: {_cause(broken[0].message)}"
        return report

    def _fill(self, report: TestReport, data: dict[str, Any]) -> None:
        states = {
            "passed": "PASSED",
            "failed": "FAILED",
            "pending": "SKIPPED",
            "skipped": "SKIPPED",
            "todo": "SKIPPED",
            "disabled": "SKIPPED",
        }
        for suite in data.get("testResults", []):
            file = self._relative(str(suite.get("name", "")))
            cases = suite.get("assertionResults") or []
            if not cases and suite.get("status") == "failed":  # the file failed to load or run
                report.statuses[file] = "ERROR"
                report.failures.append(FailureDetail(file, _tail(str(suite.get("message", "")), 20)))
            for case in cases:
                test_id = " > ".join([file, *case.get("ancestorTitles", []), str(case.get("title", ""))])
                status = states.get(str(case.get("status")), "SKIPPED")
                report.statuses[test_id] = status
                if status == "FAILED":
                    message, frames = _split_stack("\n".join(case.get("failureMessages") or []))
                    report.failures.append(FailureDetail(test_id, message, frames))

    def _relative(self, path: str) -> str:
        try:
            return Path(path).resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return path


def _split_stack(text: str) -> tuple[str, list[str]]:
    """A jest failure message into its message and its stack frames outside node_modules."""
    message, frames = [], []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("at "):
            if "node_modules" not in stripped and "node:internal" not in stripped:
                frames.append(stripped[3:])
        elif not frames:
            message.append(line)
    return "\n".join(message).strip(), frames[:4][::-1]


class CommandRunner(_ShellRunner):
    """Any shell command: one pseudo-test named after it, passing when it exits 0; the output's tail is
    the failure message."""

    def __init__(self, runtime: Runtime, root: Path, command: str) -> None:
        super().__init__(runtime, root)
        self.cmd = command

    def run(self, tests: list[str] | None, timeout: float) -> TestReport:
        """Run the command (`tests` is ignored: the command decides what it runs)."""
        result = self._shell(self.cmd, timeout)
        ok = result.exit_code == 0 and not result.timed_out
        report = TestReport(
            statuses={self.cmd: "PASSED" if ok else "FAILED"},
            duration_s=result.duration_s,
            timed_out=result.timed_out,
            log=result.output,
            command=self.cmd,
        )
        if result.exit_code in (126, 127) and not result.timed_out:  # the shell's "cannot run" codes
            report.error = f"`{self.cmd}` could not run (exit {result.exit_code}): {_cause(result.output)}"
        if not ok:
            why = "killed at its timeout" if result.timed_out else f"exited {result.exit_code}"
            report.failures.append(
                FailureDetail(self.cmd, f"`{self.cmd}` {why}; output tail:\n{_tail(result.output)}")
            )
        return report


def make_runner(hook: str, runtime: Runtime, root: Path) -> TestRunner:
    """The runner for a --hook value: "pytest", "jest", or any other text as a shell command."""
    kind = hook.strip()
    if kind == "pytest":
        return PytestRunner(runtime, root)
    if kind == "jest":
        return JestRunner(runtime, root)
    return CommandRunner(runtime, root, kind)


def runner_kind(hook: str) -> str:
    """ "pytest", "jest" or "command"."""
    kind = hook.strip()
    return kind if kind in ("pytest", "jest") else "command"


def _cause(text: str) -> str:
    """The one line of a runner's output that best says why it failed (at most 200 characters)."""
    for pattern in _CAUSES:
        found = pattern.findall(text)
        if found:
            line = found[-1] if isinstance(found[-1], str) else found[-1][0]
            return line.strip()[:200]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:  # written by the sandboxed test run: no link, FIFO or hard link is read (safefs)
        text = safefs.read_regular_file(path.parent, path.name, _MAX_REPORT_BYTES).decode("utf-8", "replace")
    except OSError:
        return []
    records = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue  # a line torn by the timeout's kill
        if isinstance(value, dict):
            records.append(value)
    return records
