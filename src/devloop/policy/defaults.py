"""The built-in rules every policy ends with (project and user files come first and can override them)."""

from __future__ import annotations

from devloop.policy.rules import Rule

# Every pattern here is searched in commands of up to MAX_COMMAND_CHARS, so each is written to run in
# linear time: no part scans far from many start positions (`(?:\S+/)?` after each `;` of a million did),
# and possessive quantifiers (`*+`, `++`) where backtracking could only fail again.
_DOWNLOAD = r"\b(?:curl|wget|fetch)\b"
_SHELLS = r"(?:sudo\s+)?(?:ba|z|da|k|fi)?sh\b|\bpython[0-9.]*\b|\bperl\b|\bruby\b|\bnode\b"
# A command-start position: text start, a newline or a separator, optionally then `env`/`command`/`exec`.
_START = r"(?:^|[\n;&|(`{]|\$\()[ \t]*+(?:(?:env|command|exec|nohup|time)[ \t]++)*+"
# An optional directory before a program name (`/usr/bin/git`); its parts stop at separators.
_DIR = r"(?:[^\s;&|()`{}<>/]*+/)*+"

DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(
        action="deny",
        tool="execute_bash",
        pattern=_START + r"(?:sudo|doas|pkexec)\b",
        label="sudo, doas, pkexec",
        reason="running commands as another user (sudo) is not allowed",
    ),
    Rule(
        action="deny",
        tool="execute_bash",
        pattern=_START + _DIR + r"git\b(?:[ \t]++-\S++(?:[ \t]++[^-\s]\S*+)?)*[ \t]++push\b",
        label="git push",
        reason="`git push` is not allowed: changes stay in the workspace, and the run's patch is the output",
    ),
    # From the last download before the pipe: scanning from every `curl` of a long line was quadratic.
    Rule(
        action="deny",
        tool="execute_bash",
        pattern=_DOWNLOAD + r"(?:(?!" + _DOWNLOAD + r")[^\n;])*\|\s*(?:" + _SHELLS + ")",
        label="download piped into a shell (curl ... | sh)",
        reason="piping a download into a shell or interpreter is not allowed; download it, read it, then run it",
    ),
    Rule(
        action="deny",
        tool="execute_bash",
        pattern=r"(?:" + _SHELLS + r")\s+(?:-c\s+)?[\"']?(?:\$\(|`|<\()\s*" + _DOWNLOAD,
        label="shell running a download (bash <(curl ...))",
        reason="running a downloaded script directly is not allowed; download it, read it, then run it",
    ),
    Rule(
        action="deny",
        when="writes-outside-workspace",
        reason="writing outside the workspace is not allowed (only the workspace and /tmp are writable)",
    ),
    Rule(
        action="ask",
        tool="execute_bash",
        mode="interactive",
        pattern=_START
        + r"(?:"
        + _DIR
        + r"(?:pip[0-9.]*|uv\s+pip|python[0-9.]*\s+-m\s+pip|conda|mamba|poetry)\s+"
        r"(?:install|add)|(?:apt|apt-get|yum|dnf|apk|brew|zypper|pacman)\s+(?:install|add|-S)"
        r"|(?:npm|pnpm|yarn)\s+(?:install|add|i)\b|gem\s+install|cargo\s+install|go\s+install)\b",
        label="package installs (pip, uv pip, conda, apt, npm, ...)",
        reason="installing packages changes the environment",
    ),
    # MCP servers are the user's code, run outside the sandbox: each call is a person's decision, unless
    # the user's own policy allows it by a rule that names `mcp` or the tool.
    Rule(
        action="ask",
        tool="mcp",
        label="MCP tools (user-configured servers, outside the sandbox)",
        reason="an MCP tool runs in a server outside the sandbox",
    ),
)
