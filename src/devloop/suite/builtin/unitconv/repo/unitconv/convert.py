from __future__ import annotations

from unitconv.parse import parse_quantity
from unitconv.units import Unit, get_unit


class IncompatibleUnits(ValueError):
    """The units measure different things (e.g. metres and kilograms)."""


def _unit(u: str | Unit) -> Unit:
    return u if isinstance(u, Unit) else get_unit(u)


def convert(value: float, from_unit: str | Unit, to_unit: str | Unit) -> float:
    """Convert `value` from one unit to another of the same dimension."""
    src, dst = _unit(from_unit), _unit(to_unit)
    if src.dimension != dst.dimension:
        raise IncompatibleUnits(f"cannot convert {src.dimension} ({src.symbol}) to {dst.dimension} ({dst.symbol})")
    base = value * src.factor
    return base / dst.factor


def convert_text(text: str, to_unit: str) -> float:
    """convert_text('12 km', 'mi') -> 7.456..."""
    q = parse_quantity(text)
    return convert(q.value, q.unit, to_unit)
