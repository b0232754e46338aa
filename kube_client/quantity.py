"""Kubernetes resource quantities ("500m", "1Gi", "2e3"), parsed exactly.

Our own parser of the API's quantity grammar, so that a process needing only quantities
(the launcher above all) does not import the official client: its import alone costs a
launcher a quarter of a second and tens of MiB.

    quantity  ::= sign? number suffix
    number    ::= digits | digits "." digits? | "." digits
    suffix    ::= "" | binarySI (Ki Mi Gi Ti Pi Ei) | decimalSI (m k M G T P E)
                | ("e" | "E") sign? digits
"""

from __future__ import annotations

import re
from decimal import MAX_EMAX, MIN_EMIN, Decimal, InvalidOperation, localcontext
from fractions import Fraction

_QUANTITY = re.compile(r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))([KMGTPE]i|[eE][+-]?[0-9]+|[mkMGTPE]?)")
_BINARY_BITS = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_EXPONENT = {"m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def parse_quantity(value: object) -> Decimal:
    """The quantity's value; ValueError for anything the grammar does not accept. Numbers
    (JSON ints and floats) are taken as they are; booleans are not numbers here."""
    if isinstance(value, bool):
        raise ValueError(f"invalid quantity {value!r}")
    if isinstance(value, (int, float)):
        number = Decimal(value)
        if not number.is_finite():
            raise ValueError(f"invalid quantity {value!r}")
        return number
    if not isinstance(value, str):
        raise ValueError(f"invalid quantity {value!r}")
    match = _QUANTITY.fullmatch(value)
    if match is None:
        raise ValueError(f"invalid quantity {value!r}")
    digits, suffix = match.groups()
    # Precision and exponent range wide enough that no quantity is ever rounded.
    with localcontext() as context:
        context.prec = len(digits) + 20
        context.Emax, context.Emin = MAX_EMAX, MIN_EMIN
        try:
            number = Decimal(digits)
            if suffix in _BINARY_BITS:
                return number * (1 << _BINARY_BITS[suffix])
            exponent = _DECIMAL_EXPONENT[suffix] if suffix in _DECIMAL_EXPONENT else int(suffix[1:])
            return number.scaleb(exponent)
        except (InvalidOperation, ArithmeticError) as error:
            raise ValueError(f"invalid quantity {value!r}") from error


def exact_quantity(value: object) -> Fraction:
    """The quantity as a Fraction, for arithmetic that must stay exact (the downward API's
    divisions); surrounding blanks in a string are forgiven."""
    return Fraction(parse_quantity(value.strip() if isinstance(value, str) else value))
