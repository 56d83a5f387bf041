from __future__ import annotations

from moneyfmt.money import Money

STYLES = {
    "en": (",", "."),
    "de": (".", ","),
    "fr": ("\u202f", ","),
    "ch": ("'", "."),
}


def _group(digits: str, sep: str) -> str:
    parts = []
    while len(digits) > 3:
        parts.insert(0, digits[-3:])
        digits = digits[:-3]
    parts.insert(0, digits)
    return sep.join(parts)


def format_money(money: Money, style: str = "en", symbol: bool = True) -> str:
    """Text such as '$1,234.50', '-£3.00' or '1.234,50 €' (style 'de')."""
    try:
        thousands, decimal = STYLES[style]
    except KeyError:
        raise ValueError(f"unknown style {style!r}; expected one of {', '.join(STYLES)}") from None
    amount = money.amount
    sign = "-" if amount < 0 else ""
    whole, _, frac = f"{abs(amount):.2f}".partition(".")
    number = _group(whole, thousands) + decimal + frac
    if not symbol:
        return f"{sign}{number} {money.currency.code}"
    cur = money.currency
    if cur.symbol_first:
        space = " " if cur.symbol.isalpha() else ""
        return f"{sign}{cur.symbol}{space}{number}"
    return f"{sign}{number} {cur.symbol}"
