"""A protocol run's figures from its units: per-attempt table, pass@k, best-of, each rate with its CI.

Used for the extra sections of report.json and by `devloop report`. Rates over tasks carry a Wilson
interval; averages of per-task values (pass@k, pass^k) a seeded bootstrap over tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from devloop.eval.protocols import BestOf, Iterative, ProtocolConfig, Samples, chosen_index, needs_retry
from devloop.eval.records import Selection, UnitRecord
from devloop.stats.summary import pass_at_k_estimate, pass_hat_k_estimate, resolve_rate

Units = Mapping[str, Mapping[int, UnitRecord]]


def k_values(n: int) -> list[int]:
    """The k reported for n samples: powers of two up to n, and n itself."""
    ks, k = [], 1
    while k <= n:
        ks.append(k)
        k *= 2
    if n >= 1 and ks[-1] != n:
        ks.append(n)
    return ks


def _rate(resolved: int, total: int, conf: float) -> dict[str, Any]:
    return resolve_rate(resolved, total, conf).to_dict()


def attempts_table(config: ProtocolConfig, task_ids: Sequence[str], units: Units, conf: float = 0.95
                   ) -> list[dict[str, Any]]:  # fmt: skip
    """Per attempt (the Devstral paper's table): tasks attempted, resolved, empty patches, not finished,
    and the resolve rate had the protocol stopped after this attempt (latest non-empty patch so far)."""
    rows = []
    for k in range(config.attempts):
        ran = [units[t][k] for t in task_ids if k in units.get(t, {})]
        cumulative = 0
        for t in task_ids:
            upto = {i: u for i, u in units.get(t, {}).items() if i <= k}
            chosen = chosen_index(config, upto, None)
            cumulative += chosen is not None and upto[chosen].resolved
        rows.append({
            "attempt": k + 1,
            "temperature": config.temperatures[k],
            "attempted": len(ran),
            "resolved": sum(u.resolved for u in ran),
            "empty_patch": sum(u.empty for u in ran),
            "not_finished": sum(not u.finished for u in ran),
            "retry_next": sum(needs_retry(u) for u in ran) if k + 1 < config.attempts else 0,
            "cumulative_resolved": cumulative,
            "cumulative_rate": _rate(cumulative, len(task_ids), conf),
        })  # fmt: skip
    return rows


def sample_counts(task_ids: Sequence[str], units: Units) -> dict[str, tuple[int, int]]:
    """{task: (samples, resolved samples)} over the units on disk."""
    return {t: (len(units.get(t, {})), sum(u.resolved for u in units.get(t, {}).values())) for t in task_ids}


def pass_at_k_table(task_ids: Sequence[str], units: Units, n: int, conf: float = 0.95, seed: int = 0
                    ) -> list[dict[str, Any]]:  # fmt: skip
    """pass@k and pass^k with bootstrap CIs for k in k_values(n); None where some task lacks k samples."""
    counts = sample_counts(task_ids, units)
    rows = []
    for k in k_values(n):
        at = pass_at_k_estimate(counts, k, conf, seed=seed) if counts else None
        hat = pass_hat_k_estimate(counts, k, conf, seed=seed) if counts else None
        rows.append(
            {"k": k, "pass_at_k": at.to_dict() if at else None, "pass_hat_k": hat.to_dict() if hat else None}
        )
    return rows


def final_ids(config: ProtocolConfig, task_ids: Sequence[str], units: Units,
              selections: Mapping[str, Selection]) -> dict[str, UnitRecord]:  # fmt: skip
    """The unit chosen as each task's prediction (tasks with none are left out)."""
    out = {}
    for t in task_ids:
        index = chosen_index(config, units.get(t, {}), selections.get(t))
        if index is not None:
            out[t] = units[t][index]
    return out


def _iterative(config: ProtocolConfig, task_ids: Sequence[str], units: Units, selections: Mapping[str, Selection],
               chosen: Mapping[str, UnitRecord], conf: float, seed: int) -> dict[str, Any]:  # fmt: skip
    return {"attempts": attempts_table(config, task_ids, units, conf)}


def _samples(config: ProtocolConfig, task_ids: Sequence[str], units: Units, selections: Mapping[str, Selection],
             chosen: Mapping[str, UnitRecord], conf: float, seed: int) -> dict[str, Any]:  # fmt: skip
    counts = sample_counts(task_ids, units)
    return {
        "pass_at_k": pass_at_k_table(task_ids, units, config.samples, conf, seed),
        "samples_per_task": min((n for n, _ in counts.values()), default=0),
    }


def _best_of(config: ProtocolConfig, task_ids: Sequence[str], units: Units, selections: Mapping[str, Selection],
             chosen: Mapping[str, UnitRecord], conf: float, seed: int) -> dict[str, Any]:  # fmt: skip
    resolved = sum(u.resolved for u in chosen.values())
    any_ok = [t for t in task_ids if any(u.resolved for u in units.get(t, {}).values())]
    picked_ok = [t for t in any_ok if t in chosen and chosen[t].resolved]
    return {
        **_samples(config, task_ids, units, selections, chosen, conf, seed),
        "best_of": {
            "selected": _rate(resolved, len(task_ids), conf),
            "oracle_pass_at_n": _rate(len(any_ok), len(task_ids), conf),
            "selection_accuracy": _rate(len(picked_ok), len(any_ok), conf),
            "rule": next(iter(selections.values())).rule if selections else "",
        },
    }


Section = Callable[
    [ProtocolConfig, Sequence[str], Units, Mapping[str, Selection], Mapping[str, UnitRecord], float, int],
    dict[str, Any],
]
SECTIONS: dict[str, Section] = {Iterative.name: _iterative, Samples.name: _samples, BestOf.name: _best_of}
"""Each protocol's own report section, by protocol name (single has none)."""


def protocol_section(config: ProtocolConfig, task_ids: Sequence[str], units: Units,
                     selections: Mapping[str, Selection] | None = None, conf: float = 0.95, seed: int = 0
                     ) -> dict[str, Any]:  # fmt: skip
    """Everything a report says about a protocol run beyond report.json's standard fields."""
    selections = selections or {}
    chosen = final_ids(config, task_ids, units, selections)
    resolved = sum(u.resolved for u in chosen.values())
    section: dict[str, Any] = {
        "protocol": config.describe(),
        "tasks": len(task_ids),
        "units": sum(len(units.get(t, {})) for t in task_ids),
        "final": {"resolved": resolved, "total": len(task_ids), "rate": _rate(resolved, len(task_ids), conf),
                  "chosen_unit": {t: u.index for t, u in chosen.items()}},
    }  # fmt: skip
    if (extra := SECTIONS.get(config.name)) is not None:
        section.update(extra(config, task_ids, units, selections, chosen, conf, seed))
    return section
