"""CLI start-up cost, as CPU seconds (user + system) of each process beside a bare `python -c pass`.

Measured in rotating rounds in one run: `devloop --version`, `devloop --help`, mini-swe-agent's
`mini --help` (the peer, when installed), a one-step `devloop run` on a scripted model (the demo
repository, one `finish` reply, `--sandbox none`), and `devloop chat` on the same repository: its
wall time to the first prompt under a pty (then `/exit`), and its CPU with stdin closed (start-up,
prompt, EOF, exit). Then the alternatives for the model client, each as
the CPU cost of importing it: the `openai` SDK (what devloop uses), `httpx` and `httpx2` (what a thinner
client would be built on). When `aiohttp` is installed (devloop does not depend on it; mini-swe-agent's
litellm does), the SDK imports it too (~0.15 s): the run and `import openai` are then measured a second
time with it hidden, as in an environment holding only devloop's own dependencies.

    python bench/startup.py [--rounds 5] [--against REV]

With --against REV, the one-step run and chat's first prompt are also measured on the source tree of that
git revision (its `src/` exported to a temporary directory and put first on PYTHONPATH, bytecode compiled
before the rounds, as the current tree's is), in the same rotating rounds.

Targets: `devloop --version` and `devloop --help` < 0.3 s; the one-step run < 1 s of CPU; chat's
first prompt < 0.5 s of wall time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pty
import resource
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devloop.demo import make_demo_repo

DEVLOOP = [sys.executable, "-m", "devloop"]
FINISH = {
    "content": "Done.",
    "tool_calls": [{"function": {"name": "finish", "arguments": {"message": "ok"}}}],
}


def cpu(argv: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one run of `argv`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
        cwd=cwd,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


PROMPT_SEEN = b"/exit to leave"  # the banner's last line; the prompt is drawn after it


def to_prompt(argv: list[str], cwd: Path) -> tuple[float, float]:
    """(CPU seconds of the whole process, wall seconds until its first prompt) of `argv` run on a pty."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    main_fd, sub_fd = pty.openpty()
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=sub_fd, stdout=sub_fd, stderr=sub_fd, cwd=cwd, close_fds=True)
    os.close(sub_fd)
    seen, wall = b"", None
    try:
        while wall is None:
            ready, _, _ = select.select([main_fd], [], [], 30)
            if not ready:
                raise SystemExit(f"no prompt from {' '.join(argv[2:])} in 30 s; it printed {seen[-300:]!r}")
            seen += os.read(main_fd, 65536)
            if PROMPT_SEEN in seen and b">" in seen.split(PROMPT_SEEN, 1)[1]:
                wall = time.perf_counter() - started
        os.write(main_fd, b"/exit\r")
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main_fd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def export_src(rev: str, into: Path) -> Path:
    """The `src/` tree of git revision `rev` of this repository, written under `into`, compiled."""
    top = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(top), "archive", rev, "src"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(into / "src")], check=True)
    return into / "src"


def with_path(argv: list[str], src: Path) -> list[str]:
    """`argv` run with `src` first on PYTHONPATH."""
    return ["env", f"PYTHONPATH={src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", *argv]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--against", metavar="REV", help="also measure the one-step run of this revision")
    args = parser.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # compiling every module on every start is not start-up
    import devloop

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(devloop.__file__).parent)], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_demo_repo(root / "repo")
        (root / "s.jsonl").write_text(json.dumps(FINISH) + "\n")
        one_step = [*DEVLOOP, "run", "--repo", "repo", "--issue", "x", "--model", "scripted/s.jsonl"]
        one_step += ["--sandbox", "none", "--output", "out"]
        chat = [*DEVLOOP, "chat", "--repo", "repo", "--model", "scripted/s.jsonl", "--sandbox", "none"]
        os.environ["DEVLOOP_CHAT_HOME"] = str(root / "chat-home")  # its sessions stay in the temp dir
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "devloop --version": [*DEVLOOP, "--version"],
            "devloop --help": [*DEVLOOP, "--help"],
            "devloop run, 1 step": one_step,
            "devloop chat, stdin closed": chat,
            "devloop chat, to prompt": chat,
        }
        if args.against:
            old = export_src(args.against, root)
            commands[f"devloop run, 1 step, at {args.against}"] = with_path(one_step, old)
            commands[f"devloop chat, to prompt, at {args.against}"] = with_path(chat, old)
        mini = shutil.which("mini", path=str(Path(sys.executable).parent))
        if mini:
            commands["mini --help (peer)"] = [mini, "--help"]
        for module in ("openai", "httpx", "httpx2"):
            commands[f"import {module}"] = [sys.executable, "-c", f"import {module}"]
        if importlib.util.find_spec("aiohttp") is not None:
            hide = "import sys; sys.modules['aiohttp'] = None; "
            argv = repr(["devloop", *one_step[3:]])
            shim = f"{hide}sys.argv = {argv}; from devloop.cli import main; main()"
            commands["devloop run, no aiohttp"] = [sys.executable, "-c", shim]
            commands["import openai, no aiohttp"] = [sys.executable, "-c", f"{hide}import openai"]
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        names = list(commands)
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                shutil.rmtree(root / "out", ignore_errors=True)
                measure = to_prompt if "to prompt" in name else cpu
                samples[name].append(measure(commands[name], cwd=root))
    base = statistics.median(c for c, _ in samples["python -c pass"])
    width = max(27, *map(len, samples))
    print(
        f"{'command':<{width}} {'CPU s':>7} {'wall s':>7} {'x python':>9}   (median of {args.rounds} rotating rounds)"
    )
    for name, runs in samples.items():
        c, w = statistics.median(x for x, _ in runs), statistics.median(x for _, x in runs)
        if "to prompt" in name:  # the target is on the wall time to the prompt
            mark = "  ok" if w < 0.5 else "  over 0.5 s (wall)"
        else:
            target = 1.0 if name.startswith("devloop run") else None if "chat" in name else 0.3
            target = target if name.startswith("devloop") else None
            mark = "" if target is None else ("  ok" if c < target else f"  over {target} s")
        print(f"{name:<{width}} {c:>7.3f} {w:>7.3f} {c / base:>9.1f}{mark}")
    if args.against:
        for label, side, which in (
            ("chat to its first prompt, wall", "devloop chat, to prompt", 1),
            ("one-step run, CPU", "devloop run, 1 step", 0),
        ):
            ratios = [
                a[which] / b[which]
                for a, b in zip(samples[side], samples[f"{side}, at {args.against}"], strict=True)
            ]
            print(
                f"{label}, this tree / {args.against}: {statistics.median(ratios):.2f}x "
                f"(rounds {min(ratios):.2f}-{max(ratios):.2f})"
            )


if __name__ == "__main__":
    main()
