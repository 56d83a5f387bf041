"""Scaffold overhead: devloop and mini-swe-agent doing the same work, each as a ratio to the floor.

The work, per step: one chat-completion call to a local OpenAI-compatible scripted server over HTTP
(devloop through its own client, plain requests on httpx; mini-swe-agent through a model class that
sends its messages with the `openai` SDK and reads the tool call back), then one bash command whose output is
2-5 KB (cat/grep/nl of text files, every fifth step an in-place edit). Both run commands unsandboxed
in a local shell (devloop `--sandbox none`, mini-swe-agent's LocalEnvironment), each on its own copy of
the same repository, and each ends by submitting the diff. Each agent does what it always does on top
(devloop: workspace isolation, trajectory and per-step patch; mini-swe-agent: trajectory rewritten each
step), which is the overhead being measured.

THE FLOOR, measured in the same run: for each step one HTTP round trip (keep-alive) to the same kind
of server carrying the request body devloop sends at that step (captured from an untimed devloop run,
each message encoded once before the clock starts, the step's body joined from them; the sizes the
server received from the floor and from devloop are checked equal), and the same command in a bare
`bash -c`. mini-swe-agent sends its own, smaller messages (content only, its observation format). Every round runs the floor, devloop and
mini-swe-agent in a rotating order, so machine noise hits all three alike; each round's ratio to that
round's floor is kept and the median and spread (min-max) of the ratios are printed. Each side ends with
an untimed sync (mini-swe-agent rewrites its trajectory at every step: its writeback is not the next
side's), and each length's report with the temp dir's file creation time (bench/diskprobe.py).

THE SERVER runs in a process of its own by default (`--server process`), as a model server does: the
agents' threads then share the interpreter only with each other, not with the server's parsing and
replies. `--server thread` runs it in the benchmark's process instead (how earlier figures were taken);
`--server both` measures both ways in the same run. Either way all three sides get the same kind.

    pip install mini-swe-agent
    python bench/scaffold_overhead.py [--steps 50 300] [--rounds 3] [--rss] [--server process|thread|both]
        [--no-mini] [--sdk-side] [--staging-side] [--preexec-side] [--scan-side]

--sdk-side adds devloop with its requests sent through the `openai` SDK's client (as devloop did before
it sent plain requests on httpx; the SDK's import is done before the clock starts, its client is built
on the first request as it was with the model): the same run, the transport alone changed.

--staging-side adds devloop with its per-step patch staging everything on every step whose scan
differs (Workspace.diff_unstaged off: `git add -A` then `git diff --cached`, as before a step that
only rewrote indexed files got its patch from one `git diff <base>`): the same run, that alone changed.

--preexec-side adds devloop with its shell made a subreaper by a Python preexec_fn in the forked child
(as where the perl launcher is missing or failed; see runtime/subreaper.py): the same run, that alone changed.

--scan-side adds devloop with its tree's inotify watch ignored (its scans' watch_changes off): every step's
patch takes its stat scan, as before the watch vouched for quiet steps: the same run, that alone changed.

--against REV adds two sides, each devloop run in a child process (a warm-up run, then the timed one):
this tree's `src/` and REV's (exported with git archive, first on the child's PYTHONPATH), and prints
their ratio: the same run, the same servers, only the code changed.

--rss adds the peak RSS of one `devloop run` process (scripted model) at each length.

Targets: devloop <= 1.15x the floor at both lengths, and below mini-swe-agent; peak RSS flat (< 100 MB).
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from diskprobe import describe, file_create_ms
from scaffold.mini import mini_once
from scaffold.servers import SENT, SERVER, serve
from scaffold.sides import VARIANTS, devloop_once
from scaffold.work import ISSUE, commands, template_repo, tool_script
from startup import export_src


def _dumps(value: Any) -> bytes:
    # What the openai SDK sends for a JSON body: compact, UTF-8.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def devloop_bodies(template: Path, tmp: Path, cmds: list[str]) -> tuple[list[bytes], list[bytes], list[int]]:
    """What devloop's requests carry, from one untimed run: the final request's messages, each encoded
    once, the body's head and tail around them, and how many messages each request held. The floor sends
    the same bytes (measure() checks its sizes against what the server received from devloop)."""
    from devloop.models.openai_compat import OpenAICompatModel

    seen: dict[str, Any] = {"counts": []}
    real = OpenAICompatModel._attempt

    def spy(self: Any, request: dict[str, Any]) -> Any:
        seen["counts"].append(len(request["messages"]))
        seen["last"] = {**request, "messages": list(request["messages"])}
        return real(self, request)

    base = tmp / "capture"
    shutil.copytree(template, base / "repo", symlinks=True)
    OpenAICompatModel._attempt = spy  # type: ignore[method-assign]
    try:
        devloop_once(base / "repo", base / "out", cmds)
    finally:
        OpenAICompatModel._attempt = real  # type: ignore[method-assign]
        shutil.rmtree(base)
    last = seen["last"]
    pieces = [_dumps(m) for m in last["messages"]]
    head = b'{"model":' + _dumps(last["model"]) + b',"messages":['
    rest = [b"," + _dumps(k) + b":" + _dumps(v) for k, v in last.items() if k not in ("model", "messages")]
    return [head, b"]" + b"".join(rest) + b"}"], pieces, seen["counts"]


def floor_once(repo: Path, out: Path, cmds: list[str], bodies: Any) -> float:
    """One keep-alive HTTP round trip per step carrying devloop's request body for that step (joined
    from messages encoded before the clock starts), then the step's command in a fresh `bash -c`."""
    (head, tail), pieces, counts = bodies
    script = [{"role": "assistant", "content": "ok"}] * (len(cmds) + 1)
    with serve(script) as server:
        port = int(server.url.rsplit(":", 1)[1].split("/")[0])
        conn = http.client.HTTPConnection("127.0.0.1", port)
        t0 = time.perf_counter()
        for i in range(len(cmds) + 1):
            body = head + b",".join(pieces[: counts[i]]) + tail
            conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
            conn.getresponse().read()
            if i < len(cmds):
                subprocess.run(["bash", "-c", cmds[i]], cwd=repo, capture_output=True, check=True)
        elapsed = time.perf_counter() - t0
        conn.close()
    SENT["floor"] = server.request_sizes  # after the with: a server process reports them as it ends
    return elapsed


# devloop run in a process of its own, with whichever `src/` is first on its PYTHONPATH (--against): a
# warm-up run first (imports, lazy modules), then the timed one; the servers are the bench's.
_CHILD = """
import json, sys, time
from pathlib import Path
from devloop.config import load_settings
from devloop.session import run_agent
warm_repo, warm_url, repo, url, out, steps, issue = sys.argv[1:]
for where, base, n in ((warm_repo, warm_url, 5), (repo, url, int(steps))):
    settings = load_settings(model="openai/bench", base_url=base, max_iterations=n + 10, sandbox="none")
    t0 = time.perf_counter()
    result = run_agent(Path(where), issue, settings, Path(out) / str(n))
    elapsed = time.perf_counter() - t0
    assert result.exit_status == "finished" and result.steps == n + 1, result
print(json.dumps(elapsed))
"""


def devloop_child_once(repo: Path, out: Path, cmds: list[str], src: Path | None) -> float:
    """devloop_once in a child process running `src` (None: this tree's), timed inside the child."""
    warm = out.parent / "warm"
    shutil.copytree(repo, warm, symlinks=True)
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = f"{src}{os.pathsep}{env.get('PYTHONPATH', '')}"
    with (
        serve(tool_script(commands(5), "execute_bash", {"finish": {"message": "done"}})) as warm_server,
        serve(tool_script(cmds, "execute_bash", {"finish": {"message": "done"}})) as server,
    ):
        argv = [sys.executable, "-c", _CHILD, str(warm), warm_server.url, str(repo), server.url]
        argv += [str(out), str(len(cmds)), ISSUE]
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the devloop child failed: {done.stderr[-800:]}")
    return float(done.stdout.strip().splitlines()[-1])


def devloop_rss_mb(template: Path, tmp: Path, n: int) -> float:
    """Peak RSS of one `devloop run` process (scripted model, --sandbox none) over `n` steps."""
    base = tmp / f"rss-{n}"
    shutil.copytree(template, base / "repo", symlinks=True)
    script = tool_script(commands(n), "execute_bash", {"finish": {"message": "done"}})
    (base / "s.jsonl").write_text("".join(json.dumps(e) + "\n" for e in script))
    argv = [sys.executable, "-m", "devloop", "run", "--repo", "repo", "--issue", ISSUE, "--sandbox", "none"]
    argv += ["--model", "scripted/s.jsonl", "--output", "out", "--max-iterations", str(n + 10)]
    # Started from a small launcher, not from this process: Linux carries the peak RSS of the address
    # space a process had before its exec into its own maxrss, and this process is large by now.
    launcher = (
        "import resource, subprocess, sys; "
        "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode; "
        "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    launched = subprocess.run(
        [sys.executable, "-c", launcher, *argv], cwd=base, capture_output=True, text=True, check=True
    )
    code, peak_kib = map(int, launched.stdout.split())
    assert code == 0, f"devloop run exited {code}"
    shutil.rmtree(base)
    return peak_kib / 1024  # KiB on Linux


PROBES: dict[int, list[float]] = {}  # per length: the temp dir's file creation time after each round


def measure(
    template: Path,
    tmp: Path,
    n: int,
    rounds: int,
    with_mini: bool = True,
    offset: int = 0,
    variants: tuple[str, ...] = (),
    against: tuple[str, Path] | None = None,
) -> dict[str, list[float]]:
    cmds = commands(n)
    bodies = devloop_bodies(template, tmp, cmds)
    sides: dict[str, Callable[[Path, Path, list[str]], float]] = {
        "floor": lambda repo, out, cmds: floor_once(repo, out, cmds, bodies),
        "devloop": devloop_once,
    }
    sides.update(VARIANTS[v] for v in variants)
    if against is not None:
        rev, src = against
        sides["devloop, child"] = lambda repo, out, cmds: devloop_child_once(repo, out, cmds, None)
        sides[f"devloop at {rev}, child"] = lambda repo, out, cmds: devloop_child_once(repo, out, cmds, src)
    if with_mini:
        sides["mini-swe-agent"] = mini_once
    times: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for r in range(offset, offset + rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            base = tmp / f"{n}-{r}-{name}"
            repo = base / "repo"
            shutil.copytree(template, repo, symlinks=True)
            times[name].append(sides[name](repo, base / "out", cmds))
            shutil.rmtree(base)
            os.sync()  # untimed: what this side left dirty is written back before the next side starts
        assert SENT["floor"] == SENT["devloop"], "the floor did not send devloop's request bodies"
        PROBES.setdefault(n, []).append(file_create_ms())
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[50, 300])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--rss", action="store_true", help="also the peak RSS of a `devloop run` process per length"
    )
    ap.add_argument("--server", choices=["process", "thread", "both"], default="process")
    ap.add_argument("--no-mini", action="store_true", help="leave mini-swe-agent out (the floor and devloop)")
    ap.add_argument("--sdk-side", action="store_true", help="add devloop sending through the openai SDK")
    ap.add_argument("--staging-side", action="store_true", help="add devloop staging on every changed step")
    ap.add_argument("--preexec-side", action="store_true", help="add devloop's shell flagged by a preexec_fn")
    ap.add_argument("--scan-side", action="store_true", help="add devloop scanning the tree on every step")
    ap.add_argument(
        "--against", metavar="REV", help="add this tree and REV's src/ each run in a child process"
    )
    args = ap.parse_args()
    with_mini = not args.no_mini
    if with_mini:
        try:
            import minisweagent  # noqa: F401
        except ImportError:
            raise SystemExit("mini-swe-agent is not installed: pip install mini-swe-agent") from None
    logging.getLogger("minisweagent").setLevel(logging.WARNING)
    os.environ.setdefault("MSWEA_SILENT_STARTUP", "1")
    kinds = ["process", "thread"] if args.server == "both" else [args.server]
    variants = tuple(v for v in VARIANTS if getattr(args, f"{v}_side"))
    with tempfile.TemporaryDirectory() as tmp:
        template = template_repo(Path(tmp) / "template")
        against = None
        if args.against:
            holder = Path(tmp) / "against"
            holder.mkdir()
            against = (args.against, export_src(args.against, holder))
        for kind in kinds:
            SERVER["kind"] = kind
            measure(
                template,
                Path(tmp),
                5,
                1,
                with_mini,
                variants=variants,
                against=against,
            )  # warm imports and caches for every side
        print("model over local HTTP for every side; commands unsandboxed in a local shell for every side")
        for n in args.steps:
            times: dict[str, dict[str, list[float]]] = {kind: {} for kind in kinds}
            for r in range(args.rounds):  # the server kinds alternate round by round
                for kind in kinds[r % len(kinds) :] + kinds[: r % len(kinds)]:
                    SERVER["kind"] = kind
                    for name, ts in measure(
                        template,
                        Path(tmp),
                        n,
                        1,
                        with_mini,
                        offset=r,
                        variants=variants,
                        against=against,
                    ).items():
                        times[kind].setdefault(name, []).extend(ts)
            for kind in kinds:
                report(n, args.rounds, kind, times[kind])
            print(f"  {describe(PROBES[n][-args.rounds * len(kinds) :])}")
        if args.rss:
            rss = {n: devloop_rss_mb(template, Path(tmp), n) for n in args.steps}
            print(
                "peak RSS of one `devloop run` process: "
                + ", ".join(f"{n} steps {m:.0f} MB" for n, m in rss.items())
            )


def report(n: int, rounds: int, kind: str, times: dict[str, list[float]]) -> None:
    floor = times["floor"]
    print(
        f"{n} steps, server in a {kind}, {rounds} rotating rounds; floor median {statistics.median(floor):.3f} s"
    )
    for name in [k for k in times if k != "floor"]:
        ratios = [t / f for t, f in zip(times[name], floor, strict=True)]
        print(
            f"  {name:<24} {statistics.median(times[name]):7.3f} s  "
            f"{statistics.median(ratios):5.2f}x floor  (spread {min(ratios):.2f}-{max(ratios):.2f})"
        )
    for name in [name for name, _ in VARIANTS.values() if name in times]:
        _versus(f"devloop / {name}", times["devloop"], times[name])
    for name in [k for k in times if k.startswith("devloop at ")]:
        _versus(
            f"devloop / {name.removesuffix(', child')} (both in a child)",
            times["devloop, child"],
            times[name],
        )
    if "mini-swe-agent" in times:
        _versus("devloop / mini-swe-agent", times["devloop"], times["mini-swe-agent"])


def _versus(label: str, ours: list[float], theirs: list[float]) -> None:
    """One line: the median and spread of the per-round ratios of two sides' times."""
    vs = [d / m for d, m in zip(ours, theirs, strict=True)]
    print(f"  {label} {statistics.median(vs):.2f}x  (spread {min(vs):.2f}-{max(vs):.2f})")


if __name__ == "__main__":
    main()
