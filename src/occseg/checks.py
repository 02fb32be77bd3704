"""What counts as a number in occseg's settings: Python and numpy numbers, never a boolean (``True`` is an
``int`` to Python, but no count or size)."""

from __future__ import annotations

import numbers


def is_integer(value: object) -> bool:
    """An integer (``int`` or a numpy integer), not a boolean."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """A real number (``int``, ``float`` or a numpy number), not a boolean; it may still be NaN or infinite."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
