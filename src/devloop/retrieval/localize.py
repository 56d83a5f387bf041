"""Localisation measured like the literature: for a SWE-bench record, rank the repository's files at
`base_commit` from the problem statement alone and compare with the gold patch.

Gold files are the files the record's `patch` changes (not `test_patch`); gold functions are the
innermost definitions (at `base_commit`) whose line span holds a line the patch removes or inserts
beside. Acc@k: every gold item is in the top k; Recall@k: the share of gold items there; MRR: the
reciprocal rank of the first gold item (0 if none is ranked)."""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from devloop.retrieval import gittree
from devloop.retrieval.definitions import Definition
from devloop.retrieval.index import MAX_FILE_BYTES, Index
from devloop.retrieval.rank import rank_definitions, rank_files
from devloop.retrieval.repomap import module_names
from devloop.tasks.mirrors import mirror_git_dir

if TYPE_CHECKING:
    from devloop.retrieval.store import IndexCache

# SWE-bench paper (BM25 retrieval, 13k-token budget) and SweRank's table on SWE-bench Lite.
ANCHORS = (
    ("SWE-bench paper BM25, average file recall at 13k tokens", "29.6"),
    ("SweRank (Lite) BM25 file Acc@1", "38.7"),
    ("SweRank (Lite) CodeRankEmbed file Acc@1", "52.6"),
    ("SweRank (Lite) LocAgent (agentic) file Acc@1", "77.7"),
)

_DIFF = re.compile(r"^diff --git a/(\S+) b/(\S+)$")
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")


def touched_lines(patch: str) -> dict[str, set[int]]:
    """Per file the patch changes (its old path), the old-side lines it removes, and for insertions the
    old lines on either side of where they go. A new file has an empty set."""
    out: dict[str, set[int]] = {}
    current: set[int] | None = None
    old = 0
    in_hunk = replaced = False
    for line in patch.splitlines():
        m = _DIFF.match(line)
        if m:
            current, in_hunk = out.setdefault(m.group(1), set()), False
            continue
        m = _HUNK.match(line)
        if m and current is not None:
            old, in_hunk, replaced = int(m.group(1)), True, False
            continue
        if current is None or not in_hunk:
            continue
        if line.startswith("-"):
            current.add(old)
            old += 1
            replaced = True
        elif line.startswith("+"):
            if not replaced:  # a pure insertion: it belongs where it goes, between two old lines
                current.update((max(old - 1, 1), old))
        elif line.startswith(" "):
            old += 1
            replaced = False
    return out


def gold_files(patch: str) -> set[str]:
    return set(touched_lines(patch))


def gold_definitions(definitions: list[Definition], lines: set[int]) -> set[str]:
    """The innermost definitions holding one of `lines` (qualified names)."""
    found: set[str] = set()
    for line in lines:
        inner = [d for d in definitions if d.line <= line <= d.end_line]
        if inner:
            found.add(max(inner, key=lambda d: (d.depth, d.line)).name)
    return found


def names_a_file(text: str, path: str) -> bool:
    """Whether an issue's text names `path`: the path (or its tail below the top directory), its dotted
    module, or its file name (not `__init__.py`)."""
    text = text.replace("\\", "/")
    base = path.rsplit("/", 1)[-1]
    tail = path.split("/", 1)[1] if path.count("/") >= 2 else path
    if path in text or tail in text:
        return True
    # A dotted module as a whole name: `flask.app` for src/flask/app.py, not inside `flask.appctx`.
    if any(re.search(rf"(?<![\w.]){re.escape(m)}(?!\w)", text) for m in module_names(path)):
        return True
    return base != "__init__.py" and re.search(rf"(?<![\w.]){re.escape(base)}\b", text) is not None


def measure(ranked: list[str], gold: set[str], ks: Iterable[int], prefix: str) -> dict[str, float]:
    first = next((i for i, p in enumerate(ranked) if p in gold), None)
    out = {f"{prefix}mrr": 0.0 if first is None else 1.0 / (first + 1)}
    for k in ks:
        top = set(ranked[:k])
        out[f"{prefix}acc@{k}"] = float(gold <= top)
        out[f"{prefix}recall@{k}"] = len(gold & top) / len(gold)
    return out


def summarise(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each figure in percent over the rows that have it, with the count `n` (and `n_fn`, the
    rows that have gold functions)."""
    out: dict[str, float] = {"n": len(rows)}
    keys: list[str] = []
    for r in rows:
        keys.extend(k for k in r if k not in keys)
    for key in keys:
        have = [r[key] for r in rows if key in r]
        out[key] = round(100 * sum(have) / len(have), 1) if have else 0.0
    out["n_fn"] = sum(1 for r in rows if "fn_mrr" in r)
    return out


REQUIRED = ("instance_id", "repo", "base_commit", "patch", "problem_statement")


def mirror_of(mirrors: Path, repo: str) -> Path | None:
    """The git directory of `repo` (owner/name) under `mirrors`, in either layout `devloop eval` reads."""
    return mirror_git_dir(mirrors, repo)


@dataclass
class Outcome:
    """One record ranked by each method."""

    instance_id: str
    repo: str
    gold_files: list[str]
    gold_functions: list[str]
    named: bool
    top: dict[str, list[str]] = field(default_factory=dict)  # method -> best files
    top_functions: dict[str, list[str]] = field(default_factory=dict)
    figures: dict[str, dict[str, float]] = field(default_factory=dict)  # method -> measure()
    reused: int = 0
    files: int = 0


def localize_record(
    record: dict[str, str], git_dir: Path, methods: list[str], ks: list[int], cache: IndexCache | None
) -> Outcome:
    """Rank the tree of `record`'s base commit for its problem statement with each method."""
    files = gittree.listing(git_dir, record["base_commit"])
    index = Index.of_listing(
        files, lambda paths: gittree.read_files(git_dir, files, paths, MAX_FILE_BYTES), cache=cache
    )
    touched = touched_lines(record["patch"])
    gold = set(touched)
    gold_fns: set[str] = set()
    for path, lines in touched.items():
        pos = index.position(path)
        if pos is not None:
            gold_fns |= {f"{path}::{n}" for n in gold_definitions(index.files[pos].definitions, lines)}
    issue = record["problem_statement"]
    out = Outcome(
        record["instance_id"], record["repo"], sorted(gold), sorted(gold_fns),
        any(names_a_file(issue, g) for g in gold), reused=index.reused, files=len(index.files),
    )  # fmt: skip
    depth = max(ks)
    defs = index.definitions()
    for method in methods:
        ranked = [index.files[i].path for i, _ in rank_files(index, issue, method)]
        figures = measure(ranked, gold, ks, "")
        out.top[method] = ranked[:depth]
        if gold_fns:
            seen: dict[str, None] = {}
            for n, _ in rank_definitions(index, issue, method):
                i, d = defs[n]
                seen.setdefault(f"{index.files[i].path}::{d.name}")
                if len(seen) >= depth:
                    break
            functions = list(seen)
            figures |= measure(functions, gold_fns, ks, "fn_")
            out.top_functions[method] = functions
        out.figures[method] = figures
    return out


def report(outcomes: list[Outcome], methods: list[str]) -> dict[str, object]:
    """Per method: overall, per repository, and split by whether the issue names a gold file."""
    by_method: dict[str, object] = {}
    for method in methods:
        rows = [(o, o.figures[method]) for o in outcomes]
        repos = sorted({o.repo for o in outcomes})
        by_method[method] = {
            "overall": summarise([f for _, f in rows]),
            "by_repo": {r: summarise([f for o, f in rows if o.repo == r]) for r in repos},
            "named": summarise([f for o, f in rows if o.named]),
            "unnamed": summarise([f for o, f in rows if not o.named]),
        }
    named = sum(o.named for o in outcomes)
    return {
        "n": len(outcomes),
        "named_share": round(100 * named / len(outcomes), 1) if outcomes else 0.0,
        "methods": by_method,
        "anchors": [{"what": w, "value": v} for w, v in ANCHORS],
        "instances": [
            {"instance_id": o.instance_id, "repo": o.repo, "gold_files": o.gold_files,
             "gold_functions": o.gold_functions, "names_gold_file": o.named, "top_files": o.top}
            for o in outcomes
        ],
    }  # fmt: skip


# The agent's own localisation: the files it opened or edited, in the order it first touched them.
_EDITOR = "str_replace_editor"
_SHELLS = ("execute_bash", "bash")
_SHELL_PUNCT = re.compile(r"[;&|<>()`'\"=]+")  # `cat a.py;`, `x=$(cat a.py)`: the path within


def _relative(raw: object, workspace: str) -> str | None:
    """`raw` (a path a model wrote) as a normalised path inside the workspace, or None."""
    if not isinstance(raw, str) or not raw.strip() or "\0" in raw:
        return None
    path = raw.strip()
    if path.startswith("/"):
        root = workspace.rstrip("/") + "/"
        if not workspace or not path.startswith(root):
            return None
        path = path[len(root) :]
    path = posixpath.normpath(path)
    if path in (".", "") or path.startswith("../") or path == ".." or path.startswith("/"):
        return None
    return path


def _patch_files(patch: object) -> list[str]:
    if not isinstance(patch, str):
        return []
    return [m.group(2) for m in map(_DIFF.match, patch.splitlines()) if m]


def touched_files(events: Iterable[object], known: set[str]) -> list[str]:
    """Files of the tree (`known`, or created by the agent) in the order a run's trajectory events first
    touch them: a `str_replace_editor` path, a known path among a shell command's words, then the files
    that step's patch changes. Events are a model's doing, so anything malformed is skipped."""
    workspace = ""
    order: dict[str, None] = {}
    for event in events:
        if not isinstance(event, dict):
            continue
        if event.get("type") == "start" and isinstance(event.get("workspace"), str):
            workspace = event["workspace"]
        calls = event.get("calls") if event.get("type") == "step" else None
        for call in calls if isinstance(calls, list) else []:
            if not isinstance(call, dict) or not isinstance(call.get("arguments"), dict):
                continue
            args = call["arguments"]
            if call.get("name") == _EDITOR:
                path = _relative(args.get("path"), workspace)
                if path is not None and (path in known or args.get("command") == "create"):
                    order.setdefault(path)
            elif call.get("name") in _SHELLS and isinstance(args.get("command"), str):
                try:
                    words = shlex.split(args["command"])
                except ValueError:
                    words = args["command"].split()
                for word in (p for w in words for p in _SHELL_PUNCT.split(w)):
                    path = _relative(word, workspace)
                    if path is not None and path in known:
                        order.setdefault(path)
        if event.get("type") == "step":
            for path in _patch_files(event.get("patch")):
                order.setdefault(path)
    return list(order)


def score_agent(
    outcome: Outcome, touched: list[str], patch: str, definitions: dict[str, list[Definition]], ks: list[int]
) -> None:
    """Add the agent's figures to `outcome` as the method "agent": files ranked by first touch; functions
    the innermost definitions at base_commit its final patch changes, in the order of their files."""
    figures = measure(touched, set(outcome.gold_files), ks, "")
    outcome.top["agent"] = touched[: max(ks)]
    if outcome.gold_functions:
        edited = touched_lines(patch)
        rank = {p: i for i, p in enumerate(touched)}
        functions = [
            f"{path}::{name}"
            for path in sorted(edited, key=lambda p: rank.get(p, len(rank)))
            for name in sorted(gold_definitions(definitions.get(path, []), edited[path]))
        ]
        figures |= measure(functions, set(outcome.gold_functions), ks, "fn_")
        outcome.top_functions["agent"] = functions[: max(ks)]
    outcome.figures["agent"] = figures
