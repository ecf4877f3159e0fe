"""Resolves a USER string ("name", "uid", "name:group", "uid:gid") to numeric
ids using the rootfs's /etc/passwd and /etc/group, as BuildKit and runc's
libcontainer do: a numeric user missing from passwd gets gid 0; without an
explicit group the user's supplementary groups come from /etc/group members."""

from __future__ import annotations

from pathlib import Path

from layerkit.errors import BuildError
from layerkit.fastclass import dataclass
from layerkit.snapshot.scope import resolve_in_root


@dataclass(frozen=True)
class ResolvedUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()


def _read_db(rootfs: Path, name: str) -> list[list[str]]:
    # Resolved in scope: an image's /etc/passwd may be a symlink to anywhere.
    path = resolve_in_root(rootfs, name, follow_final=True)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return []
    rows = []
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            rows.append(line.split(":"))
    return rows


def _num(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def resolve_user(rootfs: Path, user: str) -> ResolvedUser:
    """Numeric uid, gid and supplementary gids for ``user`` in ``rootfs``."""
    if user == "":
        return ResolvedUser(0, 0)
    name_part, _, group_part = user.partition(":")
    passwd = [r for r in _read_db(rootfs, "etc/passwd") if len(r) >= 4]
    uid_arg = _num(name_part)
    entry = next((r for r in passwd
                  if (uid_arg is None and r[0] == name_part)
                  or (uid_arg is not None and _num(r[2]) == uid_arg)), None)
    if entry is None and uid_arg is None:
        raise BuildError(
            f"unable to find user {name_part}: no matching entries in passwd file",
            hint=f"create the user first (RUN adduser {name_part}) or use a numeric uid",
            reference="run-user",
        )
    if entry is not None:
        uid = uid_arg if uid_arg is not None else (_num(entry[2]) or 0)
        gid = _num(entry[3]) or 0
    else:
        uid, gid = uid_arg or 0, 0
    groups = [r for r in _read_db(rootfs, "etc/group") if len(r) >= 3]
    if group_part:
        gid_arg = _num(group_part)
        if gid_arg is not None:
            return ResolvedUser(uid, gid_arg)
        match = next((r for r in groups if r[0] == group_part), None)
        if match is None or _num(match[2]) is None:
            raise BuildError(
                f"unable to find group {group_part}: no matching entries in group file",
                hint=f"create the group first (RUN addgroup {group_part}) or use a numeric gid",
                reference="run-user",
            )
        return ResolvedUser(uid, int(match[2]))
    if entry is None:
        return ResolvedUser(uid, 0)
    username = entry[0]
    extra = sorted({int(r[2]) for r in groups if len(r) >= 4 and r[2].isdigit()
                    and username in r[3].split(",")})
    return ResolvedUser(uid, gid, tuple(extra))
