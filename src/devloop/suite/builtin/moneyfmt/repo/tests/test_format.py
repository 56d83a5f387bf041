import pytest

from moneyfmt import Money, format_money, parse_money


@pytest.mark.parametrize("amount,code,style,expected", [
    ("1234.5", "USD", "en", "$1,234.50"),
    ("-3", "GBP", "en", "-£3.00"),
    ("1234.5", "EUR", "de", "1.234,50 €"),
    ("1234567.891", "CHF", "ch", "CHF 1'234'567.89"),
], ids=["usd", "gbp-negative", "eur-de", "chf-ch"])
def test_format(amount, code, style, expected):
    assert format_money(Money.of(amount, code), style) == expected


def test_format_code_instead_of_symbol():
    assert format_money(Money.of("5", "USD"), symbol=False) == "5.00 USD"


def test_unknown_style():
    with pytest.raises(ValueError, match="unknown style"):
        format_money(Money.of("1", "USD"), "xx")


@pytest.mark.parametrize("text,style,amount,code", [
    ("$1,234.50", "en", "1234.50", "USD"),
    ("1.234,50 €", "de", "1234.50", "EUR"),
    ("-12.00 USD", "en", "-12.00", "USD"),
], ids=["usd-symbol", "eur-de", "usd-code"])
def test_parse(text, style, amount, code):
    money = parse_money(text, style)
    assert (str(money.amount), money.currency.code) == (amount, code)


def test_parse_errors():
    with pytest.raises(ValueError, match="no currency"):
        parse_money("12.00")
    with pytest.raises(ValueError, match="not a money amount"):
        parse_money("$12.0.0")
