"""`devloop review RUN_DIR...`: a local web app where a person judges a run's patches."""

from __future__ import annotations

import ipaddress
import socket
import sys
import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from devloop.cli.errors import fail


def _is_loopback(host: str) -> bool:
    """Whether `host` is an address of this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


def register(app: typer.Typer) -> None:
    app.command("review", no_args_is_help=True)(review_)


def review_(
    runs: Annotated[list[Path], typer.Argument(help="Run directories (from devloop eval or sweep).")],
    host: Annotated[
        str, typer.Option("--host", help="Address to bind; one that is not loopback warns.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port; 0 picks a free one.")] = 0,
    reviewer: Annotated[
        str, typer.Option("--reviewer", help="Name recorded with each decision.")
    ] = "reviewer",
    open_: Annotated[bool, typer.Option("--open", help="Open the URL in a browser.")] = False,
    export_predictions: Annotated[
        Path | None,
        typer.Option(
            "--export-predictions", help="Write accepted/corrected patches as SWE-bench predictions and exit."
        ),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="Environment cache for 'run tests' (as devloop eval's)."),
    ] = None,
    export_triples: Annotated[
        Path | None,
        typer.Option(
            "--export-triples", help="Write (failing, corrected, passing tests) triples JSONL and exit."
        ),
    ] = None,
) -> None:
    """Serve the review queue of RUN_DIR...; decisions go to RUN_DIR/reviews.jsonl."""
    from devloop.review.items import load_runs_lenient

    loaded, problems = load_runs_lenient(runs)
    if not loaded or ((export_predictions or export_triples) and problems):
        fail(problems[0])
    for line in problems:  # served beside the runs that load, and named on every page
        print(f"warning: {line}", file=sys.stderr)
    if export_predictions or export_triples:
        from devloop.review.decisions import read_reviews
        from devloop.review.export import export_predictions as write_preds
        from devloop.review.export import export_triples as write_triples

        for run in loaded.values():  # skipped lines (and an unusable reviews.jsonl) said, not exported
            for line in read_reviews(run.root).problems:
                print(f"warning: {line}", file=sys.stderr)
        if export_predictions:
            print(f"{write_preds(loaded, export_predictions)} predictions -> {export_predictions}")
        if export_triples:
            print(f"{write_triples(loaded, export_triples)} triples -> {export_triples}")
        return
    try:
        import uvicorn

        from devloop.review.app import create_app
    except ImportError as exc:  # the web server is an extra; the exports above need none of it
        fail(f"devloop review serves with the 'review' extra: pip install 'devloop[review]' ({exc})")

    # On loopback, only requests naming a loopback host are served: a DNS-rebinding page cannot read it.
    loopback = _is_loopback(host)
    hosts = sorted({host, f"[{host}]", "127.0.0.1", "localhost", "[::1]"}) if loopback else None
    app = create_app(loaded, reviewer=reviewer, cache_dir=cache_dir, problems=problems, allowed_hosts=hosts)
    if not loopback:
        print(f"warning: serving on {host}, not loopback: anyone who can reach it can read the queue, and "
              "with the URL's token write reviews", file=sys.stderr)  # fmt: skip
    try:
        sock = socket.create_server((host, port))
    except OSError as exc:
        fail(f"--host {host} --port {port}: cannot bind ({exc.strerror})")
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}/?token={app.state.token}"
    print(f"devloop review: {url}", flush=True)
    if open_:
        webbrowser.open(url)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[sock])
