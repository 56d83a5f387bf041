"""The one way devloop writes a rate and its interval, in text, tables, markdown and plot labels.

``interval_text(0.425, 0.285, 0.578, conf=0.95, method="wilson")`` is ``42.5% (95% Wilson CI 28.5..57.8)``;
without `conf` and `method` it is the short ``42.5% (28.5..57.8)`` for a table whose header names the
interval. Differences are signed points: ``+17.5 pts (95% paired bootstrap CI +7.5..+30.0)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# How each interval method is named to a reader (RateEstimate.method and report.json's "method").
METHOD_NAMES = {
    "wilson": "Wilson",
    "bootstrap": "bootstrap",
    "paired_bootstrap": "paired bootstrap",
    "paired_bootstrap_percentile": "paired bootstrap",
}


def method_name(method: str) -> str:
    """A method id as a reader sees it ("wilson" -> "Wilson"); unknown ids are shown as they are."""
    return METHOD_NAMES.get(method, method)


def ci_label(conf: float | None = None, method: str | None = None) -> str:
    """ "95% Wilson CI", "95% CI", "Wilson CI", or "" when neither is given."""
    if conf is None and method is None:
        return ""
    words = [f"{100 * conf:g}%"] if conf is not None else []
    if method is not None:
        words.append(method_name(method))
    return " ".join([*words, "CI"])


def interval_text(
    value: float,
    lo: float,
    hi: float,
    *,
    conf: float | None = None,
    method: str | None = None,
    n: int | None = None,
    signed: bool = False,
    unit: str = "%",
) -> str:
    """`value (label lo..hi, n=N)`: a rate in [0, 1] written in percent with one decimal.

    `signed` writes a difference (+/-); `unit` follows the value (" pts" for differences of rates).
    """
    fmt = "+.1f" if signed else ".1f"

    def num(x: float) -> str:
        return format(100 * x, fmt)

    label = ci_label(conf, method)
    inner = f"{label} {num(lo)}..{num(hi)}" if label else f"{num(lo)}..{num(hi)}"
    if n is not None:
        inner += f", n={n}"
    return f"{num(value)}{unit} ({inner})"


def rate_text(rate: Any, *, label: bool = True, n: bool = False) -> str:
    """A RateEstimate, or its to_dict() form, as interval_text writes it; "n/a" for None.

    `label` names the level and method inside the parentheses; `n` adds the count of units.
    """
    if not rate:
        return "n/a"

    def get(key: str, default: Any = None) -> Any:
        return rate.get(key, default) if isinstance(rate, Mapping) else getattr(rate, key, default)

    return interval_text(
        get("value"),
        get("lo"),
        get("hi"),
        conf=get("conf", 0.95) if label else None,
        method=get("method") if label else None,
        n=get("n") if n else None,
    )


def methods_note(rates: Iterable[Any], conf: float = 0.95) -> str:
    """The interval label for a set of estimates (RateEstimates or dicts): one method named when they all
    share it ("95% Wilson CI"), otherwise the rule that chose between them."""
    methods: set[str] = set()
    for rate in rates:
        method = (
            (rate.get("method") if isinstance(rate, Mapping) else getattr(rate, "method", None))
            if rate
            else None
        )
        if isinstance(method, str):
            methods.add(method)
    if len(methods) == 1:
        (only,) = methods
        suffix = " over tasks" if only == "bootstrap" else ""
        return ci_label(conf, only) + suffix
    if methods == {"wilson", "bootstrap"}:
        return f"{100 * conf:g}% CI: Wilson where every task's outcome is 0/1, bootstrap over tasks otherwise"
    if not methods:
        return ci_label(conf)
    return f"{100 * conf:g}% CI: " + ", ".join(sorted(method_name(m) for m in methods))
