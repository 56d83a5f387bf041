"""CLI start-up cost: `devloop --version` and `devloop --help` beside a bare `python -c pass`, in one run.
Rounds alternate between the commands so machine noise hits all alike; medians and the ratio to the bare
interpreter are printed, and the import time of the CLI entry (`python -X importtime`, cumulative
microseconds of `devloop.cli`).

    python bench/startup.py [--rounds 5]

Target: `devloop --version` and `devloop --help` in < 0.3 s.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time

TARGET_S = 0.3
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "devloop --version": [sys.executable, "-m", "devloop", "--version"],
    "devloop --help": [sys.executable, "-m", "devloop", "--help"],
}


def wall(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def cli_import_us() -> int:
    """Cumulative import time of devloop.cli in `devloop --version`, from -X importtime."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "devloop", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"\|\s*(\d+)\s*\|\s*devloop\.cli$", proc.stderr, re.MULTILINE)
    return int(found.group(1)) if found else -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    imports = []
    for _ in range(args.rounds):
        for name, argv in COMMANDS.items():
            times[name].append(wall(argv))
        imports.append(cli_import_us())
    base = statistics.median(times["python -c pass"])
    print(f"{'command':<20} {'median s':>9} {'x python':>9}   (median of {args.rounds})")
    for name, samples in times.items():
        med = statistics.median(samples)
        mark = "" if name.startswith("python") else ("  ok" if med < TARGET_S else f"  over {TARGET_S} s")
        print(f"{name:<20} {med:>9.3f} {med / base:>9.1f}{mark}")
    print(f"import devloop.cli (-X importtime, cumulative): {statistics.median(imports) / 1000:.1f} ms")


if __name__ == "__main__":
    main()
