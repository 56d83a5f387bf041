from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Unit:
    """A unit of `dimension`; `factor` converts a value in this unit to the dimension's base unit."""

    symbol: str
    name: str
    dimension: str
    factor: float


_DEFS = [
    # length (base: metre)
    Unit("m", "metre", "length", 1.0),
    Unit("km", "kilometre", "length", 1000.0),
    Unit("cm", "centimetre", "length", 0.01),
    Unit("mm", "millimetre", "length", 0.001),
    Unit("in", "inch", "length", 0.0254),
    Unit("ft", "foot", "length", 0.3048),
    Unit("mi", "mile", "length", 1609.344),
    # mass (base: kilogram)
    Unit("kg", "kilogram", "mass", 1.0),
    Unit("g", "gram", "mass", 0.001),
    Unit("lb", "pound", "mass", 0.45359237),
    Unit("oz", "ounce", "mass", 0.028349523125),
    # time (base: second)
    Unit("s", "second", "time", 1.0),
    Unit("min", "minute", "time", 60.0),
    Unit("h", "hour", "time", 3600.0),
    # speed (base: metre per second)
    Unit("m/s", "metre per second", "speed", 1.0),
    Unit("km/h", "kilometre per hour", "speed", 1000 / 3600),
    Unit("mph", "mile per hour", "speed", 1609.344 / 3600),
    # data (base: byte)
    Unit("B", "byte", "data", 1.0),
    Unit("KB", "kilobyte", "data", 1e3),
    Unit("MB", "megabyte", "data", 1e6),
    Unit("KiB", "kibibyte", "data", 1024.0),
    Unit("MiB", "mebibyte", "data", 1024.0**2),
    # temperature (base: kelvin)
    Unit("K", "kelvin", "temperature", 1.0),
    Unit("C", "degree Celsius", "temperature", 1.0),
    Unit("F", "degree Fahrenheit", "temperature", 5 / 9),
]

UNITS: dict[str, Unit] = {u.symbol: u for u in _DEFS}
_ALIASES = {"°C": "C", "°F": "F", "degC": "C", "degF": "F", "kph": "km/h", "sec": "s", "hr": "h", "lbs": "lb"}


def get_unit(symbol: str) -> Unit:
    """Look a unit up by symbol, alias or full name (case-insensitive for names)."""
    symbol = symbol.strip()
    symbol = _ALIASES.get(symbol, symbol)
    if symbol in UNITS:
        return UNITS[symbol]
    lowered = symbol.lower().rstrip("s")
    for unit in _DEFS:
        if unit.name == lowered:
            return unit
    raise KeyError(f"unknown unit {symbol!r}")
