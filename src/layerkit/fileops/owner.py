"""Turns a ``--chown`` (or WORKDIR user) string into numeric ids, BuildKit's way.

Names are looked up in the destination root's /etc/passwd and /etc/group
(resolved in scope, through :func:`layerkit.executor.user.resolve_user`).
Unlike RUN's USER, a numeric user given alone gives the same number as gid
(BuildKit ``readUser``: ``--chown=1000`` is 1000:1000), and a name alone gives
the user's primary group.
"""

from __future__ import annotations

from pathlib import Path

from layerkit.errors import BuildError
from layerkit.executor.user import resolve_user
from layerkit.fastclass import dataclass
from layerkit.fileops.errors import FileOpError


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int


def resolve_owner(dest_root: Path, chown: str, *, flag: str = "--chown") -> Owner | None:
    """``user[:group]`` → Owner, or None for "" (keep the default ownership)."""
    if chown == "":
        return None
    user, sep, group = chown.partition(":")
    if user == "" or (sep and group == ""):
        raise FileOpError(
            f"invalid {flag} value {chown!r}",
            hint=f"use {flag}=user, {flag}=user:group, or numeric ids such as {flag}=1000:1000",
            reference="copy-invalid-chown",
        )
    try:
        if user.isdigit():
            uid = int(user)
            if not group:
                return Owner(uid, uid)
            return Owner(uid, resolve_user(dest_root, f"{uid}:{group}").gid)
        resolved = resolve_user(dest_root, chown)
    except BuildError as exc:
        raise FileOpError(
            f"{flag}={chown}: {exc.message}",
            hint=(exc.hint or "") + " (names are looked up in the destination's /etc/passwd "
            "and /etc/group)",
            reference="copy-invalid-chown",
        ) from exc
    return Owner(resolved.uid, resolved.gid)
