"""Build the data sets of `devloop dataset build` from eval run directories and chat sessions.

Run and session directories hold model-written text: it is read as data only (devloop.dataset.collect),
never executed, and no symlink in them is followed. Every string written passes the secret scrubber.

Per stage: an attempt at an evaluation-set task is dropped (`decontaminated`); every rule of the stage
is judged; of the attempts that pass them all, one per (instance, normalised patch) is kept
(`duplicate`), then `per_instance` (fewest steps first, then run order) and `balance_repos` (no
repository above that many times the median repository's count). Rows are split by a seeded hash of the
repository (or instance), so no repository is in both train and valid. Everything is sorted and the
split seeded, so a re-run on the same inputs writes the same bytes.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from devloop.dataset.collect import sources
from devloop.dataset.filters import STAGE1, STAGE2, judge, load_filters, measures, printable
from devloop.dataset.hygiene import EvalSet, dedup_key, repo_of, scrub_value, split_of, task_ids
from devloop.dataset.render import FORMATS, RENDERS, check_mistral, conversation, row
from devloop.dataset.report import cell, plots, report_md

__all__ = [
    "FORMATS", "RENDERS", "STAGE1", "STAGE2", "build", "cell", "load_filters", "messages", "repo_of",
    "split_of", "task_ids",
]  # fmt: skip

CHARS_PER_TOKEN = 3  # devloop.feedback.tokens' approximation: over-counts common BPE vocabularies


def messages(events: list[dict[str, Any]], render: str = "native") -> list[dict[str, Any]]:
    """OpenAI chat messages of a trajectory (see devloop.dataset.render.conversation)."""
    return conversation(events, render)


def _tokens(msgs: list[dict[str, Any]]) -> int:
    chars = sum(len(str(m.get("content") or "")) for m in msgs)
    chars += sum(len(c["function"]["arguments"]) for m in msgs for c in m.get("tool_calls") or [])
    return math.ceil(chars / CHARS_PER_TOKEN)


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(scrub_value(r), sort_keys=True, ensure_ascii=False) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8")
    return len(rows)


def _balance(
    ranked: dict[str, list[dict[str, Any]]], factor: float
) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """At most `factor` times the median per-repository count from each repository (0: no cap);
    within a repository the instances are taken in turn, so one instance does not fill the quota."""
    by_repo: dict[str, list[str]] = {}
    for iid in sorted(ranked):
        by_repo.setdefault(repo_of(ranked[iid][0]), []).append(iid)
    counts = [sum(len(ranked[i]) for i in ids) for ids in by_repo.values()]
    if not factor or not counts:
        return ranked, 0
    cap = max(1, math.floor(factor * statistics.median(counts)))
    kept: dict[str, list[dict[str, Any]]] = {}
    dropped = 0
    for ids in by_repo.values():
        queue = {i: list(ranked[i]) for i in ids}
        taken = 0
        while any(queue.values()):
            for iid in ids:
                if queue[iid]:
                    a = queue[iid].pop(0)
                    if taken < cap:
                        kept.setdefault(iid, []).append(a)
                        taken += 1
                    else:
                        dropped += 1
    return kept, dropped


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
    fmt: str = "openai",
    system: str | None = None,
) -> dict[str, Any]:
    """Write out/stage1 and out/stage2 (train/valid.jsonl and hf/), out/preferences (pairs, KTO rows),
    out/refiner, out/trajectories.jsonl (the rules each attempt passed and failed), filter_report.json,
    report.md and plots/; the report.

    `exclude`: an evaluation set (see hygiene), or bare instance ids. `system`: the inference system
    prompt, swapped in for each run's (as SWE-smith trains), None to keep what each run's model saw."""
    from devloop.dataset.extra import kto_rows, preference_pairs, refiner_triples, save_hf

    evalset = EvalSet(ids=set(exclude)) if isinstance(exclude, set) else exclude
    found = sorted(
        (a for r in runs for a in sources(r)), key=lambda a: (a["instance_id"], a["run"], a["index"])
    )
    measured = [measures(a, _tokens(conversation(a["events"], "native"))) for a in found]
    contaminated = [evalset.why(a) if evalset else None for a in found]
    records: list[dict[str, Any]] = [
        {"run": a["run"], "instance_id": a["instance_id"], "attempt": a["index"], "resolved": a["resolved"],
         "category": a["category"], "measures": m, "decontaminated": why, "stages": {}}
        for a, m, why in zip(found, measured, contaminated, strict=True)
    ]  # fmt: skip
    report: dict[str, Any] = {"attempts": len(found), "stages": {}, "format": fmt, "renders": list(renders),
                              "system_prompt": "swapped" if system is not None else "as run"}  # fmt: skip
    tokens: dict[str, list[int]] = {}
    invalid: list[str] = []
    for stage, rules in (filters or load_filters(None)).items():
        dropped: dict[str, int] = {}
        rejections: dict[str, int] = {}
        passed: dict[str, list[int]] = {}
        for n, a in enumerate(found):
            ok, failed = judge(a, measured[n], rules)
            rec = records[n]["stages"][stage] = {"passed": ok, "failed": failed, "kept": False}
            for why in failed:
                rejections[why] = rejections.get(why, 0) + 1
            first = "decontaminated" if contaminated[n] else (failed[0] if failed else None)
            if first:
                dropped[first] = dropped.get(first, 0) + 1
                rec["dropped_as"] = first
            else:
                passed.setdefault(a["instance_id"], []).append(n)

        def drop(n: int, why: str, dropped: dict[str, int] = dropped, stage: str = stage) -> None:
            dropped[why] = dropped.get(why, 0) + 1
            records[n]["stages"][stage]["dropped_as"] = why

        ranked: dict[str, list[dict[str, Any]]] = {}
        for iid in sorted(passed):
            order = sorted(passed[iid], key=lambda n: (found[n]["steps"], found[n]["run"], found[n]["index"]))
            seen: set[str] = set()
            unique = []
            for n in order:
                key = dedup_key(found[n])
                if key in seen:
                    drop(n, "duplicate")
                else:
                    seen.add(key)
                    unique.append(n)
            if "per_instance" in rules and len(unique) > int(rules["per_instance"]):
                for n in unique[int(rules["per_instance"]) :]:
                    drop(n, "per_instance")
                unique = unique[: int(rules["per_instance"])]
            ranked[iid] = [{"n": n, **found[n]} for n in unique]
        ranked, _ = _balance(ranked, float(rules.get("balance_repos", 0)))
        kept_n = {a["n"] for v in ranked.values() for a in v}
        for iid in passed:
            for n in passed[iid]:
                if n not in kept_n and "dropped_as" not in records[n]["stages"][stage]:
                    drop(n, "balance_repos")
        rows: dict[str, list[dict[str, Any]]] = {"train": [], "valid": []}
        per_repo: dict[str, int] = {}
        tokens[stage] = []
        for iid in sorted(ranked):
            for a in ranked[iid]:
                records[a["n"]]["stages"][stage]["kept"] = True
                repo = repo_of(a)
                per_repo[repo] = per_repo.get(repo, 0) + 1
                split = split_of(repo if split_by == "repo" else iid, seed, valid_fraction)
                records[a["n"]]["stages"][stage]["split"] = split
                for render in renders:
                    r = row(a, render, fmt, system)
                    why = check_mistral(r) if fmt == "mistral" else None
                    if why:
                        invalid.append(f"{stage} {iid} {a['run']}#{a['index']} {render}: {why}")
                        continue
                    tokens[stage].append(_tokens(r.get("messages") or []) or measured[a["n"]]["tokens"])
                    rows[split].append(r)
        for split, lines in rows.items():
            _jsonl(out / stage / f"{split}.jsonl", lines)
        report["stages"][stage] = {
            "rules": printable(rules),
            "kept": {k: len(v) for k, v in rows.items()},
            "dropped": dict(sorted(dropped.items())),
            "rejections": dict(sorted(rejections.items())),
            "per_repo": dict(sorted(per_repo.items())),
        }
    clean = [a for a, why in zip(found, contaminated, strict=True) if not why]
    outputs = {
        "preferences/pairs.jsonl": _jsonl(
            out / "preferences" / "pairs.jsonl", preference_pairs(clean, renders[0], system)
        ),
        "preferences/kto.jsonl": _jsonl(
            out / "preferences" / "kto.jsonl", kto_rows(clean, renders[0], system)
        ),
        "refiner/triples.jsonl": _jsonl(out / "refiner" / "triples.jsonl", refiner_triples(clean)),
        "trajectories.jsonl": _jsonl(out / "trajectories.jsonl", records),
    }
    report["preferences"] = outputs["preferences/pairs.jsonl"]
    report["outputs"] = outputs
    report["mistral_invalid"] = invalid
    report["hf_copies"] = all([save_hf(out / "stage1", fmt), save_hf(out / "stage2", fmt)])
    # Repository names, rule values and mistral-common's reasons are run data too: scrubbed like the rows.
    report = scrub_value(report)
    report["plots"] = plots(report, tokens, out / "plots")
    (out / "filter_report.json").write_text(
        json.dumps(report, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (out / "report.md").write_text(report_md(report), encoding="utf-8")
    return report
