"""The rules of the two stages: a registry of named rules, the shipped defaults (filters.toml, next to
this module), and what a --filters TOML file may lay over them or add.

A rule is a named check of one attempt against a value: a flag (`true` turns it on), a non-negative
integer limit or a non-negative number. Every rule of a stage is evaluated on every attempt, so each
trajectory records which rules it passed and which it failed; the report counts an attempt dropped under
the first rule it fails (in the order of RULES, user rules last), so drops and rows kept add up.
`per_instance` and `balance_repos` act on the attempts that passed every other rule of the stage.

A --filters file holds `[stage1]` / `[stage2]` tables (`rule = value`) and may define new rules under
`[rules.NAME]`, then switched on in a stage with `NAME = true`:

    [rules.short]              # a measure compared with bounds
    measure = "steps"          # any name in MEASURES
    max = 20                   # and/or min = ...
    [rules.no_pip]             # a regular expression counted in the calls, observations, patch or reasoning
    pattern = "pip install"
    in = "calls"
    max = 0                    # at most this many matches (default 0)
    [rules.tidy]               # composition: all / any of rules, each a name or an inline {rule = value}
    all = ["short", "no_pip", { max_tool_errors = 1 }]
    [stage2]
    tidy = true

Python code may add rules with `register_rule`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Check = Callable[[dict[str, Any], dict[str, Any], Any], bool]  # (attempt, measures, value) -> passes


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str  # "flag" | "limit" | "number"
    report: str  # the name an attempt failing it is counted under
    check: Check
    help: str = ""


def _lines_changed(patch: str) -> int:
    return sum(1 for line in patch.splitlines() if line[:1] in "+-" and not line.startswith(("+++ ", "--- ")))


def _denials_unanswered(steps: list[dict[str, Any]]) -> int:
    """Denied calls the model did not answer: the run ended on the denial, or the next step made the very
    call again."""
    count = 0
    for i, step in enumerate(steps):
        calls = [c for c in step.get("calls") or [] if isinstance(c, dict)]
        for call, obs in zip(calls, step.get("observations") or [], strict=False):
            meta = obs.get("meta") if isinstance(obs, dict) and isinstance(obs.get("meta"), dict) else {}
            policy = meta.get("policy") if isinstance(meta.get("policy"), dict) else {}
            if policy.get("action") != "deny":
                continue
            later = (
                steps[i + 1]["calls"]
                if i + 1 < len(steps) and isinstance(steps[i + 1].get("calls"), list)
                else None
            )
            key = (call.get("name"), json.dumps(call.get("arguments"), sort_keys=True))
            repeated = later is not None and any(
                isinstance(c, dict) and (c.get("name"), json.dumps(c.get("arguments"), sort_keys=True)) == key
                for c in later
            )
            count += 1 if later is None or repeated else 0
    return count


def measures(a: dict[str, Any], tokens: int = 0) -> dict[str, Any]:
    """What the rules judge, counted from the attempt as recorded: format errors, tool results marked as
    errors, the most times one identical call (same tool, same arguments) was made, steps, tokens of the
    rendered conversation, denials left unanswered, rollbacks, whether a rescue queue ran, and the
    changed lines of the patch and of the task's gold patch."""
    events = a["events"]
    steps = [e for e in events if e.get("type") == "step"]
    calls: Counter[str] = Counter()
    tool_errors = 0
    for step in steps:
        for call in step.get("calls") or []:
            if isinstance(call, dict):
                args = json.dumps(call.get("arguments"), sort_keys=True)
                calls[f"{call.get('name')}\x00{args}"] += 1
        tool_errors += sum(
            1 for o in step.get("observations") or [] if isinstance(o, dict) and o.get("is_error") is True
        )
    result = a.get("result") or {}
    queues = result.get("queues") if isinstance(result.get("queues"), list) else []
    rollbacks = result.get("rollbacks")
    return {
        "format_errors": sum(1 for s in steps if s.get("format_error")),
        "tool_errors": tool_errors,
        "repeats": max(calls.values(), default=0),
        "steps": max(int(a.get("steps") or 0), len(steps)),
        "tokens": tokens,
        "denials_unanswered": _denials_unanswered(steps),
        "rollbacks": rollbacks if isinstance(rollbacks, int) else 0,
        "rescued": any(isinstance(q, dict) and q.get("name") == "rescue" and q.get("spent") for q in queues),
        "patch_lines": _lines_changed(a["patch"]),
        "gold_lines": _lines_changed(a.get("gold_patch") or ""),
        "tests_green": result.get("test_status") == "green",
    }


MEASURES = (
    "format_errors", "tool_errors", "repeats", "steps", "tokens", "denials_unanswered", "rollbacks",
    "patch_lines", "gold_lines",
)  # fmt: skip

RULES: dict[str, Rule] = {}


def register_rule(
    name: str, check: Check, kind: str = "flag", report: str | None = None, help: str = ""
) -> None:
    """Add (or replace) the rule `name`; `check(attempt, measures, value)` is True when it passes."""
    if kind not in ("flag", "limit", "number"):
        raise ValueError(f"rule {name!r}: kind must be flag, limit or number, not {kind!r}")
    RULES[name] = Rule(name, kind, report or name, check, help)


def _builtin() -> None:
    flag, limit, number = "flag", "limit", "number"
    for name, kind, report, check, help_ in (
        ("finished", flag, "unfinished", lambda a, m, v: a["finished"], "the agent called finish"),
        ("non_empty_patch", flag, "empty_patch", lambda a, m, v: bool(a["patch"].strip()), "a non-empty patch"),
        ("patch_applies", flag, "patch_does_not_apply",
         lambda a, m, v: not a["graded"] or a["patch_applied"], "the grader applied the patch"),
        ("resolved_or_tests_green", flag, "unresolved",
         lambda a, m, v: a["resolved"] or m["tests_green"], "resolved, or the visible tests green at the end"),
        ("resolved", flag, "unresolved", lambda a, m, v: a["resolved"], "resolved by the official grading"),
        ("no_format_errors", flag, "format_error", lambda a, m, v: m["format_errors"] == 0, "no format error"),
        ("max_format_errors", limit, "format_errors",
         lambda a, m, v: m["format_errors"] <= v, "at most this many format errors"),
        ("max_steps", limit, "too_many_steps", lambda a, m, v: m["steps"] <= v, "at most this many steps"),
        ("max_tokens", limit, "too_many_tokens",
         lambda a, m, v: m["tokens"] <= v, "the rendered conversation within this many tokens"),
        ("max_tool_errors", limit, "tool_errors", lambda a, m, v: m["tool_errors"] <= v, "tool results marked as errors"),
        ("max_repeats", limit, "repeats", lambda a, m, v: m["repeats"] <= v, "no identical call made more often"),
        ("no_unanswered_denials", flag, "unanswered_denial",
         lambda a, m, v: m["denials_unanswered"] == 0, "every policy denial answered by another action"),
        ("no_rollback", flag, "rollback_or_rescue",
         lambda a, m, v: m["rollbacks"] == 0 and not m["rescued"], "no rollback, no rescue queue"),
        ("max_patch_ratio", number, "patch_too_large",
         lambda a, m, v: not m["gold_lines"] or m["patch_lines"] <= v * m["gold_lines"],
         "changed lines at most this times the gold patch's"),
        ("review_accept", flag, "review_not_accepted",
         lambda a, m, v: a.get("review") is None or a["review"].get("action") == "accept",
         "accepted where a review exists"),
    ):  # fmt: skip
        register_rule(name, check, kind, report, help_)


_builtin()
POST = ("per_instance", "balance_repos")  # act on the set of attempts that passed, see build

DEFAULTS = Path(__file__).with_name("filters.toml")  # the shipped defaults (`devloop dataset rules`)


def _check_value(where: str, key: str, kind: str, value: Any) -> None:
    if kind == "flag" and not isinstance(value, bool):
        raise ValueError(f"{where} {key} must be true or false, not {value!r}")
    if kind == "limit" and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"{where} {key} must be a non-negative integer, not {value!r}")
    if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
        raise ValueError(f"{where} {key} must be a non-negative number, not {value!r}")


def _kind(key: str, user: dict[str, dict[str, Any]]) -> str | None:
    if key in user:
        return "flag"
    if key in RULES:
        return RULES[key].kind
    return {"per_instance": "limit", "balance_repos": "number"}.get(key)


def load_filters(path: Path | None) -> dict[str, dict[str, Any]]:
    """Stage rules: the defaults, with a TOML file's [stage1] / [stage2] tables laid over them. A user
    rule defined under [rules.NAME] is stored in the stage as `NAME = {definition}`."""
    import tomllib

    rules: dict[str, dict[str, Any]] = {"stage1": dict(STAGE1), "stage2": dict(STAGE2)}
    if path is None:
        return rules
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not TOML ({exc})") from None
    unknown_tables = set(data) - {"stage1", "stage2", "rules"}
    if unknown_tables:
        raise ValueError(f"{path}: unknown table [{sorted(unknown_tables)[0]}] (give stage1, stage2, rules)")
    user = data.get("rules", {})
    if not isinstance(user, dict) or not all(isinstance(v, dict) for v in user.values()):
        raise ValueError(f"{path}: [rules] must hold tables, one [rules.NAME] per rule")
    for name, spec in user.items():
        _check_user_rule(path, name, spec, user)
    for stage in rules:
        table = data.get(stage, {})
        if not isinstance(table, dict):
            raise ValueError(f"{path}: [{stage}] must be a table")
        for key, value in table.items():
            kind = _kind(key, user)
            if kind is None:
                raise ValueError(f"{path}: [{stage}] unknown rule {key!r}")
            _check_value(f"{path}: [{stage}]", key, kind, value)
            if key in user:
                if value:
                    rules[stage][key] = {"user": user[key], "all_rules": user}
                else:
                    rules[stage].pop(key, None)
            elif kind == "flag" and value is False:
                rules[stage].pop(key, None)
            else:
                rules[stage][key] = value
    return rules


def _defaults() -> tuple[dict[str, Any], dict[str, Any]]:
    import tomllib

    data = tomllib.loads(DEFAULTS.read_text(encoding="utf-8"))
    for stage in ("stage1", "stage2"):
        for key, value in data[stage].items():
            kind = _kind(key, {})
            if kind is None:
                raise ValueError(f"{DEFAULTS}: [{stage}] unknown rule {key!r}")
            _check_value(f"{DEFAULTS}: [{stage}]", key, kind, value)
    return data["stage1"], data["stage2"]


STAGE1, STAGE2 = _defaults()

_WHERE = ("calls", "observations", "patch", "reasoning")


def _check_user_rule(path: Path, name: str, spec: dict[str, Any], user: dict[str, Any]) -> None:
    where = f"{path}: [rules.{name}]"
    if name in RULES or name in POST:
        raise ValueError(f"{where}: {name!r} is a built-in rule; give the new rule another name")
    keys = set(spec)
    if "measure" in keys:
        if spec["measure"] not in MEASURES:
            raise ValueError(
                f"{where}: measure must be one of {', '.join(MEASURES)}, not {spec['measure']!r}"
            )
        if not keys & {"min", "max"} or keys - {"measure", "min", "max"}:
            raise ValueError(f"{where}: a measure rule takes measure and min and/or max")
        for bound in keys & {"min", "max"}:
            _check_value(where, bound, "number", spec[bound])
    elif "pattern" in keys:
        if keys - {"pattern", "in", "max"} or spec.get("in", "calls") not in _WHERE:
            raise ValueError(f"{where}: a pattern rule takes pattern, in ({', '.join(_WHERE)}) and max")
        try:
            re.compile(str(spec["pattern"]))
        except re.error as exc:
            raise ValueError(f"{where}: pattern is not a regular expression ({exc})") from None
        _check_value(where, "max", "limit", spec.get("max", 0))
    elif keys in ({"all"}, {"any"}):
        items = spec.get("all", spec.get("any"))
        if not isinstance(items, list) or not items:
            raise ValueError(f"{where}: all / any takes a non-empty list of rules")
        for item in items:
            if isinstance(item, str):
                if item == name or (item not in user and (item not in RULES or RULES[item].kind != "flag")):
                    raise ValueError(f"{where}: {item!r} is not a flag rule or another user rule")
            elif isinstance(item, dict) and len(item) == 1:
                ((key, value),) = item.items()
                if key not in RULES:
                    raise ValueError(f"{where}: unknown rule {key!r}")
                _check_value(where, key, RULES[key].kind, value)
            else:
                raise ValueError(f"{where}: each item of all / any is a rule name or {{rule = value}}")
    else:
        raise ValueError(f"{where}: give measure, pattern, or all / any")


def _texts(a: dict[str, Any], where: str) -> list[str]:
    steps = [e for e in a["events"] if e.get("type") == "step"]
    if where == "patch":
        return [a["patch"]]
    if where == "calls":
        return [
            json.dumps(c, sort_keys=True, ensure_ascii=False) for s in steps for c in s.get("calls") or []
        ]
    if where == "observations":
        return [
            str(o.get("text", "")) for s in steps for o in s.get("observations") or [] if isinstance(o, dict)
        ]
    completions = [s.get("completion") for s in steps]
    return [str(c.get("content") or "") for c in completions if isinstance(c, dict)]


def _user_passes(
    a: dict[str, Any], m: dict[str, Any], spec: dict[str, Any], user: dict[str, Any], depth: int = 0
) -> bool:
    if depth > 20:
        raise ValueError("user rules refer to each other in a cycle")
    if "measure" in spec:
        value = m[spec["measure"]]
        return spec.get("min", value) <= value <= spec.get("max", value)
    if "pattern" in spec:
        found = sum(len(re.findall(str(spec["pattern"]), t)) for t in _texts(a, spec.get("in", "calls")))
        return found <= int(spec.get("max", 0))
    results = []
    for item in spec.get("all", spec.get("any")):
        if isinstance(item, str) and item in user:
            results.append(_user_passes(a, m, user[item], user, depth + 1))
        else:
            key, value = (item, True) if isinstance(item, str) else next(iter(item.items()))
            results.append(RULES[key].check(a, m, value))
    return all(results) if "all" in spec else any(results)


def judge(a: dict[str, Any], m: dict[str, Any], rules: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The rules of one stage `a` passes (by their names in a filters file) and the failures it is
    counted under (the report's names: `unfinished` for `finished`), in RULES order then user rules.
    An attempt with no readable trajectory fails `no_trajectory` whatever the rules say."""
    passed: list[str] = []
    failed: list[str] = []
    if not any(e.get("type") == "start" for e in a["events"]):
        failed.append("no_trajectory")
    for name, rule in RULES.items():
        if name not in rules or (rule.kind == "flag" and not rules[name]):
            continue
        if rule.check(a, m, rules[name]):
            passed.append(name)
        else:
            failed.append(rule.report)
    for name, value in rules.items():
        if isinstance(value, dict) and "user" in value:
            (passed if _user_passes(a, m, value["user"], value["all_rules"]) else failed).append(name)
    return _unique(passed), _unique(failed)


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def failure(a: dict[str, Any], rules: dict[str, Any]) -> str | None:
    """The first rule (but the per-set ones) that attempt `a` fails, as its report name, or None."""
    failed = judge(a, measures(a), rules)[1]
    return failed[0] if failed else None


def printable(rules: dict[str, Any]) -> dict[str, Any]:
    """The stage's rules as the report shows them (a user rule as its definition)."""
    return {k: (v["user"] if isinstance(v, dict) and "user" in v else v) for k, v in sorted(rules.items())}
