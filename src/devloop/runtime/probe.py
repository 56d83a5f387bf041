"""Choosing a sandbox: `resolve_sandbox("auto")` picks bwrap where it works, else none with a warning."""

from __future__ import annotations

SANDBOX_CHOICES = ("auto", "none", "bwrap", "docker")


# The probes are imported when a sandbox is chosen, not with this module: `--sandbox none` (and every
# command that only reads the choices) need not load the sandbox code (~15 ms at start-up).
def probe_bwrap() -> str | None:
    from devloop.runtime.bwrap_argv import probe_bwrap as probe

    return probe()


def probe_docker() -> str | None:
    from devloop.runtime.docker import probe_docker as probe

    return probe()


def _install_hint() -> str:
    from devloop.runtime.bwrap_argv import INSTALL_HINT

    return INSTALL_HINT


def resolve_sandbox(name: str | None) -> tuple[str, str | None]:
    """The runtime name to use for `--sandbox name`, and a one-line warning to show (or None).

    None / "auto": "bwrap" when a probe sandbox starts, else "none" with a warning saying how to install
    bubblewrap. "none" / "local": "none". "bwrap" / "docker": that runtime; ValueError (one line) when it
    cannot work here, since the user asked for it by name. Probes are cached for the process.
    """
    key = (name or "auto").strip().lower()
    if key == "auto":
        why = probe_bwrap()
        if why is None:
            return "bwrap", None
        return (
            "none",
            f"warning: no sandbox, commands run unconfined on this machine: {why}; to sandbox them, {_install_hint()}",
        )
    if key in ("none", "local"):
        return "none", None
    if key == "bwrap":
        why = probe_bwrap()
        if why is not None:
            raise ValueError(f"--sandbox bwrap: bubblewrap does not work here: {why}; {_install_hint()}")
        return "bwrap", None
    if key == "docker":
        why = probe_docker()
        if why is not None:
            raise ValueError(f"--sandbox docker: {why}")
        return "docker", None
    raise ValueError(f"--sandbox: unknown sandbox {name!r}; choose one of {', '.join(SANDBOX_CHOICES)}")
