"""Explanations: why a step missed the cache, from the plain inputs of two keys.

The solver stores, for every key, the inputs that went into it (see
``keystore.StepRecord.inputs``). When a step misses, the closest earlier record
for the same step is compared field by field, and the first differences found
become the reason the user reads, e.g. ``app/main.py changed`` or
``build-arg VERSION changed (1.2 → 1.3)``.

Input fields understood here (all optional):

- ``instruction``: the instruction text after expansion;
- ``base``: the base image digest (for FROM);
- ``parent``: the parent step's key, ``parent_label``: how to name it ("step 5"),
  ``parent_ran``: whether the parent ran in this build ("parent step 5 ran");
- ``args``: declared build args in scope, name → value;
- ``env``, ``user``, ``workdir``, ``shell``, ``network``, ``platform``;
- ``files``: relative path → checksum of each source a COPY/ADD selected;
- ``mounts``: canonical text of each bind/cache mount.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# How many changed file names to spell out before summarising the rest.
_MAX_FILES_SHOWN = 3


def explain_miss(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> str:
    """One line saying why ``new`` did not match ``old`` (the closest earlier record)."""
    if old is None:
        return "no earlier build of this step in the cache"
    reasons = differences(old, new)
    if not reasons:
        return "cache record found but its result is no longer in the store"
    return "; ".join(reasons)


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Every input that differs, most significant first."""
    reasons: list[str] = []
    if old.get("schema") != new.get("schema"):
        reasons.append("cache key rules changed (new layerkit version)")
    if old.get("base") != new.get("base"):
        reasons.append(_changed("base image", old.get("base"), new.get("base")))
    if old.get("instruction") != new.get("instruction"):
        reasons.append("instruction changed")
    reasons.extend(_mapping_changes("build-arg", old.get("args"), new.get("args")))
    reasons.extend(_mapping_changes("ENV", old.get("env"), new.get("env")))
    for field in ("user", "workdir", "shell", "network", "platform"):
        if old.get(field) != new.get(field):
            reasons.append(_changed(field.upper(), old.get(field), new.get(field)))
    files = changed_files(old.get("files") or {}, new.get("files") or {})
    if files:
        reasons.append(describe_files(files))
    if old.get("mounts") != new.get("mounts"):
        reasons.append("mounts changed")
    # The step's own inputs come first; the parent is named last (and only once).
    if old.get("parent") != new.get("parent"):
        label = new.get("parent_label") or "the parent step"
        reasons.append(f"parent {label} ran" if new.get("parent_ran") else f"{label} changed")
    return reasons


def changed_files(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """Paths added, removed or with a different checksum, sorted."""
    names = set(old) | set(new)
    return sorted(n for n in names if old.get(n) != new.get(n))


def describe_files(paths: Sequence[str]) -> str:
    shown = ", ".join(paths[:_MAX_FILES_SHOWN])
    rest = len(paths) - _MAX_FILES_SHOWN
    more = f" and {rest} more" if rest > 0 else ""
    return f"{shown}{more} changed"


def _mapping_changes(
    what: str, old: Mapping[str, str] | None, new: Mapping[str, str] | None
) -> list[str]:
    old = old or {}
    new = new or {}
    out = []
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            out.append(_changed(f"{what} {name}", old.get(name), new.get(name)))
    return out


def _changed(what: str, old: object, new: object) -> str:
    if old is None:
        return f"{what} added ({_short(new)})"
    if new is None:
        return f"{what} removed (was {_short(old)})"
    return f"{what} changed ({_short(old)} → {_short(new)})"


def _short(value: object) -> str:
    text = str(value)
    if text.startswith("sha256:") and len(text) > 19:
        return text[:19]
    return text if len(text) <= 40 else text[:37] + "..."
