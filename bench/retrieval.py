"""Index build (cold, warm from the on-disk cache, incremental after one edit) and query latency of
devloop.retrieval on one tree, beside a grep over the same tree, in one run.

    python bench/retrieval.py --mirror /work/.mirror/sympy+sympy/repo [--commit SHA] [--queries N]
    python bench/retrieval.py --dir PATH

Goals for a sympy-sized tree (~1,500 .py files): cold < 10 s, warm < 1 s, a query < 50 ms.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devloop.retrieval import Index, gittree
from devloop.retrieval.index import MAX_FILE_BYTES, blob_id, read_tree, workers
from devloop.retrieval.store import IndexCache

QUERIES = [
    "latex printing of matrices drops the brackets",
    "simplify raises TypeError on a Piecewise with relational",
    "header parsing",
    "lambdify generates wrong code for Mod",
    "the documentation of the integrate function",
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mirror", type=Path, help="a bare git directory")
    ap.add_argument("--commit", default="", help="default: HEAD of the mirror")
    ap.add_argument("--dir", type=Path, help="a directory instead of a mirror")
    ap.add_argument("--queries", type=int, default=20)
    args = ap.parse_args(argv)
    if args.mirror:
        commit = (
            args.commit
            or subprocess.run(
                ["git", "--git-dir", str(args.mirror), "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        files = gittree.listing(args.mirror, commit)
        contents = gittree.read_files(args.mirror, files, sorted(files), MAX_FILE_BYTES)
    elif args.dir:
        contents = read_tree(str(args.dir))
    else:
        print("error: give --mirror or --dir", file=sys.stderr)
        return 2
    py = [p for p in contents if p.endswith(".py")]
    print(
        f"tree: {len(contents)} text files ({len(py)} .py), {sum(map(len, contents.values())) / 1e6:.1f} MB"
    )
    with tempfile.TemporaryDirectory() as tmp:
        # The same cold build parsing in this process only (as before parse workers existed).
        os.environ["DEVLOOP_INDEX_WORKERS"] = "1"
        t = time.perf_counter()
        Index.build(contents, cache=IndexCache(Path(tmp) / "serial"))
        t_serial = time.perf_counter() - t
        del os.environ["DEVLOOP_INDEX_WORKERS"]
        t = time.perf_counter()
        cold = Index.build(contents, cache=IndexCache(Path(tmp)))
        t_cold = time.perf_counter() - t
        t = time.perf_counter()
        warm = Index.build(contents, cache=IndexCache(Path(tmp)))  # a new process would do just this
        t_warm = time.perf_counter() - t
        assert warm.loaded and len(warm.files) == len(cold.files)
        edited = dict(contents)
        victim = py[len(py) // 2]
        edited[victim] = contents[victim] + b"\ndef bench_added_function():\n    pass\n"
        t = time.perf_counter()
        incr = Index.build(edited, cache=IndexCache(Path(tmp)))
        t_incr = time.perf_counter() - t
        assert incr.reused == len(incr.files) - 1
        # What the edit cost before rows were reused: every BM25 matrix and reference table rebuilt.
        t = time.perf_counter()
        Index.assemble(incr.files, incr.tree)
        t_full = time.perf_counter() - t
        t = time.perf_counter()
        Index.assemble(incr.files, incr.tree, base=warm)
        t_rows = time.perf_counter() - t
    t = time.perf_counter()
    for data in contents.values():
        blob_id(data)
    t_hash = time.perf_counter() - t
    queries = (QUERIES * (args.queries // len(QUERIES) + 1))[: args.queries]
    lat = {"bm25": [], "default": []}
    for q in queries:
        for method in lat:
            t = time.perf_counter()
            cold.search(q, 10, method)
            cold.search_definitions(q, 10, method)
            lat[method].append(time.perf_counter() - t)
    t_grep = []
    for q in queries:
        pattern = re.compile("|".join(re.escape(w) for w in q.split() if len(w) > 3).encode(), re.I)
        t = time.perf_counter()
        for data in contents.values():
            pattern.search(data)
        t_grep.append(time.perf_counter() - t)
    # GNU grep (ripgrep is not installed here) listing the files that hold any of the words, over the
    # same files written out as a directory: what a person or an agent would run instead.
    t_gnu: list[float] = []
    with tempfile.TemporaryDirectory() as checkout:
        for path, data in contents.items():
            target = Path(checkout, path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        for q in queries:
            words = [re.escape(w) for w in q.split() if len(w) > 3]
            argv = ["grep", "-rIliE", "|".join(words), checkout]
            t = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, check=False)
            t_gnu.append(time.perf_counter() - t)
    gnu = statistics.median(t_gnu)
    bm25 = statistics.median(lat["bm25"])
    fused = statistics.median(lat["default"])
    grep = statistics.median(t_grep)
    print(
        f"cold build (parse every file, fill the cache): {t_cold:8.2f} s   (goal < 10 s, {workers()} parse workers)"
    )
    print(
        f"  same, parsing in one process:                {t_serial:8.2f} s   one process/workers = {t_serial / t_cold:.2f}x"
    )
    print(
        f"warm build (tree in the cache):                {t_warm:8.2f} s   (goal < 1 s)  cold/warm = {t_cold / t_warm:.0f}x"
    )
    print(
        f"one file edited (re-parse one blob):           {t_incr:8.2f} s   cold/incremental = {t_cold / t_incr:.1f}x"
    )
    print(
        f"  assembly alone, unchanged rows reused:       {t_rows:8.2f} s   vs every row rebuilt {t_full:.2f} s"
        f" = {t_full / t_rows:.1f}x"
    )
    print(f"  (hashing the tree's blobs alone:             {t_hash:8.2f} s)")
    print(f"query, files + definitions, bm25 (median):     {bm25 * 1000:8.1f} ms  (goal < 50 ms)")
    print(
        f"query, default method (median):                {fused * 1000:8.1f} ms  (goal < 50 ms;"
        f" the first, which builds the map: {lat['default'][0] * 1000:.0f} ms)"
    )
    print(
        f"grep of the query's words over the tree:       {grep * 1000:8.1f} ms  bm25 query / grep = {bm25 / grep:.2f}"
        f", default / grep = {fused / grep:.2f}"
    )
    print(
        f"GNU grep -rIliE over the tree on disk:         {gnu * 1000:8.1f} ms  bm25 query / grep = {bm25 / gnu:.2f}"
        f", default / grep = {fused / gnu:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
