"""Preference data (trl's prompt/chosen/rejected pairs and KTO's prompt/completion/label rows), patch
refiner triples, and the Hugging Face `datasets` copies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from devloop.dataset.hygiene import dedup_key
from devloop.dataset.render import conversation, openai_tools
from devloop.trajectory import last_patch


def _split_prompt(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    head = [m for m in messages[:2] if m["role"] in ("system", "user")]
    return head, messages[len(head) :]


def _patch_prompt(a: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "role": "user",
            "content": f"Write a patch (unified diff) that resolves this issue.\n\n{a['problem']}",
        }
    ]


def preference_pairs(
    found: list[dict[str, Any]], render: str, system: str | None = None
) -> list[dict[str, Any]]:
    """trl-style pairs, conversational (`prompt`, `chosen`, `rejected` as message lists), from two sources:

    - `samples`: per instance with resolved and unresolved graded attempts, each resolved one paired
      with the unresolved one of the same rank, cycling over the shorter list (attempts with the same
      normalised patch count once). The prompt is the system prompt and task; chosen and rejected are
      the rest of each trajectory.
    - `review`: a reviewer's correction of a patch: the problem statement as the prompt, the corrected
      patch chosen and the model's rejected."""
    by_id: dict[str, list[dict[str, Any]]] = {}
    for a in found:
        if a["graded"]:
            by_id.setdefault(a["instance_id"], []).append(a)
    pairs = []
    for instance_id in sorted(by_id):
        seen: set[str] = set()
        unique = []
        for a in by_id[instance_id]:
            if dedup_key(a) not in seen:
                seen.add(dedup_key(a))
                unique.append(a)
        good = [a for a in unique if a["resolved"]]
        bad = [a for a in unique if not a["resolved"]]
        for i in range(max(len(good), len(bad)) if good and bad else 0):
            g, b = good[i % len(good)], bad[i % len(bad)]
            head, chosen = _split_prompt(conversation(g["events"], render, system))
            rejected = _split_prompt(conversation(b["events"], render, system))[1]
            pairs.append(
                {"source": "samples", "instance_id": instance_id, "chosen_from": [g["run"], g["index"]],
                 "rejected_from": [b["run"], b["index"]], "prompt": head, "chosen": chosen, "rejected": rejected}
            )  # fmt: skip
    for a in found:
        review = a.get("review") or {}
        corrected = review.get("corrected_patch")
        if review.get("action") == "correct" and isinstance(corrected, str) and corrected.strip():
            pairs.append(
                {"source": "review", "instance_id": a["instance_id"], "chosen_from": [a["run"], a["index"]],
                 "rejected_from": [a["run"], a["index"]], "prompt": _patch_prompt(a),
                 "chosen": [{"role": "assistant", "content": corrected}],
                 "rejected": [{"role": "assistant", "content": a["patch"]}]}
            )  # fmt: skip
    return pairs


def kto_rows(found: list[dict[str, Any]], render: str, system: str | None = None) -> list[dict[str, Any]]:
    """One trl KTO row per graded attempt: the prompt (system prompt and task), the rest of the
    trajectory as the completion, and `label` true when it resolved the task."""
    rows = []
    for a in found:
        if not a["graded"]:
            continue
        head, rest = _split_prompt(conversation(a["events"], render, system))
        if rest:
            rows.append({"instance_id": a["instance_id"], "run": a["run"], "attempt": a["index"],
                         "prompt": head, "completion": rest, "label": a["resolved"]})  # fmt: skip
    return rows


def _regrade(review: dict[str, Any], corrected: str) -> dict[str, Any] | None:
    """The reviewer's sandboxed re-grade of exactly the corrected patch (devloop review's `regrade`:
    category and the FAIL_TO_PASS / PASS_TO_PASS tests that decided it), or None when there is none."""
    import hashlib

    regrade = review.get("regrade")
    if not isinstance(regrade, dict):
        return None
    if regrade.get("patch_sha256") != hashlib.sha256(corrected.encode("utf-8")).hexdigest():
        return None  # graded another text than the one saved
    keys = ("category", "resolution", "FAIL_TO_PASS", "PASS_TO_PASS")
    return {k: regrade.get(k) for k in keys}


def refiner_triples(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """(patch, refined patch, the tests that decide) triples for a patch refiner:

    - `review`: a failing patch a reviewer corrected (reviews.jsonl `correct`): the model's patch, the
      correction, the task's FAIL_TO_PASS and PASS_TO_PASS tests (with those the patch failed), and the
      reviewer's re-grade of the correction where one was run;
    - `minimize`: a run whose feedback loop minimised its patch (--minimize): the patch as the last step
      left it, the minimised patch the run ended with, and the tests whose statuses it kept."""
    out = []
    for a in found:
        review = a.get("review") or {}
        corrected = review.get("corrected_patch")
        if (
            review.get("action") == "correct"
            and not a["resolved"]
            and isinstance(corrected, str)
            and corrected.strip()
        ):
            out.append({"source": "review", "instance_id": a["instance_id"], "run": a["run"], "attempt": a["index"],
                        "problem": a["problem"], "patch": a["patch"], "refined_patch": corrected,
                        "tests": a["tests"], "failing_tests": a["failing_tests"],
                        "regrade": _regrade(review, corrected)})  # fmt: skip
        mini = (a.get("result") or {}).get("minimize")
        before = last_patch(a["events"])
        if (
            isinstance(mini, dict)
            and isinstance(mini.get("size_after"), int)
            and isinstance(mini.get("size_before"), int)
            and mini["size_after"] < mini["size_before"]
            and before.strip() and a["patch"].strip() and before != a["patch"]
        ):  # fmt: skip
            out.append({"source": "minimize", "instance_id": a["instance_id"], "run": a["run"], "attempt": a["index"],
                        "problem": a["problem"], "patch": before, "refined_patch": a["patch"],
                        "tests": a["tests"], "failing_tests": a["failing_tests"],
                        "verified": bool(mini.get("verified"))})  # fmt: skip
    return out


def _features(fmt: str) -> Any:
    import datasets

    s, i, b = datasets.Value("string"), datasets.Value("int64"), datasets.Value("bool")
    meta = {
        "instance_id": s,
        "run": s,
        "attempt": i,
        "render": s,
        "resolved": b,
        "exit_status": s,
        "tools": s,
    }
    if fmt == "sharegpt":
        return datasets.Features({**meta, "conversations": datasets.List({"from": s, "value": s})})
    call = {"id": s, "type": s, "function": {"name": s, "arguments": s}}
    message = {"role": s, "content": s, "tool_calls": datasets.List(call), "tool_call_id": s, "weight": i}
    return datasets.Features({**meta, "messages": datasets.List(message)})


def save_hf(jsonl_dir: Path, fmt: str = "openai") -> bool:
    """`jsonl_dir/hf`: a `datasets.DatasetDict` (train, valid) saved with save_to_disk; False when the
    `datasets` package is not installed. The columns are typed explicitly: call `arguments` are strings
    (never one struct merged from differing argument objects, with null-filled gaps) and `tools` is the
    JSON text of the tool list, for the same reason (each tool's parameter schema differs)."""
    try:
        import datasets
    except ImportError:
        return False
    features = _features(fmt)
    splits = {}
    for split in ("train", "valid"):
        path = jsonl_dir / f"{split}.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        if not lines:  # datasets writes an empty split with no shard, and load_from_disk then fails
            continue
        rows = []
        for line in lines:
            r = json.loads(line)
            tools = r.get("tools", [])
            r["tools"] = tools if isinstance(tools, str) else json.dumps(tools, ensure_ascii=False)
            rows.append({k: r.get(k) for k in features})
        splits[split] = datasets.Dataset.from_list(rows, features=features)
    datasets.DatasetDict(splits).save_to_disk(str(jsonl_dir / "hf"))
    _stable_fingerprints(jsonl_dir / "hf")
    return True


def _stable_fingerprints(hf: Path) -> None:
    """save_to_disk records a random fingerprint for an in-memory table; replaced by a hash of the data
    file, so a re-run on the same inputs writes the same bytes."""
    import hashlib

    for state in sorted(hf.glob("*/state.json")):
        data = json.loads(state.read_text(encoding="utf-8"))
        digest = hashlib.sha256()
        for f in sorted(state.parent.glob("*.arrow")):
            digest.update(f.read_bytes())
        data["_fingerprint"] = digest.hexdigest()[:16]
        state.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


__all__ = ["kto_rows", "openai_tools", "preference_pairs", "refiner_triples", "save_hf"]
