"""`devloop localize`: file and function localisation of SWE-bench records against their gold patches,
ranked from the problem statement alone at `base_commit` (read from bare mirrors with git plumbing)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from devloop.cli import options as o
from devloop.cli.errors import fail

# Plain BM25 (the literature's baseline), BM25 fused with the repo map, and devloop's default method.
_DEFAULT_METHODS = "bm25,src:bm25+map,default"


def register(app: typer.Typer) -> None:
    """Add the `localize` command to `app`."""
    app.command("localize")(o.with_agent_options(localize))


def _records(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        fail(f"--tasks {path}: {getattr(e, 'strerror', None) or e}")
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            fail(f"--tasks {path}: not JSON (line {e.lineno}: {e.msg})")
        records = [(n + 1, r) for n, r in enumerate(data)]
        where = "record"
    else:
        records = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append((n, json.loads(line)))
                except json.JSONDecodeError as e:
                    fail(f"--tasks {path}: line {n} is not JSON ({e.msg})")
        where = "line"
    from devloop.retrieval.localize import REQUIRED

    out = []
    for n, rec in records:
        if not isinstance(rec, dict):
            fail(f"--tasks {path}: {where} {n} is not an object")
        for key in REQUIRED:
            if not isinstance(rec.get(key), str) or not rec[key]:
                fail(f"--tasks {path}: {where} {n} has no string field {key!r}")
        out.append(rec)
    return out


def localize(
    tasks: Annotated[Path, typer.Option("--tasks", help="SWE-bench records (JSON list or JSONL).")],
    mirrors: Annotated[
        Path,
        typer.Option(
            "--mirrors",
            help="DIR holding each repository (bare or not) as DIR/<owner>__<name> or DIR/<owner>+<name>/repo.",
        ),
    ],
    k: Annotated[str, typer.Option("--k", help="Cut-offs, comma-separated.")] = "1,3,5,10",
    methods: Annotated[
        str,
        typer.Option(
            "--methods",
            help="Rankers to compare, comma-separated; + fuses (bm25, map, defs, emb; src: source files"
            " only; default: the method search uses).",
        ),
    ] = _DEFAULT_METHODS,
    instances: Annotated[
        list[str] | None,
        typer.Option("--instances", help="Only these instance ids (repeat or comma-separate)."),
    ] = None,
    repos: Annotated[str, typer.Option("--repos", help="Only these owner/name, comma-separated.")] = "",
    cache_dir: Annotated[
        Path | None, typer.Option("--cache-dir", help="Index cache \\[default: the user cache dir].")
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Build every index from scratch.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
    runs: Annotated[
        Path | None,
        typer.Option(
            "--runs", help="With --model: a run directory per instance \\[default: ./runs/localize-<time>]."
        ),
    ] = None,
    **agent: Any,  # every agent option (cli/options.py AGENT_OPTIONS); --model adds the agent's own figures
) -> None:
    """Rank each record's files and functions from its issue text; Acc@k, Recall@k, MRR vs the gold patch.
    With --model, the agent also runs on each record's tree and the files it opened or edited are scored."""
    overrides = o.settings_overrides(agent)
    from devloop.retrieval import localize as loc
    from devloop.retrieval.gittree import GitTreeError
    from devloop.retrieval.rank import parse_method
    from devloop.retrieval.store import IndexCache, default_dir

    try:
        ks = sorted({int(x) for x in k.split(",") if x.strip()})
    except ValueError:
        fail(f"--k {k!r}: not comma-separated whole numbers")
    if not ks or ks[0] < 1:
        fail(f"--k {k!r}: cut-offs must be 1 or more")
    chosen = [m.strip() for m in methods.split(",") if m.strip()]
    _enable_rankers(chosen)
    for m in chosen:
        try:
            parse_method(m)
        except ValueError as e:
            fail(f"--methods: {e}")
    if not mirrors.is_dir():
        fail(f"--mirrors {mirrors}: not a directory")
    records = _records(tasks)
    wanted = {i.strip() for group in instances or [] for i in group.split(",") if i.strip()}
    keep = {r.strip() for r in repos.split(",") if r.strip()}
    if wanted:
        unknown = wanted - {r["instance_id"] for r in records}
        if unknown:
            fail(f"--instances: not in {tasks}: {', '.join(sorted(unknown))}")
        records = [r for r in records if r["instance_id"] in wanted]
    if keep:
        records = [r for r in records if r["repo"] in keep]
    settings = None
    if agent.get("model"):  # only an explicit --model runs the agent (not DEVLOOP_MODEL / devloop.toml)
        from devloop.config import ConfigError, load_settings

        try:
            settings = load_settings(**overrides)
        except ConfigError as e:
            fail(str(e))
        runs = runs or _default_runs()
    cache = None if no_cache else IndexCache(cache_dir or default_dir())
    outcomes = []
    skipped: list[str] = []
    mirrored = [(rec, loc.mirror_of(mirrors, rec["repo"])) for rec in records]
    total = sum(git_dir is not None for _, git_dir in mirrored)
    for rec, git_dir in mirrored:
        if git_dir is None:
            skipped.append(rec["instance_id"])
            continue
        try:
            outcome = loc.localize_record(rec, git_dir, chosen, ks, cache)
            if settings is not None and runs is not None:
                _agent_localize(rec, git_dir, mirrors, outcome, settings, runs, ks)
            outcomes.append(outcome)
            # Progress as each record is ranked: a run over a benchmark takes minutes.
            firsts = " ".join(f"{m}={'hit' if outcome.figures[m]['acc@1'] else '-'}" for m in outcome.figures)
            print(f"[{len(outcomes)}/{total}] {rec['instance_id']}: file Acc@1 {firsts}", file=sys.stderr)
        except GitTreeError as e:
            print(f"skipped {rec['instance_id']}: {e}", file=sys.stderr)
            skipped.append(rec["instance_id"])
    if not outcomes:
        fail(f"--mirrors {mirrors}: no record's repository (at its base commit) is mirrored there")
    if settings is not None:
        chosen = [*chosen, "agent"]
    result = loc.report(outcomes, chosen)
    if runs is not None and settings is not None:
        result["runs"] = str(runs)
    result["skipped"] = skipped
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    _print(result, chosen, ks)


def _default_runs() -> Path:
    from devloop.cli.run_dirs import default_output

    return default_output("localize")


def _write_tree(git_dir: Path, commit: str, dest: Path) -> dict[str, bytes]:
    """The regular files of `commit` written beneath `dest` (git plumbing only: no checkout, hook,
    filter or configuration of the mirror runs); returns path -> bytes."""
    from devloop.retrieval import gittree
    from devloop.tasks.safety import path_problem

    files = gittree.listing(git_dir, commit)
    contents = gittree.read_files(git_dir, files, sorted(files))
    for path, data in contents.items():
        if path_problem(path) is not None:  # a tree entry that could escape `dest` is not written
            continue
        target = dest / path
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "xb") as f:  # never through an existing file or link
                f.write(data)
        except OSError:  # a crafted tree (a file where a directory goes): that file is left out
            continue
    return contents


def _agent_localize(
    rec: dict[str, Any], git_dir: Path, mirrors: Path, outcome: Any, settings: Any, runs: Path, ks: list[int]
) -> None:
    """Run the agent (the `devloop run` path, in its sandbox, mirrors hidden) on a fresh copy of the
    record's tree at base_commit and score the files it touched."""
    import shutil
    import tempfile

    from devloop.retrieval import localize as loc
    from devloop.retrieval.definitions import extract
    from devloop.session import run_agent
    from devloop.tasks.safety import component_problem
    from devloop.trajectory import read_trajectory

    name = rec["instance_id"]
    if (problem := component_problem(name)) is not None:
        fail(f"--tasks: instance_id {name!r} as a directory name: {problem}")
    output = runs / name
    if (output / "trajectory.jsonl").exists():
        fail(f"--runs {runs}: already holds a run of {name}; give a new directory")
    holder = Path(tempfile.mkdtemp(prefix="devloop-localize-"))
    try:
        tree = holder / rec["repo"].rsplit("/", 1)[-1]
        tree.mkdir()
        contents = _write_tree(git_dir, rec["base_commit"], tree)
        try:
            result = run_agent(tree, rec["problem_statement"], settings, output, hide=[mirrors.resolve()])
        except ValueError as e:
            fail(str(e))
        print(f"{name}: agent {result.exit_status} after {result.steps} steps", file=sys.stderr)
        try:
            events = list(read_trajectory(output / "trajectory.jsonl"))
        except (OSError, ValueError) as e:
            print(f"{name}: trajectory unreadable ({e}); the agent touched nothing", file=sys.stderr)
            events = []
        touched = loc.touched_files(events, set(contents))
        edited = loc.touched_lines(result.patch)
        definitions = {p: extract(p, contents[p]) for p in edited if p in contents}
        loc.score_agent(outcome, touched, result.patch, definitions, ks)
    finally:
        shutil.rmtree(holder, ignore_errors=True)


def _enable_rankers(methods: list[str]) -> None:
    if any("emb" in m.removeprefix("src:").split("+") for m in methods):
        from devloop.retrieval import embed

        try:
            embed.enable()
        except embed.EmbeddingError as e:
            fail(f"--methods emb: {e}")


def _print(result: dict[str, Any], methods: list[str], ks: list[int]) -> None:
    from devloop.retrieval.rank import DEFAULT

    console = Console(highlight=False)
    console.print(
        f"{result['n']} records; {result['named_share']}% of issues name a gold file"
        + (f"; {len(result['skipped'])} skipped (no mirror or commit)" if result["skipped"] else "")
    )
    cols = [*(f"acc@{k}" for k in ks), f"recall@{ks[-1]}", "mrr", *(f"fn_acc@{k}" for k in ks), "fn_mrr"]
    for method in methods:
        block = result["methods"][method]
        shown = f"default = {DEFAULT}" if method == "default" else method
        table = Table("", "n", *cols, title=f"{escape(shown)} (%; fn_ = functions)")
        rows = [("overall", block["overall"])]
        rows += [("  names gold file", block["named"]), ("  does not", block["unnamed"])]
        rows += [(repo, line) for repo, line in block["by_repo"].items()]
        for label, line in rows:
            table.add_row(escape(label), str(line.get("n", 0)), *(f"{line.get(c, 0.0):.1f}" for c in cols))
        console.print(table)
    console.print("anchors:")
    for anchor in result["anchors"]:
        console.print(f"  {escape(anchor['what'])}: {anchor['value']}")
