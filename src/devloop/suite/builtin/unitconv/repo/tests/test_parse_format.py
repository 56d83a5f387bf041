import pytest

from unitconv import format_quantity, get_unit, parse_quantity


def test_parse():
    q = parse_quantity("12.5 km")
    assert (q.value, q.unit.symbol) == (12.5, "km")
    assert parse_quantity("3ft").unit.name == "foot"
    assert parse_quantity("1,5 kg").value == 1.5
    assert parse_quantity("-40 °F").unit.symbol == "F"


def test_parse_names_and_aliases():
    assert get_unit("kilometres").symbol == "km"
    assert get_unit("kph").symbol == "km/h"


@pytest.mark.parametrize("bad", ["km", "12", "12 parsecs"], ids=["no-number", "no-unit", "unknown-unit"])
def test_parse_errors(bad):
    with pytest.raises(ValueError):
        parse_quantity(bad)


def test_format():
    assert format_quantity(7.456454, get_unit("mi")) == "7.46 mi"
    assert format_quantity(1200.0, get_unit("m")) == "1200 m"
    assert format_quantity(0.0, get_unit("K")) == "0 K"
