"""Command-policy check time against command length: 100 kB, 400 kB and 1.6 MB commands of the shapes
that made the old check quadratic, each shown as a ratio to its 100 kB time (linear: ~4x and ~16x;
quadratic: ~16x and ~256x).

The rules are evaluated directly (`Policy.first_match`), past the size cap: a real call over
MAX_COMMAND_CHARS is refused before any rule reads it, which the last line times.

    python bench/policy_check.py [--repeat 3] [--shapes separators,downloads] [--sizes 25000,100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from devloop.policy import load_policy
from devloop.policy.rules import Policy
from devloop.tools.bash import MAX_COMMAND_CHARS
from devloop.types import ToolCall

SIZES = (100_000, 400_000, 1_600_000)
SHAPES: dict[str, Callable[[int], str]] = {
    "separators": lambda n: ";" * n,
    "downloads": lambda n: "curl " * (n // 5),
    "one quoted word": lambda n: 'echo "' + "x" * n + '"',
    "assignments": lambda n: "A=b " * (n // 4) + "ls",
    "many commands": lambda n: "ls -la; " * (n // 8),
    "heredoc": lambda n: "cat > f.py <<'EOF'\n" + "print('hello world')\n" * (n // 21) + "EOF\n",
}


def timed(fn: Callable[[], object], repeat: int) -> float:
    """The fastest of `repeat` runs, in CPU seconds of this process (other load on the machine excluded)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the fastest counts")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated shape names")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="command lengths, smallest first")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        policy: Policy = load_policy(Path(tmp), user_file=Path(tmp) / "none.toml")
    root = Path("/work/repo")
    print(
        f"{'shape':16s} "
        + " ".join(f"{n // 1000:>6d} kB" for n in sizes)
        + f"   ratio to {sizes[0] // 1000} kB"
    )
    for name in args.shapes.split(","):
        make = SHAPES[name.strip()]
        times = []
        for size in sizes:
            call = ToolCall("execute_bash", {"command": make(size)})
            times.append(
                timed(lambda call=call: policy.first_match(call, root, interactive=False), args.repeat)
            )
        ratios = " ".join(f"{t / times[0]:5.1f}x" for t in times[1:])
        print(f"{name:16s} " + " ".join(f"{t:8.3f}s" for t in times) + f"   {ratios}")
    big = ToolCall("execute_bash", {"command": ";" * 5_000_000})
    refused = timed(lambda: policy.check(big, root, interactive=False), args.repeat)
    print(
        f"5 MB command through Policy.check (cap {MAX_COMMAND_CHARS:,} characters): refused in {refused * 1e6:.0f} us"
    )


if __name__ == "__main__":
    main()
