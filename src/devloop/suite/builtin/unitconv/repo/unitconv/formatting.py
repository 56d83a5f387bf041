from __future__ import annotations

from unitconv.units import Unit


def format_quantity(value: float, unit: Unit, digits: int = 3) -> str:
    """Round to `digits` significant digits, drop trailing zeros: '7.46 mi', '1200 m', '-40 F'."""
    if value == 0:
        return f"0 {unit.symbol}"
    text = f"{value:.{digits}g}"
    if "e" in text:
        mantissa, exp = text.split("e")
        text = f"{float(mantissa) * 10 ** int(exp):.0f}" if int(exp) > 0 else f"{value:.{digits + 2}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} {unit.symbol}"
