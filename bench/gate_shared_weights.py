"""Gates 1-3 of `devloop gate run` on the same local weights, with the weights loaded once for the run
(as `gate run` does) and with a fresh load per gate (as before), alternating, side by side in this run:

    python bench/gate_shared_weights.py WEIGHTS [--rounds 2]

WEIGHTS is a transformers directory or a .gguf file (examples/gates/fetch_smollm2.sh fetches SmolLM2).
Each gate does as little as it can (one prompt, one query per category in one format, 4 tokens), so the
difference is the loading.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

from devloop.gate import matrix
from devloop.gate.smoke import load_local


def config(weights: Path, directory: Path) -> Path:
    path = directory / "gates.toml"
    path.write_text(
        f'[gate1]\nweights = "{weights}"\nmax_tokens = 4\n'
        f'[gate2]\nweights = "{weights}"\nprompts = ["hi"]\nmax_tokens = 4\n'
        f'[gate3]\nweights = "{weights}"\nformats = ["hermes"]\nper_category = 1\nmax_tokens = 4\n'
        '[decision]\n1 = "caution"\n3 = "caution"\n',
        "utf-8",
    )
    return path


def one_run(path: Path, out: Path, shared: bool) -> float:
    original = matrix.weights_shared
    if not shared:
        matrix.weights_shared = lambda: contextlib.nullcontext(None)  # type: ignore[assignment,return-value]
    try:
        started = time.perf_counter()
        matrix.run_gates(matrix.load_config(path), out)
        return time.perf_counter() - started
    finally:
        matrix.weights_shared = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    times: dict[bool, list[float]] = {True: [], False: []}
    load_local(args.weights)  # warm-up, not timed: the libraries' imports and the page cache
    with tempfile.TemporaryDirectory(prefix="devloop-bench-") as scratch:
        path = config(args.weights.resolve(), Path(scratch))
        for n in range(args.rounds):
            for shared in (True, False):
                took = one_run(path, Path(scratch) / f"out-{n}-{shared}", shared)
                times[shared].append(took)
                print(f"round {n + 1} {'shared' if shared else 'fresh '}: {took:.1f} s", flush=True)
    once, each = statistics.median(times[True]), statistics.median(times[False])
    print(f"median: loaded once {once:.1f} s, loaded per gate {each:.1f} s, ratio {once / each:.2f}")


if __name__ == "__main__":
    main()
