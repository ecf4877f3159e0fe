"""Hostile layers and ADD archives against the three places layerkit unpacks tars:
``snapshot.apply_layer`` (base image layers, both whiteout modes), fileops ADD
extraction (``extract_archive``) and the rootfs exporter (``export_local``).

For every case and every unpacker: the archive is refused with a layerkit
error that names the entry, or neutralised (written inside the target only);
and the sandbox around the target is byte-for-byte unchanged, including link
counts (a hardlink to an outside file would raise one) and the parent's mtime
(a file created beside the target would change it).
"""

from __future__ import annotations

import gzip
import io
import os
import resource
import signal
import stat
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from figures import bump
from hostile import CASES, Case, build_tar, tree_state

from layerkit.content import ContentStore
from layerkit.errors import LayerkitError
from layerkit.exporter import export_local
from layerkit.fileops.archive import detect_archive, extract_archive
from layerkit.fileops.result import FileOpResult
from layerkit.snapshot.apply import apply_layer

Unpack = Callable[[bytes, Path, Path], object]  # (tar bytes, target dir, scratch dir)


def _apply_overlay(data: bytes, target: Path, scratch: Path) -> object:
    return apply_layer(io.BytesIO(data), target, whiteouts="overlay")


def _apply_delete(data: bytes, target: Path, scratch: Path) -> object:
    return apply_layer(io.BytesIO(data), target, whiteouts="delete")


def _extract(data: bytes, target: Path, scratch: Path) -> object:
    archive = scratch / "hostile.tar"
    archive.write_bytes(data)
    kind = detect_archive(archive)
    assert kind is not None, "the hostile tar must be recognised as an archive"
    result = FileOpResult()
    extract_archive(archive, kind, target, display="hostile.tar", owner=None, epoch=None,
                    result=result)
    return result


def _export(data: bytes, target: Path, scratch: Path) -> object:
    store = ContentStore(scratch / "store")
    digest = store.write_bytes(data).digest
    export_local(store, (digest,), target)
    return None


UNPACKERS: dict[str, Unpack] = {
    "apply_layer-overlay": _apply_overlay,
    "apply_layer-delete": _apply_delete,
    "add-extract": _extract,
    "export-local": _export,
}

ROOT_PROBE = Path("/etc-hostile-absolute.txt")


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """(sandbox, target, outside, scratch); outside holds a sentinel file."""
    box = tmp_path / "sandbox"
    target = box / "target"
    outside = box / "outside"
    scratch = tmp_path / "scratch"
    for p in (target, outside, scratch):
        p.mkdir(parents=True)
    (outside / "sentinel").write_text("host data\n")
    os.symlink("sentinel", outside / "sentinel-link")
    return box, target, outside, scratch


@pytest.mark.parametrize("unpacker", sorted(UNPACKERS))
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_archive_never_writes_outside(
    case: Case, unpacker: str, sandbox: tuple[Path, Path, Path, Path]
) -> None:
    box, target, outside, scratch = sandbox
    data = build_tar(case.members, outside)
    before = tree_state(box, skip=(target,))
    assert not ROOT_PROBE.exists()
    outcome = "neutralised"
    try:
        UNPACKERS[unpacker](data, target, scratch)
    except LayerkitError as err:
        outcome = "refused"
        # A clear error: a reference id, a message naming the entry, a hint.
        assert err.reference and err.hint, err
        assert "'" in err.message or '"' in err.message, err.message
    except OSError as err:  # pragma: no cover - this is the failure being tested for
        pytest.fail(f"{unpacker} crashed with a raw OSError instead of a clear error: {err!r}")
    after = tree_state(box, skip=(target,))
    assert after == before, f"{unpacker} changed files outside the target for {case.name}"
    assert not ROOT_PROBE.exists(), "an absolute member name reached the host root"
    if outcome == "neutralised":
        for rel in case.neutral:
            assert os.path.lexists(target / rel), (rel, sorted(os.listdir(target)))
        _assert_inside_only(target, outside)
    bump(f"hostile archives {outcome} ({unpacker})")


def _assert_inside_only(target: Path, outside: Path) -> None:
    """No device node other than an overlay whiteout, and no hardlink shared with
    a file outside the target."""
    outside_inodes = {os.lstat(p).st_ino for p in outside.iterdir()}
    for dirpath, dirnames, filenames in os.walk(target):
        for name in dirnames + filenames:
            st = os.lstat(Path(dirpath) / name)
            assert st.st_ino not in outside_inodes, f"{name} is a hardlink to an outside file"
            if stat.S_ISBLK(st.st_mode) or (stat.S_ISCHR(st.st_mode) and st.st_rdev != 0):
                pytest.fail(f"device node {name} created in {target}")


@pytest.mark.parametrize("unpacker", ["apply_layer-overlay", "apply_layer-delete"])
def test_layer_devices_are_skipped_with_a_warning(
    unpacker: str, sandbox: tuple[Path, Path, Path, Path]
) -> None:
    _, target, outside, scratch = sandbox
    case = next(c for c in CASES if c.name == "block-device")
    result = UNPACKERS[unpacker](build_tar(case.members, outside), target, scratch)
    assert not os.path.lexists(target / "dev" / "sda-hostile")
    assert any("device" in w for w in result.warnings)  # type: ignore[attr-defined]


def test_setuid_bits_survive_inside_the_snapshot_only(
    sandbox: tuple[Path, Path, Path, Path]
) -> None:
    """setuid is image data (Docker keeps it); it must land inside, with its bits."""
    _, target, outside, scratch = sandbox
    case = next(c for c in CASES if c.name == "setuid-root-shell")
    _apply_overlay(build_tar(case.members, outside), target, scratch)
    assert stat.S_IMODE(os.lstat(target / "bin" / "sh-suid").st_mode) == 0o4755
    assert stat.S_IMODE(os.lstat(target / "bin" / "sgid").st_mode) == 0o2755


def test_write_through_planted_symlink_lands_inside(sandbox: tuple[Path, Path, Path, Path]) -> None:
    """The CVE-2019-14271 shape: neutralised by resolving the link inside the root."""
    _, target, outside, scratch = sandbox
    case = next(c for c in CASES if c.name == "symlink-abs-then-write")
    _apply_overlay(build_tar(case.members, outside), target, scratch)
    inside = target / str(outside).lstrip("/") / "through-abs.txt"
    assert inside.read_text() == "pwned\n"
    assert os.path.islink(target / "link")


# -- huge and highly compressed entries ---------------------------------------------

BOMB_SIZE = int(os.environ.get("LAYERKIT_BOMB_BYTES", str(256 << 20)))


def _bomb(path: Path, size: int) -> None:
    """A gzip'd tar holding one file of ``size`` zero bytes (about 1000:1)."""
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        info = tarfile.TarInfo("zeros")
        info.size = size
        gz.write(info.tobuf(tarfile.PAX_FORMAT))
        block = bytes(1 << 20)
        left = size
        while left:
            n = min(left, len(block))
            gz.write(block[:n])
            left -= n
        gz.write(bytes(-size % 512) + bytes(1024))


_RSS_PROBE = r"""
import io, resource, sys
from pathlib import Path
kind, archive, target = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if kind == "apply":
    from layerkit.snapshot.apply import apply_layer
    apply_layer(archive, target, whiteouts="overlay")
else:
    from layerkit.fileops.archive import detect_archive, extract_archive
    from layerkit.fileops.result import FileOpResult
    extract_archive(archive, detect_archive(archive), target, display="bomb.tar.gz",
                    owner=None, epoch=None, result=FileOpResult())
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)
"""


@pytest.mark.parametrize("kind", ["apply", "add"])
def test_compression_bomb_streams_with_bounded_memory(kind: str, tmp_path: Path) -> None:
    """Decision (docs/reliability.md): no size cap, but constant memory. The
    layer or archive is streamed in 1 MiB chunks; its size is the disk's problem,
    exactly as with Docker, and a full disk fails with a clear ENOSPC."""
    archive = tmp_path / "bomb.tar.gz"
    _bomb(archive, BOMB_SIZE)
    assert archive.stat().st_size < BOMB_SIZE // 100
    target = tmp_path / "t"
    target.mkdir()
    proc = subprocess.run([sys.executable, "-c", _RSS_PROBE, kind, str(archive), str(target)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    grown_kib = int(proc.stdout.split()[-1])
    assert grown_kib < 64 * 1024, f"unpacking grew RSS by {grown_kib} KiB"
    assert (target / "zeros").stat().st_size == BOMB_SIZE
    bump("compression bombs unpacked in bounded memory")


def _sparse_tar(path: Path, realsize: int) -> None:
    """An old-GNU sparse entry: 512 bytes of data claiming ``realsize`` bytes."""
    info = tarfile.TarInfo("sparse")
    info.type = tarfile.GNUTYPE_SPARSE
    info.size = 512
    buf = bytearray(info.tobuf(tarfile.GNU_FORMAT))
    # old GNU header: sparse map at 386 (offset, numbytes) x4, isextended 482, realsize 483
    def octal(n: int, width: int) -> bytes:
        return (b"%0*o" % (width - 1, n)) + b"\0"
    buf[386:398] = octal(realsize - 512, 12)
    buf[398:410] = octal(512, 12)
    buf[482] = 0
    buf[483:495] = octal(realsize, 12)
    buf[148:156] = b"        "
    chk = sum(buf[:512])
    buf[148:156] = b"%06o\0 " % chk
    path.write_bytes(bytes(buf[:512]) + b"x" * 512 + bytes(1024))


@pytest.mark.parametrize("unpacker", sorted(UNPACKERS))
def test_huge_sparse_entry_is_refused_or_bounded(
    unpacker: str, sandbox: tuple[Path, Path, Path, Path]
) -> None:
    """A 1 TiB sparse file: either a clear error or a sparse file on disk, never
    1 TiB of writes or memory."""
    box, target, _, scratch = sandbox
    tar = scratch / "sparse.tar"
    _sparse_tar(tar, 1 << 40)
    before = tree_state(box, skip=(target,))
    # Should a regression expand the holes, fail on EFBIG instead of filling the disk.
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 20, old_limit[1]))
    try:
        UNPACKERS[unpacker](tar.read_bytes(), target, scratch)
    except LayerkitError as err:
        assert err.hint and "sparse" in err.message
        bump(f"hostile archives refused ({unpacker})")
    else:
        st = os.lstat(target / "sparse") if os.path.lexists(target / "sparse") else None
        if st is not None:
            assert st.st_blocks * 512 < 64 << 20, "the sparse file was written out densely"
        bump(f"hostile archives neutralised ({unpacker})")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    assert tree_state(box, skip=(target,)) == before
