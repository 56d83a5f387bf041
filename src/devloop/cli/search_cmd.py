"""`devloop search QUERY`: the files and definitions of a repository that best match a query."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from devloop.cli.errors import fail


def register(app: typer.Typer) -> None:
    """Add the `search` command to `app`."""
    app.command("search")(search)


def search(
    query: Annotated[str, typer.Argument(help="What to look for, in words or identifiers.")],
    repo: Annotated[Path, typer.Option("--repo", help="Repository or directory to search.")] = Path("."),
    k: Annotated[int, typer.Option("-k", min=1, help="How many files and definitions to show.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON on stdout.")] = False,
    cache_dir: Annotated[
        Path | None, typer.Option("--cache-dir", help="Index cache \\[default: the user cache dir].")
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Build the index from scratch.")] = False,
) -> None:
    """Rank the repository's files and definitions (BM25, repo map and best definition, fused).
    The index is cached per tree: a tree searched before loads without parsing, an edited one re-parses
    only its changed files."""
    import sys

    from devloop.retrieval import Index
    from devloop.retrieval.store import IndexCache, default_dir, with_cache
    from devloop.safefs import SafeFSError

    if not repo.is_dir():
        fail(f"--repo {repo}: not a directory")
    cache = None if no_cache else IndexCache(cache_dir or default_dir())
    try:
        index, why = with_cache(lambda c: Index.of_directory(str(repo), cache=c), cache)
    except SafeFSError as e:
        fail(f"--repo {repo}: {e}")
    if why:
        print(f"warning: {why}", file=sys.stderr)
    files = index.search(query, k)
    defs = index.search_definitions(query, k)
    if as_json:
        out = {
            "query": query,
            "files": [{"path": h.path, "score": round(h.score, 4)} for h in files],
            "definitions": [
                {"path": h.path, "line": h.line, "kind": h.kind, "name": h.name,
                 "signature": h.signature, "score": round(h.score, 4)}
                for h in defs
            ],
        }  # fmt: skip
        typer.echo(json.dumps(out, indent=2))
        return
    console = Console(highlight=False)
    if not files and not defs:
        console.print("no matches")
        return
    table = Table("score", "file", title="Files")
    for h in files:
        table.add_row(f"{h.score:.2f}", escape(h.path))
    console.print(table)
    table = Table("score", "location", "definition", title="Definitions")
    table.columns[1].no_wrap = True
    for h in defs:
        table.add_row(f"{h.score:.2f}", escape(f"{h.path}:{h.line}"), escape(h.signature))
    console.print(table)
