"""Build stage1/stage2 SFT sets from eval run directories.

Run directories hold model-written text: it is read as data only, never executed, and no symlink in a
run directory is followed (every entry is checked with lstat before it is opened).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from devloop.formats.registry import get_format
from devloop.types import ToolCall

STAGE1 = {"resolved": True}
STAGE2 = {"resolved": True, "no_format_errors": True, "max_steps": 30}
KNOWN_RULES = {"resolved", "no_format_errors", "max_steps"}


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _events(path: Path) -> list[dict[str, Any]]:
    if not _regular(path):
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict):
            out.append(event)
    return out


def attempts(run: Path) -> list[dict[str, Any]]:
    """One record per graded attempt: instance, index, resolved, steps, patch, trajectory events."""
    found = []
    inst_root = run / "instances"
    if not _dir(inst_root):
        return found
    for inst in sorted(inst_root.iterdir()):
        att_root = inst / "attempts"
        if not _dir(inst) or not _dir(att_root):
            continue
        for att in sorted(att_root.iterdir()):
            unit_path = att / "unit.json"
            if not _dir(att) or not _regular(unit_path):
                continue
            unit = json.loads(unit_path.read_text(encoding="utf-8"))
            verdict = unit.get("verdict") or {}
            found.append(
                {
                    "instance_id": str(unit.get("instance_id", inst.name)),
                    "index": int(unit.get("index", 0)),
                    "resolved": verdict.get("category") == "resolved",
                    "steps": int(unit.get("steps") or 0),
                    "patch": str(unit.get("patch") or ""),
                    "events": _events(att / "agent" / "trajectory.jsonl"),
                }
            )
    return found


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


def _passes(a: dict[str, Any], rules: dict[str, Any]) -> str | None:
    if rules.get("resolved") and not a["resolved"]:
        return "unresolved"
    if rules.get("no_format_errors") and any(e.get("format_error") for e in a["events"]):
        return "format_error"
    if "max_steps" in rules and a["steps"] > int(rules["max_steps"]):
        return "too_many_steps"
    return None


def repo_of(instance_id: str) -> str:
    """SWE-bench ids are `owner__repo-NUMBER`: the repository is what precedes the last `-`."""
    head, sep, tail = instance_id.rpartition("-")
    return head if sep and tail.isdigit() else instance_id


def split_of(key: str, seed: int, valid_fraction: float) -> str:
    """A seeded hash of the key, so one repository (or instance) is never in both splits."""
    h = int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "valid" if h < valid_fraction else "train"


def load_filters(path: Path | None) -> dict[str, dict[str, Any]]:
    """Stage rules: the defaults, with a TOML file's [stage1] / [stage2] tables laid over them."""
    import tomllib

    rules = {"stage1": dict(STAGE1), "stage2": dict(STAGE2)}
    if path is None:
        return rules
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    for stage in rules:
        table = data.get(stage, {})
        if not isinstance(table, dict):
            raise ValueError(f"{path}: [{stage}] must be a table")
        unknown = set(table) - KNOWN_RULES
        if unknown:
            raise ValueError(f"{path}: [{stage}] unknown rule {sorted(unknown)[0]!r}")
        rules[stage].update(table)
    return rules


def task_ids(path: Path) -> set[str]:
    """Instance ids of a tasks file (.json list or .jsonl), to keep out of the training data."""
    text = path.read_text(encoding="utf-8")
    rows = (
        json.loads(text)
        if path.suffix == ".json"
        else [json.loads(x) for x in text.splitlines() if x.strip()]
    )
    return {str(r["instance_id"]) for r in rows if isinstance(r, dict) and "instance_id" in r}


def build(
    runs: list[Path],
    out: Path,
    *,
    seed: int = 0,
    valid_fraction: float = 0.1,
    renders: tuple[str, ...] = ("native",),
    split_by: str = "repo",
    filters: dict[str, dict[str, Any]] | None = None,
    exclude: set[str] | None = None,
) -> dict[str, Any]:
    """Write out/stage1, out/stage2 (train/test.jsonl), filter_report.json and report.md; the report."""
    found = sorted((a for r in runs for a in attempts(r)), key=lambda a: (a["instance_id"], a["index"]))
    report: dict[str, Any] = {"attempts": len(found), "stages": {}}
    for stage, rules in (filters or load_filters(None)).items():
        dropped: dict[str, int] = {}
        rows: dict[str, list[str]] = {"train": [], "valid": []}
        for a in found:
            why = "decontaminated" if exclude and a["instance_id"] in exclude else _passes(a, rules)
            if why:
                dropped[why] = dropped.get(why, 0) + 1
                continue
            key = repo_of(a["instance_id"]) if split_by == "repo" else a["instance_id"]
            for render in renders:
                row = {
                    "instance_id": a["instance_id"],
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
            "dropped": dropped,
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
    lines = ["# devloop dataset", "", f"Attempts read: {report['attempts']}", ""]
    for stage, s in report["stages"].items():
        lines.append(
            f"- {stage}: train {s['kept']['train']}, valid {s['kept']['valid']}, dropped {s['dropped']}"
        )
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return report
