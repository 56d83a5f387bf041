from __future__ import annotations

import re
from dataclasses import dataclass

from unitconv.units import Unit, get_unit

_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][-+]?\d+)?)\s*(\S.*?)\s*$")


@dataclass(frozen=True)
class Quantity:
    value: float
    unit: Unit


def parse_quantity(text: str) -> Quantity:
    """'12.5 km', '3ft', '-40 °F', '1,5 kg' (decimal comma) -> Quantity."""
    match = _QUANTITY.match(text)
    if not match:
        raise ValueError(f"not a quantity: {text!r}")
    number, unit = match.groups()
    try:
        return Quantity(float(number.replace(",", ".")), get_unit(unit))
    except KeyError as exc:
        raise ValueError(f"{text!r}: {exc.args[0]}") from None
