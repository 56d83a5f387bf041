"""Money amounts, formatting and parsing."""

from moneyfmt.currencies import Currency, get_currency
from moneyfmt.fmt import format_money
from moneyfmt.money import Money
from moneyfmt.parse import parse_money

__all__ = ["Currency", "Money", "format_money", "get_currency", "parse_money"]
