"""Hostile tar archives as data, and a watcher that proves nothing was written outside.

Each case is a name and a list of tar members. A member is ``(kind, name,
extra)`` where ``extra`` is file data, a link target, or device numbers. The
cases use absolute paths into the test's own sandbox (``{OUT}``) as link
targets, so a tool that followed one on the host would write where the
watcher looks.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

OUT = "{OUT}"  # replaced by the sandbox's "outside" directory


@dataclass(frozen=True)
class Member:
    kind: str  # file | dir | symlink | hardlink | chr | blk | fifo
    name: str
    data: bytes | str = b""
    mode: int = 0o644
    dev: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class Case:
    """A hostile archive. ``neutral`` lists the paths (relative to the target)
    that must exist afterwards when the tool neutralises instead of refusing."""

    name: str
    members: tuple[Member, ...]
    neutral: tuple[str, ...] = ()


def f(name: str, data: bytes = b"pwned\n", mode: int = 0o644) -> Member:
    return Member("file", name, data, mode)


def d(name: str, mode: int = 0o755) -> Member:
    return Member("dir", name, b"", mode)


def sym(name: str, target: str) -> Member:
    return Member("symlink", name, target, 0o777)


def hard(name: str, target: str) -> Member:
    return Member("hardlink", name, target)


CASES: tuple[Case, ...] = (
    Case("dotdot-file", (f("../escape.txt"),)),
    Case("dotdot-nested", (d("a"), f("a/../../escape.txt"))),
    Case("dotdot-deep", (f("a/b/../../../../escape.txt"),)),
    Case("absolute-file", (f(f"{OUT}/abs.txt"),)),
    Case("absolute-root-file", (f("/etc-hostile-absolute.txt"),)),
    Case("symlink-abs-then-write", (sym("link", OUT), f("link/through-abs.txt"))),
    Case("symlink-rel-then-write", (sym("link", "../../../../../../" + OUT.lstrip("/")),
                                    f("link/through-rel.txt"))),
    Case("symlink-dotdot-then-write", (sym("up", ".."), f("up/through-dotdot.txt"))),
    Case("symlink-chain-then-write", (sym("a", "b"), sym("b", OUT), f("a/chain.txt"))),
    Case("symlink-then-overwrite", (sym("sentinel", f"{OUT}/sentinel"),
                                    f("sentinel", b"overwritten\n"))),
    Case("symlink-dir-then-dir", (sym("etc", OUT), d("etc", 0o777), f("etc/x"))),
    Case("symlink-parent-swap", (d("dir"), f("dir/ok"), sym("dir", OUT), f("dir/late.txt"))),
    Case("hardlink-absolute", (hard("h", f"{OUT}/sentinel"),)),
    Case("hardlink-dotdot", (hard("h", "../outside/sentinel"),)),
    Case("hardlink-through-symlink", (sym("l", OUT), hard("h", "l/sentinel"))),
    Case("hardlink-then-write", (hard("h", f"{OUT}/sentinel"), f("h", b"overwritten\n"))),
    Case("symlink-loop", (sym("a", "b"), sym("b", "a"), f("a/x"))),
    Case("char-device", (Member("chr", "dev/kmsg2", dev=(1, 11)),)),
    Case("block-device", (Member("blk", "dev/sda-hostile", dev=(8, 0)),)),
    Case("setuid-root-shell", (f("bin/sh-suid", b"#!/bin/sh\n", 0o4755),
                               f("bin/sgid", b"x", 0o2755))),
    Case("duplicates-file-dir-file", (f("dup"), d("dup"), f("dup/inner"), f("dup", b"last\n")),
         neutral=("dup",)),
    Case("duplicate-dir-over-symlink", (sym("x", OUT), d("x"), f("x/y")), neutral=("x/y",)),
    Case("whiteout-through-symlink", (sym("link", OUT), f("link/.wh.sentinel"))),
    Case("whiteout-dotdot", (f("../.wh.sentinel"),)),
    Case("whiteout-opaque-through-symlink", (sym("link", OUT), f("link/.wh..wh..opq"))),
    Case("whiteout-absolute", (f(f"{OUT}/.wh.sentinel"),)),
    Case("parent-is-file", (f("p"), f("p/child"))),
)


def build_tar(members: tuple[Member, ...], outside: Path) -> bytes:
    """The tar bytes of ``members``, with ``{OUT}`` replaced by ``outside``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for m in members:
            info = tarfile.TarInfo(m.name.replace(OUT, str(outside)))
            info.mode = m.mode
            info.mtime = 1_700_000_000
            data = m.data if isinstance(m.data, bytes) else m.data.encode()
            payload: io.BytesIO | None = None
            if m.kind == "file":
                info.size = len(data)
                payload = io.BytesIO(data)
            elif m.kind == "dir":
                info.type = tarfile.DIRTYPE
            elif m.kind in ("symlink", "hardlink"):
                info.type = tarfile.SYMTYPE if m.kind == "symlink" else tarfile.LNKTYPE
                info.linkname = str(m.data).replace(OUT, str(outside))
            elif m.kind in ("chr", "blk"):
                info.type = tarfile.CHRTYPE if m.kind == "chr" else tarfile.BLKTYPE
                info.devmajor, info.devminor = m.dev
            elif m.kind == "fifo":
                info.type = tarfile.FIFOTYPE
            tf.addfile(info, payload)
    return buf.getvalue()


# -- watching the filesystem around a target ------------------------------------------


def _describe(path: Path, st: os.stat_result) -> tuple[object, ...]:
    kind = stat.S_IFMT(st.st_mode)
    extra: object = None
    if stat.S_ISREG(st.st_mode):
        extra = hashlib.sha256(path.read_bytes()).hexdigest()
    elif stat.S_ISLNK(st.st_mode):
        extra = os.readlink(path)
    return (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_size, st.st_nlink,
            st.st_mtime_ns, extra)


def tree_state(top: Path, *, skip: tuple[Path, ...] = ()) -> dict[str, tuple[object, ...]]:
    """Every path under ``top`` (not following links), except the ``skip`` trees,
    with its type, mode, owner, size, link count, mtime and content hash."""
    out: dict[str, tuple[object, ...]] = {}
    skipped = {str(p) for p in skip}

    def visit(path: Path) -> Iterator[Path]:
        yield path
        if str(path) in skipped:
            return
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            for child in sorted(os.listdir(path)):
                yield from visit(path / child)

    for path in visit(top):
        if str(path) in skipped:
            continue  # the target itself changes; its parent's mtime is tracked
        st = os.lstat(path)
        out[str(path)] = _describe(path, st)
    return out
