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

from devloop.cli.errors import fail

_DEFAULT_METHODS = "bm25,map,bm25+map"


def register(app: typer.Typer) -> None:
    """Add the `localize` command to `app`."""
    app.command("localize")(localize)


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
        Path, typer.Option("--mirrors", help="Directory of bare mirrors, DIR/<owner>+<name>/repo.")
    ],
    k: Annotated[str, typer.Option("--k", help="Cut-offs, comma-separated.")] = "1,3,5,10",
    methods: Annotated[
        str,
        typer.Option("--methods", help="Rankers to compare, comma-separated; + fuses (bm25, map, emb)."),
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
) -> None:
    """Rank each record's files and functions from its issue text; Acc@k, Recall@k, MRR vs the gold patch."""
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
    cache = None if no_cache else IndexCache(cache_dir or default_dir())
    outcomes = []
    skipped: list[str] = []
    for rec in records:
        git_dir = loc.mirror_of(mirrors, rec["repo"])
        if git_dir is None:
            skipped.append(rec["instance_id"])
            continue
        try:
            outcomes.append(loc.localize_record(rec, git_dir, chosen, ks, cache))
        except GitTreeError as e:
            print(f"skipped {rec['instance_id']}: {e}", file=sys.stderr)
            skipped.append(rec["instance_id"])
    if not outcomes:
        fail(f"--mirrors {mirrors}: no record's repository (at its base commit) is mirrored there")
    result = loc.report(outcomes, chosen)
    result["skipped"] = skipped
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    _print(result, chosen, ks)


def _enable_rankers(methods: list[str]) -> None:
    if any("emb" in m.removeprefix("src:").split("+") for m in methods):
        from devloop.retrieval import embed

        try:
            embed.enable()
        except embed.EmbeddingError as e:
            fail(f"--methods emb: {e}")


def _print(result: dict[str, Any], methods: list[str], ks: list[int]) -> None:
    console = Console(highlight=False)
    console.print(
        f"{result['n']} records; {result['named_share']}% of issues name a gold file"
        + (f"; {len(result['skipped'])} skipped (no mirror or commit)" if result["skipped"] else "")
    )
    cols = [*(f"acc@{k}" for k in ks), f"recall@{ks[-1]}", "mrr", *(f"fn_acc@{k}" for k in ks), "fn_mrr"]
    for method in methods:
        block = result["methods"][method]
        table = Table("", "n", *cols, title=f"{method} (%; fn_ = functions)")
        rows = [("overall", block["overall"])]
        rows += [("  names gold file", block["named"]), ("  does not", block["unnamed"])]
        rows += [(repo, line) for repo, line in block["by_repo"].items()]
        for label, line in rows:
            table.add_row(escape(label), str(line.get("n", 0)), *(f"{line.get(c, 0.0):.1f}" for c in cols))
        console.print(table)
    console.print("anchors:")
    for anchor in result["anchors"]:
        console.print(f"  {escape(anchor['what'])}: {anchor['value']}")
