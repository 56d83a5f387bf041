"""Preference pairs (trl's prompt/chosen/rejected) and the Hugging Face `datasets` copies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def preference_pairs(found: list[dict[str, Any]], render: str) -> list[dict[str, Any]]:
    """Per instance with resolved and unresolved attempts: each resolved one (by index) paired with the
    unresolved one of the same rank, cycling over the shorter list. The prompt is the system prompt and
    task; chosen and rejected are the rest of each trajectory."""
    from devloop.dataset.build import messages

    by_id: dict[str, list[dict[str, Any]]] = {}
    for a in found:
        by_id.setdefault(a["instance_id"], []).append(a)
    pairs = []
    for instance_id in sorted(by_id):
        good = [a for a in by_id[instance_id] if a["resolved"]]
        bad = [a for a in by_id[instance_id] if not a["resolved"]]
        for i in range(max(len(good), len(bad)) if good and bad else 0):
            chosen = messages(good[i % len(good)]["events"], render)
            rejected = messages(bad[i % len(bad)]["events"], render)
            head = [m for m in chosen[:2] if m["role"] in ("system", "user")]
            pairs.append(
                {
                    "instance_id": instance_id,
                    "prompt": head,
                    "chosen": chosen[len(head) :],
                    "rejected": rejected[len(head) :],
                }
            )
    return pairs


def save_hf(jsonl_dir: Path) -> bool:
    """`jsonl_dir/hf`: a `datasets.DatasetDict` (train, valid) saved with save_to_disk; False when the
    `datasets` package is not installed. Rows are stored as one JSON string per row, so differing
    tool-call argument objects are never merged into one null-filled struct."""
    try:
        import datasets
    except ImportError:
        return False
    features = datasets.Features({"instance_id": datasets.Value("string"), "json": datasets.Value("string")})
    splits = {}
    for split in ("train", "valid"):
        path = jsonl_dir / f"{split}.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        if not lines:  # datasets writes an empty split with no shard, and load_from_disk then fails
            continue
        rows = [json.loads(x) for x in lines]
        splits[split] = datasets.Dataset.from_dict(
            {
                "instance_id": [r.get("instance_id", "") for r in rows],
                "json": lines,
            },
            features=features,
        )
    datasets.DatasetDict(splits).save_to_disk(str(jsonl_dir / "hf"))
    return True
