import pytest

from unitconv import IncompatibleUnits, convert, convert_text


@pytest.mark.parametrize("value,src,dst,expected", [
    (1, "km", "m", 1000),
    (12, "in", "ft", 1),
    (1, "mi", "km", 1.609344),
    (1, "lb", "g", 453.59237),
    (90, "min", "h", 1.5),
    (100, "km/h", "m/s", 27.7777778),
    (1, "MiB", "KiB", 1024),
    (10, "K", "K", 10),
], ids=["km-m", "in-ft", "mi-km", "lb-g", "min-h", "kmh-ms", "mib-kib", "k-k"])
def test_convert(value, src, dst, expected):
    assert convert(value, src, dst) == pytest.approx(expected)


def test_incompatible():
    with pytest.raises(IncompatibleUnits, match="length"):
        convert(1, "m", "kg")


def test_unknown_unit():
    with pytest.raises(KeyError):
        convert(1, "parsec", "m")


def test_convert_text():
    assert convert_text("12 km", "mi") == pytest.approx(7.4564543)
