"""Removes the mount points the runtime had to create inside the rootfs.

When a mount target (``/proc``, ``/etc/hosts``, a cache or secret target...)
does not exist in the rootfs, the runtime creates an empty directory or file
for it, which would otherwise show up in the layer diff. Like BuildKit's
``MountStubsCleaner`` we record, before the run, which paths are missing; after
the run we remove those that are still empty, deepest first, and put back the
mtime of the directory that held them when its listing is unchanged (so an
overlay copy-up of that directory is not mistaken for a change).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from layerkit.fastclass import dataclass, field
from layerkit.snapshot.scope import resolve_in_root


@dataclass
class _Chain:
    anchor: Path  # deepest existing directory
    anchor_times: tuple[int, int]
    anchor_names: frozenset[str]
    missing: list[Path] = field(default_factory=list)  # shallow → deep


class MountStubs:
    """Record before the run (constructor), `cleanup` after it."""

    def __init__(self, rootfs: Path, destinations: Iterable[str]) -> None:
        self.rootfs = rootfs
        self.chains: list[_Chain] = []
        for dest in destinations:
            chain = self._record(dest)
            if chain is not None:
                self.chains.append(chain)

    def _record(self, dest: str) -> _Chain | None:
        parts = [p for p in dest.split("/") if p not in ("", ".")]
        for i in range(len(parts)):
            host = resolve_in_root(self.rootfs, "/".join(parts[: i + 1]), follow_final=True)
            if os.path.lexists(host):
                continue
            anchor = host.parent
            try:
                st = os.stat(anchor)
                names = frozenset(os.listdir(anchor))
            except OSError:
                return None
            missing = [host]
            for part in parts[i + 1:]:
                missing.append(missing[-1] / part)
            return _Chain(anchor, (st.st_atime_ns, st.st_mtime_ns), names, missing)
        return None

    def cleanup(self) -> list[Path]:
        """Remove still-empty stubs; returns what was removed."""
        removed: list[Path] = []
        for chain in self.chains:
            complete = True
            for path in reversed(chain.missing):
                try:
                    st = os.lstat(path)
                except FileNotFoundError:
                    continue
                empty_dir = stat.S_ISDIR(st.st_mode) and not os.listdir(path)
                empty_file = stat.S_ISREG(st.st_mode) and st.st_size == 0
                if not (empty_dir or empty_file):
                    complete = False
                    break
                if empty_dir:
                    os.rmdir(path)
                else:
                    os.unlink(path)
                removed.append(path)
            if not complete:
                continue
            try:
                if frozenset(os.listdir(chain.anchor)) == chain.anchor_names:
                    os.utime(chain.anchor, ns=chain.anchor_times)
            except OSError:
                continue
        return removed
