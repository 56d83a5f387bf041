from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Union

from moneyfmt.currencies import Currency, get_currency

Number = Union[int, str, Decimal]


@dataclass(frozen=True)
class Money:
    """An amount in a currency, rounded (half-even) to the currency's smallest unit."""

    amount: Decimal
    currency: Currency

    @classmethod
    def of(cls, amount: Number, code: str) -> Money:
        if isinstance(amount, float):
            raise TypeError("use str or Decimal for money, not float")
        currency = get_currency(code)
        try:
            value = Decimal(amount)
        except InvalidOperation:
            raise ValueError(f"not an amount: {amount!r}") from None
        return cls(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN), currency)

    def _check(self, other: Money) -> None:
        if self.currency != other.currency:
            raise ValueError(f"cannot combine {self.currency.code} and {other.currency.code}")

    def __add__(self, other: Money) -> Money:
        self._check(other)
        return Money.of(self.amount + other.amount, self.currency.code)

    def __sub__(self, other: Money) -> Money:
        self._check(other)
        return Money.of(self.amount - other.amount, self.currency.code)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def multiply(self, factor: Number) -> Money:
        return Money.of(self.amount * Decimal(factor), self.currency.code)

    def allocate(self, ratios: list[int]) -> list[Money]:
        """Split into parts proportional to `ratios`; leftover cents go to the first parts."""
        if not ratios or any(r < 0 for r in ratios) or sum(ratios) == 0:
            raise ValueError("ratios must be non-negative with a positive sum")
        unit = Decimal("0.01")
        cents = int(self.amount / unit)
        total = sum(ratios)
        shares = [cents * r // total for r in ratios]
        for i in range(cents - sum(shares)):
            shares[i] += 1
        return [Money(Decimal(s) * unit, self.currency) for s in shares]
