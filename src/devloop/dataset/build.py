"""Build stage1/stage2 SFT sets from eval run directories.

Run directories hold model-written text: it is read as data only (devloop.dataset.collect), never
executed, and no symlink in a run directory is followed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from devloop.dataset.collect import attempts
from devloop.dataset.filters import STAGE1, STAGE2, failure, load_filters
from devloop.dataset.hygiene import EvalSet, task_ids
from devloop.formats.registry import get_format
from devloop.types import ToolCall

__all__ = ["STAGE1", "STAGE2", "build", "load_filters", "messages", "repo_of", "split_of", "task_ids"]


def _calls(step: dict[str, Any]) -> list[ToolCall]:
    calls = []
    for raw in step.get("calls") or []:
        if isinstance(raw, dict) and isinstance(raw.get("name"), str):
            args = raw.get("arguments") if isinstance(raw.get("arguments"), dict) else {}
            calls.append(ToolCall(name=raw["name"], arguments=args, id=str(raw.get("id") or "")))
    return calls


def messages(events: list[dict[str, Any]], render: str = "native") -> list[dict[str, Any]]:
    """OpenAI chat messages of a trajectory; calls rendered by the format's own render_call."""
    fmt = get_format(render)
    out: list[dict[str, Any]] = []
    start = next((e for e in events if e.get("type") == "start"), {})
    if isinstance(start.get("system"), str):
        out.append({"role": "system", "content": start["system"]})
    if isinstance(start.get("task"), str):
        out.append({"role": "user", "content": start["task"]})
    for step in (e for e in events if e.get("type") == "step"):
        calls = _calls(step)
        obs = [o for o in step.get("observations") or [] if isinstance(o, dict)]
        if fmt.native:
            tool_calls = [fmt.render_call(c, i) for i, c in enumerate(calls)]
            out.append({"role": "assistant", "content": "", "tool_calls": tool_calls})
            for tc, o in zip(tool_calls, obs, strict=False):
                out.append(
                    {"role": "tool", "tool_call_id": tc.get("id", ""), "content": str(o.get("text", ""))}
                )
        else:
            out.append({"role": "assistant", "content": "\n".join(str(fmt.render_call(c)) for c in calls)})
            text = "\n".join(str(o.get("text", "")) for o in obs)
            out.append({"role": "user", "content": text})
    return out


def repo_of(instance_id: str) -> str:
    """SWE-bench ids are `owner__repo-NUMBER`: the repository is what precedes the last `-`."""
    head, sep, tail = instance_id.rpartition("-")
    return head if sep and tail.isdigit() else instance_id


def split_of(key: str, seed: int, valid_fraction: float) -> str:
    """A seeded hash of the key, so one repository (or instance) is never in both splits."""
    h = int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "valid" if h < valid_fraction else "train"


def build(
    runs: list[Path],
    out: Path,
    *,
    seed: int = 0,
    valid_fraction: float = 0.1,
    renders: tuple[str, ...] = ("native",),
    split_by: str = "repo",
    filters: dict[str, dict[str, Any]] | None = None,
    exclude: EvalSet | set[str] | None = None,
) -> dict[str, Any]:
    """Write out/stage1, out/stage2 (train/valid.jsonl), filter_report.json and report.md; the report.

    `exclude`: an evaluation set (ids and problem statements, see hygiene), or bare instance ids."""
    evalset = EvalSet(ids=set(exclude)) if isinstance(exclude, set) else exclude
    found = sorted((a for r in runs for a in attempts(r)), key=lambda a: (a["instance_id"], a["index"]))
    report: dict[str, Any] = {"attempts": len(found), "stages": {}}
    for stage, rules in (filters or load_filters(None)).items():
        dropped: dict[str, int] = {}
        passed: dict[str, list[dict[str, Any]]] = {}
        for a in found:
            why = "decontaminated" if evalset and evalset.contains(a) else failure(a, rules)
            if why:
                dropped[why] = dropped.get(why, 0) + 1
            else:
                passed.setdefault(a["instance_id"], []).append(a)
        rows: dict[str, list[str]] = {"train": [], "valid": []}
        per_repo: dict[str, int] = {}
        for instance_id in sorted(passed):
            ranked = sorted(passed[instance_id], key=lambda a: a["steps"])  # stable: run order next
            if "per_instance" in rules and len(ranked) > int(rules["per_instance"]):
                extra = len(ranked) - int(rules["per_instance"])
                dropped["per_instance"] = dropped.get("per_instance", 0) + extra
                ranked = ranked[: int(rules["per_instance"])]
            key = repo_of(instance_id) if split_by == "repo" else instance_id
            per_repo[repo_of(instance_id)] = per_repo.get(repo_of(instance_id), 0) + len(ranked)
            for a in ranked:
                for render in renders:
                    row = {
                        "instance_id": instance_id,
                        "attempt": a["index"],
                        "render": render,
                        "messages": messages(a["events"], render),
                    }
                    rows[split_of(key, seed, valid_fraction)].append(json.dumps(row, sort_keys=True))
        (out / stage).mkdir(parents=True, exist_ok=True)
        for split, lines in rows.items():
            (out / stage / f"{split}.jsonl").write_text("".join(x + "\n" for x in lines), encoding="utf-8")
        report["stages"][stage] = {
            "rules": rules,
            "kept": {k: len(v) for k, v in rows.items()},
            "dropped": dict(sorted(dropped.items())),
            "per_repo": dict(sorted(per_repo.items())),
        }
    from devloop.dataset.extra import preference_pairs, save_hf

    pairs = preference_pairs(found, renders[0])
    (out / "preferences").mkdir(parents=True, exist_ok=True)
    (out / "preferences" / "pairs.jsonl").write_text(
        "".join(json.dumps(p, sort_keys=True) + "\n" for p in pairs), encoding="utf-8"
    )
    report["preferences"] = len(pairs)
    report["hf_copies"] = all([save_hf(out / "stage1"), save_hf(out / "stage2")])
    (out / "filter_report.json").write_text(
        json.dumps(report, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    (out / "report.md").write_text(report_md(report), encoding="utf-8")
    return report


def cell(value: object) -> str:
    """`value` as one markdown table cell: `|` escaped, line breaks folded, so no cell text can add a
    column or a row."""
    return " ".join(str(value).replace("\\", "\\\\").replace("|", "\\|").split())


def report_md(report: dict[str, Any]) -> str:
    lines = ["# devloop dataset", "", f"Attempts read: {report['attempts']}", ""]
    lines += ["| stage | train | valid |", "|---|---:|---:|"]
    for stage, s in report["stages"].items():
        lines.append(f"| {cell(stage)} | {s['kept']['train']} | {s['kept']['valid']} |")
    lines += ["", "## Dropped, by the first rule failed", "", "| stage | rule | attempts |", "|---|---|---:|"]
    for stage, s in report["stages"].items():
        lines += [f"| {cell(stage)} | {cell(why)} | {n} |" for why, n in s["dropped"].items()]
    lines += [
        "",
        "## Attempts kept per repository",
        "",
        "| stage | repository | attempts |",
        "|---|---|---:|",
    ]
    for stage, s in report["stages"].items():
        lines += [f"| {cell(stage)} | {cell(r)} | {n} |" for r, n in s["per_repo"].items()]
    lines += ["", "## Rules", "", "| stage | rule | value |", "|---|---|---|"]
    for stage, s in report["stages"].items():
        lines += [f"| {cell(stage)} | {cell(k)} | {cell(v)} |" for k, v in sorted(s["rules"].items())]
    return "\n".join(lines) + "\n"
