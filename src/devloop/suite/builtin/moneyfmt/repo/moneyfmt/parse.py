from __future__ import annotations

import re

from moneyfmt.currencies import by_symbol, get_currency
from moneyfmt.fmt import STYLES
from moneyfmt.money import Money

_CODE = re.compile(r"\b([A-Z]{3})\b")


def parse_money(text: str, style: str = "en", default_currency: str | None = None) -> Money:
    """Parse '$1,234.50', '1.234,50 €', '-12.00 USD', ... into Money."""
    thousands, decimal = STYLES[style]
    raw = text.strip()
    currency = None
    code = _CODE.search(raw)
    if code:
        currency = get_currency(code.group(1))
        raw = raw.replace(code.group(1), "")
    else:
        for ch in raw:
            if not (ch.isdigit() or ch in "-+ " or ch in (thousands, decimal)):
                found = by_symbol(ch)
                if found:
                    currency = found
                    raw = raw.replace(ch, "")
                    break
    if currency is None:
        if default_currency is None:
            raise ValueError(f"no currency in {text!r}")
        currency = get_currency(default_currency)
    number = raw.replace(" ", "").replace(thousands, "").replace(decimal, ".")
    if not re.fullmatch(r"[-+]?\d+(\.\d+)?", number):
        raise ValueError(f"not a money amount: {text!r}")
    return Money.of(number, currency.code)
