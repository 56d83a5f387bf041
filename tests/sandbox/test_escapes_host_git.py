"""devloop's own git against a hostile workspace `.git`: the model writes config keys that run commands
(fsmonitor, hooks, filters, textconv, an external diff, include.path, pager, ssh, credential and gpg
helpers), points `core.worktree` at a host dir, turns `.git` (or `sub/.git`) into a gitfile or a link to the
user's repository, or swaps `.git` while a step's diff runs. Then the bookkeeping that reads the workspace
runs: each step's patch, checkpoints, rollback, restoring a file, `--minimize`, `--apply`.

Every hostile command is the payload `.evil.sh`: it touches a marker in the host's /tmp (only a host
process can: the sandbox's /tmp is its own) and records its environment where the sandbox may write
(the workspace, or `$GIT_DIR`), so a payload that ran at all, or saw devloop's OPENAI_API_KEY, is caught.
The user's repository (status, index, refs, config, hooks, objects) must come out unchanged."""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import shlex
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devloop.feedback.checkpoints import Checkpoints
from devloop.runtime.bwrap import BwrapRuntime, probe_bwrap
from devloop.runtime.limits import MIB, Limits
from devloop.workspace import Workspace, WorkspaceError, git

pytestmark = [
    pytest.mark.bwrap,
    pytest.mark.skipif(probe_bwrap() is not None, reason=f"bubblewrap is not usable here: {probe_bwrap()}"),
]

LIMITS = Limits(max_processes=256, max_output_bytes=8 * MIB, max_file_bytes=64 * MIB)
EVIL = (
    '#!/bin/sh\ntouch {marks}/pwned-"$1"\n'
    'env > "$(dirname "$0")/.leak-$1" 2>/dev/null || env > "$GIT_DIR/leak-$1"\nexec cat\n'
)
TEST = "import os\n\n\ndef test_ok():\n    assert not os.path.exists('broken')\n"
HOOKS = (
    "post-checkout",
    "post-index-change",
    "reference-transaction",
    "pre-commit",
    "post-commit",
    "pre-auto-gc",
)


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    """devloop's own API key, which no model command may ever see."""
    value = f"sk-{secrets.token_hex(12)}"
    monkeypatch.setenv("OPENAI_API_KEY", value)
    return value


@pytest.fixture
def user_repo(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """The user's repository, where the sandbox can see it (read-only) when this machine allows."""
    try:
        parent = request.getfixturevalue("visible_dir")
    except pytest.skip.Exception:
        parent = tmp_path
    repo = parent / "user-repo"
    (repo / "sub").mkdir(parents=True)
    (repo / "a.txt").write_text("a\n")
    (repo / "sub" / "b.txt").write_text("b\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "start")
    (repo / "sub" / "b.txt").write_text("b, uncommitted\n")  # the user's own work in progress
    return repo


def repo_state(repo: Path) -> dict[str, Any]:
    """What a hostile git could change in the user's repository."""
    dot = repo / ".git"
    files = {
        str(p.relative_to(dot)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(dot.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }
    return {
        "status": git(repo, "status", "--porcelain", "--untracked-files=all"),
        "files": files,
        "refs": git(repo, "for-each-ref"),
        "head": git(repo, "rev-parse", "HEAD"),
        "tree": {
            str(p.relative_to(repo)): p.read_bytes()
            for p in repo.rglob("*")
            if p.is_file() and dot not in p.parents
        },
    }


@pytest.fixture
def attached(user_repo: Path, tmp_path: Path) -> Iterator[tuple[Workspace, BwrapRuntime]]:
    """A run's workspace with its runtime attached (bookkeeping git runs in the sandbox), and the payload."""
    ws = Workspace.create(user_repo)
    rt = BwrapRuntime(ws.root, limits=LIMITS, ro_binds=ws.read_only_paths)
    ws.attach(rt)
    (ws.root / ".evil.sh").write_text(EVIL.format(marks=tmp_path))
    (ws.root / ".evil.sh").chmod(0o755)
    try:
        yield ws, rt
    finally:
        rt.close()
        ws.cleanup()


def ran(ws: Workspace, tmp_path: Path) -> list[str]:
    """Payloads that ran, anywhere: host markers, and environments recorded in the workspace or git dir."""
    return sorted(
        [p.name for p in tmp_path.glob("pwned-*")]
        + [p.name for p in ws.root.glob(".leak-*")]
        + [p.name for p in ws.gitdir.glob("leak-*")]
    )


def exercise(ws: Workspace, rt: BwrapRuntime) -> str:
    """Every bookkeeping path that reads the workspace: diff, checkpoint, rollback, restore one file."""
    rt.run("echo changed >> a.txt; echo new > new.txt", 5)
    patch = ws.diff()
    checkpoints = Checkpoints(ws)
    cp = checkpoints.save(1, patch)
    rt.run("echo later >> a.txt; rm -f new.txt; echo gone > other.txt", 5)
    checkpoints.restore(cp)
    rt.run("echo again >> a.txt", 5)
    checkpoints.restore_file("a.txt")
    return patch


def evil(ws: Workspace, name: str) -> str:
    return shlex.quote(f"{ws.root}/.evil.sh {name}")


VARIANTS = {
    "core.fsmonitor": "git config core.fsmonitor {e:fsmonitor}",
    "core.hooksPath + .git/hooks": "mkdir -p .git/hooks my; for h in {hooks}; do printf '#!/bin/sh\\nexec %s hook-%s\\n'"
    " {root}/.evil.sh $h > my/$h; cp my/$h .git/hooks/; done; chmod +x my/* .git/hooks/*;"
    " git config core.hooksPath $PWD/my",
    "filter clean/smudge (.gitattributes)": "git config filter.x.clean {e:clean}; git config filter.x.smudge {e:smudge};"
    " git config filter.x.required true; echo '* filter=x' > .gitattributes",
    "filter process (.git/info/attributes)": "git config filter.y.process {e:process}; mkdir -p .git/info;"
    " echo '* filter=y' > .git/info/attributes",
    "diff textconv + diff.external": "git config diff.z.textconv {e:textconv}; git config diff.z.command {e:command};"
    " git config diff.external {e:external}; echo '* diff=z' > .gitattributes",
    "include.path / includeIf to a model file": "printf '[core]\\n\\tfsmonitor = %s\\n' {e:included} > inc.cfg;"
    " git config include.path $PWD/inc.cfg;"
    " git config includeIf.gitdir:/.path $PWD/inc.cfg",
    "pager, ssh, credential, editor, gpg helpers": "for k in core.pager pager.diff core.sshCommand credential.helper"
    " core.editor sequence.editor core.askPass gpg.program; do"
    " git config $k {e:helper}; done; git config commit.gpgSign true",
    "core.worktree at a host dir": "git config core.worktree {user}; git config core.bare false",
    ".git as a gitfile to the user's repo": "rm -rf .git; echo 'gitdir: {user}/.git' > .git",
    ".git as a link to the user's repo": "rm -rf .git; ln -s {user}/.git .git",
    "sub/.git gitfile, embedded repo, .gitmodules": "echo 'gitdir: {user}/.git' > sub/.git; mkdir emb; cd emb;"
    " git init -q; echo x > f; git add f; git -c user.name=m"
    " -c user.email=m@x commit -qm x; for h in {hooks}; do"
    " ln -s {root}/.evil.sh .git/hooks/$h; done;"
    " git config core.fsmonitor {e:embedded}; cd ..;"
    ' printf \'[submodule "emb"]\\n\\tpath = emb\\n\\turl ='
    " ext::sh -c %s\\n' {e:url} > .gitmodules",
}


class _Evil:
    """`{e:NAME}` in a variant: the quoted payload command for NAME."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def __format__(self, spec: str) -> str:
        return evil(self.ws, spec)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_hostile_git_config_runs_nothing(
    variant: str,
    attached: tuple[Workspace, BwrapRuntime],
    user_repo: Path,
    tmp_path: Path,
    secret: str,
    escape,
) -> None:
    ws, rt = attached
    before = repo_state(user_repo)
    command = VARIANTS[variant].format(e=_Evil(ws), hooks=" ".join(HOOKS), root=ws.root, user=user_repo)
    planted = rt.run(command, 10)
    assert planted.exit_code == 0, planted.output  # the attack is really in place
    own_index = ws.root / ".git" / "index"  # the model's own index, where a misled `git add` would stage
    index_before = own_index.read_bytes() if own_index.is_file() and not own_index.is_symlink() else None
    with escape(f"bookkeeping git vs {variant}", by="private git dir, fixed -c config, in the sandbox"):
        patch = exercise(ws, rt)
        if index_before is not None:
            assert own_index.read_bytes() == index_before
        assert "+changed" in patch and "new.txt" in patch and secret not in patch
        assert (ws.root / "a.txt").read_text() == "a\nchanged\n"  # the restores worked
        assert ran(ws, tmp_path) == []
        assert repo_state(user_repo) == before
        assert not [line for line in patch.splitlines() if line.startswith("diff --git") and "/.git/" in line]


def test_gitmodules_cannot_break_the_patch(
    attached: tuple[Workspace, BwrapRuntime], tmp_path: Path, escape
) -> None:
    ws, rt = attached
    rt.run(
        f"mkdir emb && cd emb && git init -q && echo x > f && git add f && git -c user.name=m -c user.email=m@x"
        f" commit -qm x && cd .. && printf '[submodule \"emb\"]\\n\\tpath = emb\\n\\turl = x\\n\\tupdate = !%s\\n'"
        f" {evil(ws, 'update')} > .gitmodules && echo changed >> a.txt",
        5,
    )
    with escape(".gitmodules with update = !cmd (blank the patch)", by="diff --ignore-submodules=all"):
        assert "+changed" in ws.diff()
        assert ran(ws, tmp_path) == []


def test_git_swapped_during_the_diff(
    attached: tuple[Workspace, BwrapRuntime], user_repo: Path, tmp_path: Path, secret: str, escape
) -> None:
    ws, rt = attached
    rt.run(f"git config core.fsmonitor {evil(ws, 'swap')}; echo changed >> a.txt", 5)
    checkpoints = Checkpoints(ws)
    cp = checkpoints.save(1, ws.diff())
    late = f"written-after-the-copy-{tmp_path.name}"  # in the user's tree only: a diff that shows it followed a link
    (user_repo / "sub" / "late.txt").write_text(f"{late}\n")
    before = repo_state(user_repo)
    # .git flips between the model's dir, a link to the user's .git and a gitfile; sub/ between a dir and a
    # link to the user's sub/, while the host keeps diffing and restoring.
    swap = (
        f"end=$((SECONDS+2)); while [ $SECONDS -lt $end ]; do mv .git .g; ln -s {user_repo}/.git .git; rm .git;"
        f" echo 'gitdir: {user_repo}/.git' > .git; rm .git; mv .g .git; mv sub .s; ln -s {user_repo}/sub sub;"
        f" rm sub; mv .s sub; done"
    )
    swapper = threading.Thread(target=rt.run, args=(swap, 10))
    swapper.start()
    patches = []
    with escape(".git and sub/ swapped for links during diffs", by="private git dir; sandboxed git"):
        try:
            while swapper.is_alive():
                patches.append(ws.diff())
                with contextlib.suppress(
                    WorkspaceError
                ):  # a path that is a link right now may fail: never followed
                    checkpoints.restore_file("sub/b.txt", cp)
        finally:
            swapper.join()
        assert len(patches) >= 3 and all("+changed" in p for p in patches)
        # Followed would mean: files from inside a .git (the user's, through a link), or the user's late file.
        # A link the model made is a blob holding its target's name (mode 120000), and `.g/` is the model's
        # own .git caught mid-rename: both are the model's own text.
        followed = [
            sec
            for p in patches
            for sec in p.split("diff --git ")
            if "mode 120000" not in sec
            and (sec.startswith("a/.git/") or "/.git/" in sec.split("\n")[0] or late in sec or secret in sec)
        ]
        assert not followed
        assert ran(ws, tmp_path) == [] and repo_state(user_repo) == before


def call(i: int, name: str, **args: Any) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": f"c{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
        ],
    }


def plant_everything(marks: Path, user: Path) -> str:
    """The model's first command: the payload, every hostile key it can set in its `.git`, Python startup
    hooks for a host Python to pick up, and a real change."""
    payload = shlex.quote(EVIL.format(marks=marks))
    py = f"import os\ntry:\n    open({str(marks / 'pwned-python')!r}, 'w')\nexcept OSError:\n    pass\n"
    py += "open(os.path.join(os.getcwd(), '.leak-python-%d' % os.getpid()), 'w').write(repr(dict(os.environ)))\n"
    return (
        f'printf %s {payload} > .evil.sh && chmod +x .evil.sh && E="$PWD/.evil.sh" &&'
        ' git config core.fsmonitor "$E fsmonitor" && git config filter.x.clean "$E clean" &&'
        ' git config filter.x.smudge "$E smudge" && git config diff.z.textconv "$E textconv" &&'
        ' git config core.hooksPath "$PWD/.git/hooks" && mkdir -p .git/hooks .git/info &&'
        f" for h in {' '.join(HOOKS)}; do printf '#!/bin/sh\\nexec %s hook\\n' \"$E\" > .git/hooks/$h; done &&"
        " chmod +x .git/hooks/* && echo '* filter=x diff=z' > .git/info/attributes &&"
        f" for f in sitecustomize.py usercustomize.py conftest.py; do printf %s {shlex.quote(py)} > $f;"
        " done && echo 'import sitecustomize' > evil.pth && mkdir -p .devloop && cp evil.pth .devloop/ &&"
        f" mkdir -p sub && ln -sfn {user}/.git sub/.git && printf %s {shlex.quote(TEST)} > test_ok.py &&"
        " echo changed >> a.txt"
    )


def host_spawns(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], str]]:
    """Every process devloop starts on the host (argv, cwd) once the workspace is attached (the model has begun)."""
    spawned: list[tuple[list[str], str]] = []
    armed: list[bool] = []
    real_popen, real_attach = subprocess.Popen, Workspace.attach

    class Recording(real_popen):  # type: ignore[misc, valid-type]
        def __init__(self, args: Any, *rest: Any, **kw: Any) -> None:
            if armed:
                argv = [args] if isinstance(args, str | bytes | Path) else args
                spawned.append(([str(a) for a in argv], str(kw.get("cwd") or Path.cwd())))
            super().__init__(args, *rest, **kw)

    def attach(ws: Workspace, executor: Any) -> None:
        real_attach(ws, executor)
        armed.append(True)

    monkeypatch.setattr(subprocess, "Popen", Recording)
    monkeypatch.setattr(Workspace, "attach", attach)
    return spawned


def unconfined(spawned: list[tuple[list[str], str]], holder: Path) -> list[list[str]]:
    """The host spawns that are not a bwrap sandbox and run git, a Python or a shell, or touch the workspace."""
    return [
        argv
        for argv, cwd in spawned
        if Path(argv[0]).name != "bwrap"
        and (
            Path(argv[0]).name.startswith(("git", "python", "sh", "bash"))
            or str(holder) in " ".join([*argv, cwd])
        )
    ]


def test_hostile_run_end_to_end(
    user_repo: Path, tmp_path: Path, secret: str, escape, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devloop.config import load_settings
    from devloop.models.scripted_server import ScriptedServer
    from devloop.session import run_agent

    before = repo_state(user_repo)
    spawned = host_spawns(monkeypatch)
    script = [
        call(0, "execute_bash", command=plant_everything(tmp_path, user_repo)),
        call(1, "execute_bash", command="touch broken; echo more >> a.txt"),  # red: rolled back
        call(2, "execute_bash", command=f"rm -rf .git && echo 'gitdir: {user_repo}/.git' > .git"),
        call(3, "finish", message="done"),
    ]
    with ScriptedServer(script) as server:  # pytest runs the model's conftest.py: in the sandbox only
        settings = load_settings(
            model="openai/test", base_url=server.url, hook="pytest", rollback_threshold=1, keep_workspace=True
        )
        result = run_agent(
            user_repo, "hostile", settings, tmp_path / "out", env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
        )
    kept = Path(result.workspace or "")
    try:
        with escape(
            "devloop run: hostile .git, python startup hooks, rollback",
            by="all host-side git/python in bwrap",
        ):
            assert result.exit_status == "finished", result.reason
            assert result.extra.get("rollbacks") == 1 and "b/broken" not in result.patch
            assert "+changed" in result.patch and "a.txt" in result.patch
            assert not list(tmp_path.glob("pwned-*"))
            outputs = [p.read_text(errors="replace") for p in (tmp_path / "out").iterdir() if p.is_file()]
            leaks = [p.read_text(errors="replace") for p in kept.parent.rglob("*leak-*")]
            assert [text for text in leaks if "sandbox" in text]  # the conftest payload ran, sandboxed...
            assert not [text for text in outputs + leaks if secret in text]  # ...and saw no key
            assert spawned and not unconfined(spawned, kept.parent), spawned
            assert repo_state(user_repo) == before
    finally:
        subprocess.run(["rm", "-rf", str(kept.parent)], check=False)


def test_apply_end_to_end_with_a_hostile_git(user_repo: Path, tmp_path: Path, secret: str, escape) -> None:
    from typer.testing import CliRunner

    from devloop.cli import _register, app
    from devloop.models.scripted_server import ScriptedServer

    if not any(command.name == "run" for command in app.registered_commands):
        _register()

    victim = tmp_path / "victim.txt"
    victim.write_text("the host's file\n")
    before = repo_state(user_repo)
    script = [
        call(0, "execute_bash", command=plant_everything(tmp_path, user_repo)),
        call(
            1,
            "execute_bash",
            command=f"ln -s {victim} victim-link && rm -rf .git && echo 'gitdir: {user_repo}/.git' > .git",
        ),
        call(2, "finish", message="done"),
    ]
    with ScriptedServer(script) as server:
        done = CliRunner().invoke(
            app,
            [
                "run",
                "--repo",
                str(user_repo),
                "--issue",
                "x",
                "--model",
                "openai/test",
                "--base-url",
                server.url,
                "--output",
                str(tmp_path / "out"),
                "--apply",
            ],
        )
    after = repo_state(user_repo)
    with escape("devloop run --apply with a hostile .git", by="patch from the private git dir; git apply"):
        assert done.exit_code == 0, done.output
        assert "applied" in done.output
        assert (user_repo / "a.txt").read_text() == "a\nchanged\n"
        assert after["files"] == before["files"] and after["refs"] == before["refs"]  # .git untouched
        assert (user_repo / "victim-link").is_symlink() and victim.read_text() == "the host's file\n"
        assert (
            not list(tmp_path.glob("pwned-*")) and secret not in (tmp_path / "out" / "patch.diff").read_text()
        )
        assert not (user_repo / "sub" / ".git").exists()  # a link into .git is never part of a patch


def test_minimize_runs_no_filter_with_devloops_environment(
    user_repo: Path, tmp_path: Path, secret: str, escape
) -> None:
    from devloop.config import load_settings
    from devloop.models.scripted_server import ScriptedServer
    from devloop.session import run_agent

    (user_repo / "a.txt").write_text("x = 1\n\n\n\n\n\ny = 2\n")
    git(user_repo, "commit", "-q", "-am", "two hunks apart")
    payload = shlex.quote(EVIL.format(marks=tmp_path))
    # .devloop as a file: the scratch copy cannot be made, so minimize works in the workspace itself.
    plant = (
        f'printf %s {payload} > .evil.sh && chmod +x .evil.sh && git config filter.x.clean "$PWD/.evil.sh'
        " clean\" && echo '* filter=x' > .git/info/attributes && touch .devloop &&"
        " sed -i 's/x = 1/x = 10/; s/y = 2/y = 20/' a.txt"
    )
    with ScriptedServer(
        [call(0, "execute_bash", command=plant), call(1, "finish", message="done")]
    ) as server:
        settings = load_settings(model="openai/test", base_url=server.url, hook="true", minimize=True)
        result = run_agent(user_repo, "x", settings, tmp_path / "out")
    with escape("--minimize: filter in the workspace .git/config", by="git apply with no repository config"):
        assert result.exit_status == "finished" and "x = 10" in result.patch
        assert not list(tmp_path.glob("pwned-*"))
        assert secret not in result.patch, (
            "the model's filter ran with OPENAI_API_KEY; it is now in patch.diff"
        )
        assert ".leak-clean" not in result.patch, "the model's filter ran (in the sandbox)"
