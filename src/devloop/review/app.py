"""The Starlette app: the queue, one item's page, and the write endpoints guarded by a session token.

Everything shown comes from a run, so from a model: it is escaped by Jinja's autoescape, handed to the
page's scripts as JSON data (never as markup), and the Content-Security-Policy lets only the vendored
scripts run, so a `<script>` that slips through anyway does not execute.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from devloop.eval.rundata import RunData
from devloop.review.decisions import (
    ACTIONS,
    REVIEWS,
    ReviewsFileError,
    append_decision,
    patch_sha256,
    read_reviews,
)
from devloop.review.failures import failure_summary
from devloop.review.items import Item, queue, read_test_log, trajectory_steps
from devloop.review.regrade import regrade_record, regrade_with_log

FILTERS = ("run", "repo", "category", "attempt")

# Only the vendored files may run; styles may be inline (CodeMirror and htmx inject theirs).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")  # fmt: skip
HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY")]  # fmt: skip


class SecurityHeaders:
    """Adds the CSP and friends to every response (the token is in the URL: no Referer may carry it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *HEADERS]}
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)


def _filtered(items: list[Item], params: dict[str, str]) -> list[Item]:
    for name in FILTERS:
        value = params.get(name)
        if value:
            items = [i for i in items if str(getattr(i, name)) == value]
    return items


def _options(items: list[Item]) -> dict[str, list[str]]:
    """Each filter's values present in the queue, for the filter menus."""
    out: dict[str, list[str]] = {}
    for name in FILTERS:
        values = {str(getattr(i, name)) for i in items}
        out[name] = sorted(values, key=lambda v: (len(v), v) if name == "attempt" else (0, v))
    return out


def create_app(
    runs: dict[str, RunData],
    *,
    reviewer: str = "reviewer",
    token: str | None = None,
    cache_dir: Path | None = None,
    problems: Iterable[str] = (),
    allowed_hosts: list[str] | None = None,
) -> Starlette:
    """The review app over `runs` (name -> run). `app.state.token` guards every write.

    `cache_dir`: the environment cache re-grading uses (as `devloop eval --cache-dir`). `problems`: lines
    shown on every page (paths given that are not runs). `allowed_hosts`: Host headers served (None: any);
    on 127.0.0.1 this stops a DNS-rebinding page from reading the queue.
    """
    token = token or secrets.token_urlsafe(24)
    startup_problems = list(problems)
    env = Environment(
        loader=PackageLoader("devloop.review", "templates"), autoescape=select_autoescape(default=True)
    )
    # Re-grades of this session, by (item, sha256 of the patch graded): a saved correction carries the
    # verdict of exactly the text saved, taken from here rather than from the browser.
    regrades: dict[tuple[str, str], dict[str, Any]] = {}

    def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(name).render(**{"token": token, "reviewer": reviewer, **context})
        return HTMLResponse(html, status_code=status)

    def has_token(given: str) -> bool:
        return hmac.compare_digest(given.encode(), token.encode())

    def reader(endpoint: Any) -> Any:
        """`endpoint` served only to a request carrying the token (?token= or X-Review-Token): the pages
        show the runs' patches and issues, which another user of the machine has no business reading."""

        async def guarded(request: Request) -> Response:
            given = request.query_params.get("token") or request.headers.get("x-review-token") or ""
            if not has_token(given):
                return page("error.html", 403, token="", problems=[],
                            message="this page needs the session's token: open the URL `devloop review` printed")  # fmt: skip
            return await endpoint(request)

        return guarded

    def error(message: str, status: int) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def decisions() -> tuple[dict[tuple[str, str, int], dict[str, Any]], list[str]]:
        out: dict[tuple[str, str, int], dict[str, Any]] = {}
        bad = list(startup_problems)
        for name, run in runs.items():
            reviews = read_reviews(run.root)
            bad += reviews.problems
            for (iid, k), rec in reviews.latest.items():
                out[(name, iid, k)] = rec
        return out, bad

    def lookup(items: list[Item], run: str | None, iid: str | None, k: str | None) -> Item | None:
        return next((i for i in items if i.run == run and i.instance_id == iid and str(i.attempt) == k), None)

    def stale(item: Item, decision: dict[str, Any] | None) -> bool:
        return bool(decision) and decision.get("model_patch_sha256") != patch_sha256(item.unit.patch)

    # The runs' attempts were read when the app was made, so the queue is made once, not per request.
    items_all = queue(runs)

    async def queue_page(request: Request) -> Response:
        everything = items_all
        params = {k: v for k, v in request.query_params.items() if k in FILTERS}
        done, bad = decisions()
        return page("queue.html", items=_filtered(everything, params), total=len(everything), decided=done,
                    problems=bad, params=params, filters=FILTERS, options=_options(everything),
                    stale=stale)  # fmt: skip

    async def items_api(request: Request) -> Response:
        done, _ = decisions()
        items = _filtered(items_all, dict(request.query_params))
        return JSONResponse([{"run": i.run, "instance_id": i.instance_id, "attempt": i.attempt, "repo": i.repo,
                              "category": i.category, "kind": i.kind,
                              "decision": done.get((i.run, i.instance_id, i.attempt), {}).get("action")}
                             for i in items])  # fmt: skip

    async def item_page(request: Request) -> Response:
        items = items_all
        p = request.path_params
        item = lookup(items, p["run"], p["iid"], p["k"])
        done, bad = decisions()
        if item is None:
            return page("error.html", message=f"{p['run']}/{p['iid']}/{p['k']}: no such item in the queue",
                        status=404, problems=bad)  # fmt: skip
        at = next(n for n, i in enumerate(items) if i.key == item.key)
        decision = done.get((item.run, item.instance_id, item.attempt))
        steps, unreadable = trajectory_steps(runs[item.run], item)
        log, log_problem = read_test_log(runs[item.run], item)
        return page("item.html", item=item, steps=steps, unreadable=unreadable, log=log, log_problem=log_problem,
                    decision=decision,
                    stale=stale(item, decision), prev=items[at - 1] if at > 0 else None,
                    next=items[at + 1] if at + 1 < len(items) else None, problems=bad)  # fmt: skip

    async def checked_form(request: Request) -> dict[str, str] | None:
        form = await request.form()
        given = request.headers.get("x-review-token") or str(form.get("token") or "")
        if not has_token(given):
            return None
        fields = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        # A form sends a textarea's line ends as CRLF; the editor holds LF lines: the patch is its LF text.
        if "corrected_patch" in fields:
            fields["corrected_patch"] = fields["corrected_patch"].replace("\r\n", "\n")
        return fields

    async def rerun(request: Request) -> Response:
        fields = await checked_form(request)
        if fields is None:
            return error("missing or wrong review token", 403)
        item = lookup(items_all, fields.get("run"), fields.get("instance_id"), fields.get("attempt"))
        if item is None:
            return error("no such item in the queue (run, instance_id, attempt)", 404)
        patch = fields.get("corrected_patch", "")
        verdict, text = await run_in_threadpool(
            regrade_with_log, runs[item.run], item.instance_id, patch, cache_dir
        )
        record = regrade_record(verdict, patch)
        regrades[(item.key, record["patch_sha256"])] = record
        log = failure_summary(text) if text is not None else None
        return page("regrade.html", verdict=verdict, record=record, log=log)

    async def decide(request: Request) -> Response:
        fields = await checked_form(request)
        if fields is None:
            return error("missing or wrong review token", 403)
        action = fields.get("action", "")
        item = lookup(items_all, fields.get("run"), fields.get("instance_id"), fields.get("attempt"))
        if item is None:
            return error("no such item in the queue (run, instance_id, attempt)", 404)
        if action not in ACTIONS:
            return error(f"action must be one of {', '.join(ACTIONS)}", 400)
        corrected = fields.get("corrected_patch", "")
        if action == "correct" and not corrected.strip():
            return error("a correction needs the corrected patch", 400)
        try:
            record = append_decision(runs[item.run].root, {
                "instance_id": item.instance_id, "attempt": item.attempt, "action": action,
                "reviewer": fields.get("reviewer") or reviewer, "reason": fields.get("reason", ""),
                "model_patch_sha256": patch_sha256(item.unit.patch),
                "corrected_patch": corrected if action == "correct" else None,
                "regrade": regrades.get((item.key, patch_sha256(corrected))) if action == "correct" else None,
            })  # fmt: skip
        except ReviewsFileError as exc:
            return error(exc.strerror or str(exc), 409)
        except OSError as exc:  # the run directory went away, the disk is full...
            return error(f"{runs[item.run].root / REVIEWS}: not saved ({exc.strerror or exc})", 500)
        if "hx-request" in request.headers:
            return page("decision.html", decision=record)
        if "text/html" in request.headers.get("accept", ""):
            # A browser posting the form itself (before htmx loaded, or with scripts off): back to the item,
            # which shows the recorded decision, rather than a page of JSON.
            back = f"/item/{quote(item.run, safe='')}/{quote(item.instance_id, safe='')}/{item.attempt}"
            return RedirectResponse(
                f"{back}?{urlencode({'token': fields.get('token', '')})}", status_code=303
            )
        return JSONResponse(record)

    static = StaticFiles(packages=[("devloop.review", "static")])
    middleware = [Middleware(SecurityHeaders), Middleware(GZipMiddleware, minimum_size=1024)]
    if allowed_hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    app = Starlette(routes=[
        Route("/", reader(queue_page)), Route("/api/items", reader(items_api)),
        Route("/item/{run}/{iid}/{k}", reader(item_page)), Route("/api/decision", decide, methods=["POST"]),
        Route("/api/regrade", rerun, methods=["POST"]),
        Mount("/static", static, name="static"),
    ], middleware=middleware)  # fmt: skip
    app.state.token = token
    return app
