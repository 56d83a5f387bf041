"""The Starlette app: the queue, one item's page, and the decision endpoint guarded by a session token."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from devloop.eval.rundata import RunData
from devloop.review.decisions import ACTIONS, append_decision, patch_sha256, read_reviews
from devloop.review.items import Item, queue, trajectory_steps
from devloop.review.regrade import regrade

FILTERS = ("run", "repo", "category", "attempt")


def _filtered(items: list[Item], params: dict[str, str]) -> list[Item]:
    for name in FILTERS:
        value = params.get(name)
        if value:
            items = [i for i in items if str(getattr(i, name)) == value]
    return items


def create_app(
    runs: dict[str, RunData], *, reviewer: str = "reviewer", token: str | None = None
) -> Starlette:
    """The review app over `runs` (name -> run). `app.state.token` guards every write."""
    token = token or secrets.token_urlsafe(24)
    env = Environment(
        loader=PackageLoader("devloop.review", "templates"), autoescape=select_autoescape(default=True)
    )

    def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(name).render(token=token, reviewer=reviewer, **context)
        return HTMLResponse(html, status_code=status)

    def decisions() -> dict[tuple[str, str, int], dict[str, Any]]:
        out: dict[tuple[str, str, int], dict[str, Any]] = {}
        for name, run in runs.items():
            for (iid, k), rec in read_reviews(run.root).latest.items():
                out[(name, iid, k)] = rec
        return out

    def problems() -> list[str]:
        return [p for run in runs.values() for p in read_reviews(run.root).problems]

    def find(request: Request) -> Item | None:
        p = request.path_params
        return next((i for i in queue(runs) if i.run == p["run"] and i.instance_id == p["iid"]
                     and str(i.attempt) == p["k"]), None)  # fmt: skip

    async def queue_page(request: Request) -> Response:
        items = _filtered(queue(runs), dict(request.query_params))
        return page("queue.html", items=items, decided=decisions(), problems=problems(),
                    params=dict(request.query_params), filters=FILTERS)  # fmt: skip

    async def items_api(request: Request) -> Response:
        done = decisions()
        items = _filtered(queue(runs), dict(request.query_params))
        return JSONResponse([{"run": i.run, "instance_id": i.instance_id, "attempt": i.attempt, "repo": i.repo,
                              "category": i.category, "kind": i.kind,
                              "decision": done.get((i.run, i.instance_id, i.attempt), {}).get("action")}
                             for i in items])  # fmt: skip

    async def item_page(request: Request) -> Response:
        item = find(request)
        if item is None:
            return page("error.html", message="no such item in the queue", status=404)
        items = queue(runs)
        at = next(n for n, i in enumerate(items) if i.key == item.key)
        return page("item.html", item=item, steps=trajectory_steps(runs[item.run], item),
                    decision=decisions().get((item.run, item.instance_id, item.attempt)),
                    prev=items[at - 1] if at > 0 else None, next=items[at + 1] if at + 1 < len(items) else None,
                    problems=problems())  # fmt: skip

    async def checked_form(request: Request) -> dict[str, str] | None:
        form = await request.form()
        given = request.headers.get("x-review-token") or str(form.get("token") or "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            return None
        return {k: str(v) for k, v in form.items() if isinstance(v, str)}

    async def rerun(request: Request) -> Response:
        fields = await checked_form(request)
        if fields is None:
            return JSONResponse({"error": "missing or wrong review token"}, status_code=403)
        run = runs.get(fields.get("run", ""))
        if run is None:
            return JSONResponse({"error": "no such run"}, status_code=404)
        verdict = await run_in_threadpool(regrade, run, fields.get("instance_id", ""),
                                          fields.get("corrected_patch", ""))  # fmt: skip
        return page("regrade.html", verdict=verdict)

    async def decide(request: Request) -> Response:
        fields = await checked_form(request)
        if fields is None:
            return JSONResponse({"error": "missing or wrong review token"}, status_code=403)
        action = fields.get("action", "")
        item = next((i for i in queue(runs) if i.run == fields.get("run") and i.instance_id == fields.get(
            "instance_id") and str(i.attempt) == fields.get("attempt")), None)  # fmt: skip
        if item is None:
            return JSONResponse(
                {"error": "no such item in the queue (run, instance_id, attempt)"}, status_code=404
            )
        if action not in ACTIONS:
            return JSONResponse({"error": f"action must be one of {', '.join(ACTIONS)}"}, status_code=400)
        corrected = fields.get("corrected_patch", "")
        if action == "correct" and not corrected.strip():
            return JSONResponse({"error": "a correction needs the corrected patch"}, status_code=400)
        record = append_decision(runs[item.run].root, {
            "instance_id": item.instance_id, "attempt": item.attempt, "action": action,
            "reviewer": fields.get("reviewer") or reviewer, "reason": fields.get("reason", ""),
            "model_patch_sha256": patch_sha256(item.unit.patch),
            "corrected_patch": corrected if action == "correct" else None,
        })  # fmt: skip
        if "hx-request" in request.headers:
            return page("decision.html", decision=record)
        return JSONResponse(record)

    static = StaticFiles(packages=[("devloop.review", "static")])
    app = Starlette(routes=[
        Route("/", queue_page), Route("/api/items", items_api),
        Route("/item/{run}/{iid}/{k}", item_page), Route("/api/decision", decide, methods=["POST"]),
        Route("/api/regrade", rerun, methods=["POST"]),
        Mount("/static", static, name="static"),
    ])  # fmt: skip
    app.state.token = token
    return app
