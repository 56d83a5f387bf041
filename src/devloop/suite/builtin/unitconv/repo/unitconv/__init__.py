"""Unit conversion."""

from unitconv.convert import IncompatibleUnits, convert, convert_text
from unitconv.formatting import format_quantity
from unitconv.parse import Quantity, parse_quantity
from unitconv.units import UNITS, Unit, get_unit

__all__ = [
    "UNITS",
    "IncompatibleUnits",
    "Quantity",
    "Unit",
    "convert",
    "convert_text",
    "format_quantity",
    "get_unit",
    "parse_quantity",
]
