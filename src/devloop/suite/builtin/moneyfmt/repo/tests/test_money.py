from decimal import Decimal

import pytest

from moneyfmt import Money


def test_rounds_half_even():
    assert Money.of("2.345", "USD").amount == Decimal("2.34")
    assert Money.of("2.355", "USD").amount == Decimal("2.36")


def test_float_rejected():
    with pytest.raises(TypeError):
        Money.of(1.5, "USD")


def test_unknown_currency():
    with pytest.raises(ValueError, match="unknown currency 'XYZ'"):
        Money.of("1", "XYZ")


def test_arithmetic():
    total = Money.of("10.10", "EUR") + Money.of("0.90", "EUR") - Money.of("1", "EUR")
    assert total.amount == Decimal("10.00")


def test_mixed_currencies():
    with pytest.raises(ValueError, match="USD and EUR"):
        Money.of("1", "USD") + Money.of("1", "EUR")


def test_allocate_leftover_cents():
    parts = Money.of("100", "USD").allocate([1, 1, 1])
    assert [p.amount for p in parts] == [Decimal("33.34"), Decimal("33.33"), Decimal("33.33")]


def test_multiply():
    assert Money.of("19.99", "GBP").multiply(3).amount == Decimal("59.97")
