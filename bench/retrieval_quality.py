"""File-level localisation of devloop's BM25 retrieval against SWE-bench gold files.

For each record whose repository has a mirror, the tree at `base_commit` is read with git plumbing from
the mirror (never checked out), ranked for the problem statement alone, and compared with the files the
gold `patch` changes. Prints Acc@k (all gold files in the top k), Recall@k and MRR per repository and
overall, with the share of issues whose text names a gold file.

    python bench/retrieval_quality.py --tasks swe-bench-lite.json --mirrors /work/.mirror [--k 1,3,5,10]

A mirror is `<mirrors>/<owner>+<name>/repo` (a bare git directory), as the `fetch` tool lays them out.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from devloop.retrieval import Index
from devloop.retrieval.index import MAX_FILE_BYTES, TEXT_SUFFIXES
from devloop.workspace import isolated_git_env

_GOLD = re.compile(r"^diff --git a/(\S+) b/", re.M)


def _git(git_dir: Path, *args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(
        ["git", "--git-dir", str(git_dir), "-c", "core.fsmonitor=false", *args],
        input=input, capture_output=True, env=isolated_git_env(), check=True,
    ).stdout  # fmt: skip


def tree_at(git_dir: Path, commit: str) -> dict[str, bytes]:
    """The indexable blobs of `commit` (path -> bytes), read with ls-tree and one cat-file --batch."""
    listing = _git(git_dir, "ls-tree", "-r", "-z", "--full-tree", commit).split(b"\0")
    wanted: list[tuple[str, str]] = []
    for entry in filter(None, listing):
        meta, path = entry.split(b"\t", 1)
        mode, kind, oid = meta.split()
        name = path.decode("utf-8", errors="replace")
        if kind == b"blob" and mode != b"120000" and name.endswith(TEXT_SUFFIXES):
            wanted.append((name, oid.decode()))
    out = _git(git_dir, "cat-file", "--batch", input="".join(f"{o}\n" for _, o in wanted).encode())
    contents: dict[str, bytes] = {}
    pos = 0
    for name, _ in wanted:
        header_end = out.index(b"\n", pos)
        size = int(out[pos:header_end].split()[2])
        data = out[header_end + 1 : header_end + 1 + size]
        pos = header_end + 1 + size + 1
        if size <= MAX_FILE_BYTES:
            contents[name] = data
    return contents


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=Path, required=True)
    ap.add_argument("--mirrors", type=Path, required=True)
    ap.add_argument("--k", default="1,3,5,10")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--repos", default="", help="comma-separated owner/name to keep (default: all mirrored)")
    args = ap.parse_args(argv)
    ks = [int(x) for x in args.k.split(",")]
    records = json.loads(args.tasks.read_text())
    rows: dict[str, list[dict[str, float]]] = defaultdict(list)
    keep = set(filter(None, args.repos.split(",")))
    for rec in records:
        if keep and rec["repo"] not in keep:
            continue
        git_dir = args.mirrors / rec["repo"].replace("/", "+") / "repo"
        if not git_dir.is_dir():
            continue
        gold = set(_GOLD.findall(rec["patch"]))
        ranked = [h.path for h in Index.build(tree_at(git_dir, rec["base_commit"])).search(
            rec["problem_statement"], max(ks))]  # fmt: skip
        first = next((i for i, p in enumerate(ranked) if p in gold), None)
        row = {"mrr": 0.0 if first is None else 1.0 / (first + 1)}
        row["named"] = float(any(Path(g).name in rec["problem_statement"] for g in gold))
        for k in ks:
            row[f"acc@{k}"] = float(gold <= set(ranked[:k]))
            row[f"recall@{k}"] = len(gold & set(ranked[:k])) / len(gold)
        rows[rec["repo"]].append(row)
    if not rows:
        print(f"error: no record's repository has a mirror under {args.mirrors}", file=sys.stderr)
        return 2
    rows["overall"] = [r for rs in list(rows.values()) for r in rs]
    report = {repo: {"n": len(rs), **{key: round(100 * sum(r[key] for r in rs) / len(rs), 1) for key in rs[0]}}
              for repo, rs in rows.items()}  # fmt: skip
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    keys = [key for key in next(iter(report.values())) if key != "n"]
    print(f"{'repository':<24} {'n':>3} " + " ".join(f"{key:>9}" for key in keys))
    for repo, line in report.items():
        print(f"{repo:<24} {line['n']:>3} " + " ".join(f"{line[key]:>9}" for key in keys))
    print("anchors: SWE-bench paper BM25 file recall 29.6% (13k tokens); SweRank Lite BM25 Acc@1 38.7")
    return 0


if __name__ == "__main__":
    sys.exit(main())
