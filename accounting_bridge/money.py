"""The currency's scale: every amount a decoder hands out is written with its currency's decimals.

One rule for every adapter (issue 15 item 4): an amount read from a backend comes back at the scale of its
currency — two decimals for CHF, DKK, EUR and any currency not listed here, the ISO 4217 minor unit for the few
that differ (JPY 0, KWD 3, ...). ``Decimal("1250")``, ``Decimal("300.0")`` and a JSON ``100.0`` all become
``1250.00`` / ``300.00`` / ``100.00``; ``-0`` becomes ``0.00``.

Nothing is ever rounded: an amount with digits finer than the scale (``0.125``, a unit price of ``0.0375``) is
returned exactly as the backend sent it. Trailing zeros beyond the scale are no precision (``300.000`` → ``300.00``).
Rounding is a business rule of whoever computes an amount, not of the decoder that reads one.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

__all__ = ["DEFAULT_SCALE", "at_scale", "at_scale_or_none", "scale_of"]

#: The scale of CHF, DKK, EUR and of every currency not in `_OTHER_SCALES` (or not given).
DEFAULT_SCALE = 2

# ISO 4217 minor units that are not 2, one scale per row (an unknown code falls back to two decimals).
_ISO_4217_OTHER_SCALES = """
0 BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF
3 BHD IQD JOD KWD LYD OMR TND
4 CLF UYW
"""
_OTHER_SCALES = {code: int(row[0]) for row in _ISO_4217_OTHER_SCALES.strip().splitlines() for code in row.split()[1:]}
_DEFAULT_QUANTUM = Decimal(1).scaleb(-DEFAULT_SCALE)
_QUANTA: dict[str, Decimal] = {code: Decimal(1).scaleb(-scale) for code, scale in _OTHER_SCALES.items()}


def scale_of(currency: str | None) -> int:
    """The number of decimals of `currency` (ISO 4217 code, any case); two when it is None or unknown."""
    if not currency:
        return DEFAULT_SCALE
    return _OTHER_SCALES.get(currency.upper(), DEFAULT_SCALE)


def at_scale(amount: Decimal, currency: str | None = None) -> Decimal:
    """`amount` written with the decimals of `currency`; an amount with finer digits is returned as it is."""
    quantum = _QUANTA.get(currency.upper(), _DEFAULT_QUANTUM) if currency else _DEFAULT_QUANTUM
    try:
        scaled = amount.quantize(quantum)
    except InvalidOperation:  # not finite, or more digits than the context holds: nothing to pad
        return amount
    if scaled != amount:
        return amount  # finer than the scale: the backend's exact amount, never rounded away
    return scaled if scaled else scaled.copy_abs()  # no "-0.00"


def at_scale_or_none(amount: Decimal | None, currency: str | None = None) -> Decimal | None:
    """`at_scale` for an optional amount."""
    return None if amount is None else at_scale(amount, currency)
