"""Go-style durations: turns ``"1m30s"`` or ``"250ms"`` into nanoseconds.

HEALTHCHECK's ``--interval`` and friends are parsed with Go's
``time.ParseDuration``; this module accepts exactly that grammar: an optional
sign, then one or more ``<decimal><unit>`` groups with units ns, us (µs, μs),
ms, s, m, h. A bare ``0`` is allowed.
"""

from __future__ import annotations

import re

__all__ = ["format_duration", "parse_duration"]

_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_GROUP = re.compile(r"(\d*\.?\d*)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> int:
    """Nanoseconds in ``text``; ``ValueError`` with Go's message when invalid."""
    from decimal import Decimal, InvalidOperation  # only HEALTHCHECK needs it (~2 ms import)

    err = ValueError(f"time: invalid duration {text!r}".replace("'", '"'))
    s = text
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise err
    total = Decimal(0)
    pos = 0
    while pos < len(s):
        m = _GROUP.match(s, pos)
        if m is None or m.group(1) in ("", "."):
            if m is None and re.match(r"\d*\.?\d*$", s[pos:]):
                raise ValueError(f'time: missing unit in duration "{text}"')
            raise err
        try:
            total += Decimal(m.group(1)) * _UNITS[m.group(2)]
        except InvalidOperation as exc:
            raise err from exc
        pos = m.end()
    return sign * int(total)


def format_duration(ns: int) -> str:
    """A compact form for display, e.g. ``30s`` or ``1m30s`` (not Go's exact format)."""
    if ns == 0:
        return "0s"
    out = []
    rest = abs(ns)
    for unit, size in (("h", _UNITS["h"]), ("m", _UNITS["m"])):
        if rest >= size:
            out.append(f"{rest // size}{unit}")
            rest %= size
    if rest:
        if rest % 1_000_000_000 == 0:
            out.append(f"{rest // 1_000_000_000}s")
        elif rest % 1_000_000 == 0 and not out:
            out.append(f"{rest // 1_000_000}ms")
        else:
            from decimal import Decimal

            out.append(f"{Decimal(rest) / Decimal(1_000_000_000)}s")
    return ("-" if ns < 0 else "") + "".join(out)
