"""Turns a ``--chmod`` value into a function from an entry's mode to its new mode.

Two forms, as BuildKit accepts them:

* octal, ``0`` to ``07777`` ("644", "0755", "4755");
* symbolic, as chmod(1) reads it: comma-separated clauses
  ``[ugoa]*([-+=]([rwxXst]*|[ugo]))+``. Without a who letter the clause
  applies to all (no umask: a build has none). ``X`` sets execute only on
  directories and on files that already have an execute bit.

Only permission, setuid/setgid and sticky bits are touched; the file type
bits are never changed.
"""

from __future__ import annotations

import re
import stat
from typing import Final

from layerkit.fastclass import dataclass
from layerkit.fileops.errors import FileOpError

_CLAUSE: Final = re.compile(r"^([ugoa]*)((?:[-+=](?:[rwxXst]*|[ugo]))+)$")
_ACTION: Final = re.compile(r"([-+=])([ugo]|[rwxXst]*)")
_WHO_BITS: Final = {"u": 0o4700, "g": 0o2070, "o": 0o1007}
_PERM_SHIFT: Final = {"u": 6, "g": 3, "o": 0}


def _invalid(value: str) -> FileOpError:
    return FileOpError(
        f"invalid chmod parameter: '{value}'. it should be octal string and between 0 and 07777",
        hint="use an octal mode such as --chmod=0644, or a symbolic one such as "
        "--chmod=u=rw,go=r or --chmod=a+X",
        reference="copy-invalid-chmod",
    )


@dataclass(frozen=True)
class ModeSpec:
    """A parsed ``--chmod``: ``octal`` when numeric, else the symbolic clauses."""

    text: str
    octal: int | None
    clauses: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    def apply(self, mode: int, *, is_dir: bool) -> int:
        """The permission bits (with setuid/setgid/sticky) for an entry whose
        current mode is ``mode`` (type bits ignored)."""
        if self.octal is not None:
            return self.octal
        current = stat.S_IMODE(mode)
        for who, actions in self.clauses:
            for op, perms in actions:
                current = _apply_action(current, who or "a", op, perms, is_dir)
        return current


def parse_chmod(value: str) -> ModeSpec | None:
    """Parse a ``--chmod`` value; "" means no change (None)."""
    if value == "":
        return None
    if value.isdigit():
        if any(c in "89" for c in value) or int(value, 8) > 0o7777:
            raise _invalid(value)
        return ModeSpec(value, int(value, 8))
    clauses = []
    for clause in value.split(","):
        m = _CLAUSE.match(clause)
        if m is None:
            raise _invalid(value)
        actions = tuple((a.group(1), a.group(2)) for a in _ACTION.finditer(m.group(2)))
        clauses.append((m.group(1), actions))
    return ModeSpec(value, None, tuple(clauses))


def _apply_action(current: int, who: str, op: str, perms: str, is_dir: bool) -> int:
    targets = "ugo" if "a" in who else "".join(dict.fromkeys(who))
    if perms in ("u", "g", "o"):
        # Copy another class's rwx bits ("g=u").
        rwx = (current >> _PERM_SHIFT[perms]) & 0o7
        value = 0
        for t in targets:
            value |= rwx << _PERM_SHIFT[t]
    else:
        value = 0
        rwx = 0
        if "r" in perms:
            rwx |= 0o4
        if "w" in perms:
            rwx |= 0o2
        if "x" in perms or ("X" in perms and (is_dir or current & 0o111)):
            rwx |= 0o1
        for t in targets:
            value |= rwx << _PERM_SHIFT[t]
        if "s" in perms:
            value |= (stat.S_ISUID if "u" in targets else 0) | (
                stat.S_ISGID if "g" in targets else 0)
        if "t" in perms and "o" in targets:
            value |= stat.S_ISVTX
    if op == "+":
        return current | value
    if op == "-":
        return current & ~value
    # "=": clear what the named classes own, then set.
    mask = 0
    for t in targets:
        mask |= _WHO_BITS[t]
    return (current & ~mask) | value
