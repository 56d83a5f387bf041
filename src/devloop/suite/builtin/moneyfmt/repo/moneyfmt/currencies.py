from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Currency:
    code: str
    symbol: str
    name: str
    symbol_first: bool = True


_TABLE = {
    c.code: c
    for c in [
        Currency("USD", "$", "US dollar"),
        Currency("EUR", "€", "euro", symbol_first=False),
        Currency("GBP", "£", "pound sterling"),
        Currency("CHF", "CHF", "Swiss franc"),
        Currency("JPY", "¥", "Japanese yen"),
        Currency("KRW", "₩", "South Korean won"),
        Currency("KWD", "KD", "Kuwaiti dinar"),
        Currency("BHD", "BD", "Bahraini dinar"),
    ]
}


def get_currency(code: str) -> Currency:
    try:
        return _TABLE[code.upper()]
    except KeyError:
        raise ValueError(f"unknown currency {code!r}") from None


def by_symbol(symbol: str) -> Currency | None:
    for currency in _TABLE.values():
        if currency.symbol == symbol:
            return currency
    return None
