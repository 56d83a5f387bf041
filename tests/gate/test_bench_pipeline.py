"""bench/gate_pipeline.py's configs stay valid gates.toml files that run all six gates to the end, and
its cut suite keeps N test queries per category and every training and validation query."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from devloop.gate.matrix import load_config
from devloop.gate.suite import load_suite, shipped_suite_path

BENCH = Path(__file__).parents[2] / "bench" / "gate_pipeline.py"


@pytest.fixture(scope="module")
def bench() -> object:
    spec = importlib.util.spec_from_file_location("gate_pipeline_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_cut_suite_keeps_n_test_queries_per_category(bench: object, tmp_path: Path) -> None:
    full = load_suite()
    cut = load_suite(bench.cut_suite(2, tmp_path))  # type: ignore[attr-defined]
    categories = {q.category for q in full.split("test")}
    assert len(cut.split("test")) == 2 * len(categories) and len(full.split("test")) == 40
    assert {q.category for q in cut.split("test")} == categories
    assert [q.id for q in cut.split("train")] == [q.id for q in full.split("train")]
    assert [q.id for q in cut.split("validation")] == [q.id for q in full.split("validation")]
    assert bench.cut_suite(None, tmp_path) == shipped_suite_path()  # type: ignore[attr-defined]


def test_the_bench_configs_run_every_gate_and_continue_past_failures(bench: object, tmp_path: Path) -> None:
    args = argparse.Namespace(per_category=1, formats="hermes,native", steps=2)
    texts = {
        "tiny": bench.tiny_config(tmp_path / "model", tmp_path, args),  # type: ignore[attr-defined]
        "smollm2": bench.smollm2_config(tmp_path / "m.gguf", tmp_path, 1),  # type: ignore[attr-defined]
    }
    for name, text in texts.items():
        path = tmp_path / f"{name}.toml"
        path.write_text(text)
        config = load_config(path)
        assert sorted(config.gates) == [0, 1, 2, 3, 4, 5], name
        assert set(config.matrix.values()) == {"caution"}, name
        assert config.gates[5]["weights"] == config.gates[4]["out_dir"], name  # Gate 5 tests the fused model
    tiny = load_config(tmp_path / "tiny.toml").gates
    assert tiny[3]["formats"] == ["hermes", "native"] and tiny[4]["steps"] == 2
    assert len(json.loads(Path(tiny[3]["suite"]).read_text())["queries"]) == 8 + 8 + 16
