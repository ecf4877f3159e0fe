"""Turns sizes and ages into text and back, the way the docker CLI does.

* :func:`parse_size` reads ``--keep-storage`` values like docker's
  ``units.RAMInBytes``: a decimal number and an optional case-insensitive
  suffix ``b, k/kb, m/mb, g/gb, t/tb, p/pb``, **binary** multipliers
  (``10GB`` = 10 GiB, ``1.5G`` = 1.5 GiB, ``512mb`` = 512 MiB).
* :func:`human_size` prints like ``units.HumanSizeWithPrecision(n, 3)`` (decimal
  units: ``4.26MB``, ``0B``), as ``docker images`` and ``docker history`` do.
* :func:`human_duration` is ``units.HumanDuration`` ("2 weeks", "About an hour").
"""

from __future__ import annotations

import re

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgtp]?)(i?b)?\s*$", re.IGNORECASE)
_BINARY = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def parse_size(text: str) -> int:
    """Bytes in ``text`` (``"10GB"``, ``"512mb"``, ``"1.5G"``, ``"1024"``); ValueError if bad."""
    m = _SIZE_RE.match(text)
    if m is None:
        raise ValueError(f"invalid size: {text!r}")
    number, prefix, _b = m.groups()
    return int(float(number) * _BINARY[prefix.lower()])


def human_size(size: float) -> str:
    """``4.26MB``, ``977kB``, ``0B``: three significant digits, decimal units."""
    i = 0
    # Round first: docker prints 999999 as "1e+03kB"; we carry it over to "1MB".
    while float(f"{size:.3g}") >= 1000 and i < len(_DECIMAL_UNITS) - 1:
        size /= 1000
        i += 1
    return f"{size:.3g}{_DECIMAL_UNITS[i]}"


def human_duration(seconds: float) -> str:
    """Docker's ``units.HumanDuration`` (callers append " ago")."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"
