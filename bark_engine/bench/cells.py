"""How the benchmark's tables print a number (one source for every block)."""

from __future__ import annotations


def fmt(x: float | None, digits: int = 2) -> str:
    """A measurement in a table cell: fewer decimals as it grows; "—" when missing."""
    if x is None:
        return "—"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.{digits}f}"


def ratio(x: float | None) -> str:
    """A ratio as "1.23x"; "—" when missing."""
    return "—" if x is None else f"{x:.2f}x"
