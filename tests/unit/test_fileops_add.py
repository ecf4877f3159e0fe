"""ADD semantics of layerkit.fileops: archives, URLs, checksums (BuildKit cases cited)."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import zstandard

from layerkit.context.dockerignore import IgnoreRules
from layerkit.fileops import (
    FileOpError,
    apply_file_op,
    check_checksum_sources,
    detect_archive,
    fetch_url,
)
from layerkit.graph.ops import AddUrlAction, CopyAction, FileOp

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")


def make_tar(entries: list[tuple[str, str, str]], *, uid: int = 0) -> bytes:
    """(name, type, data-or-linkname) → tar bytes; types: file, dir, sym, hard."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            info.uid = info.gid = uid
            info.mtime = 1_000_000
            payload = None
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, data
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, data
            else:
                info.size, info.mode = len(data), 0o644
                payload = io.BytesIO(data.encode())
            tf.addfile(info, payload)
    return buf.getvalue()


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "none": lambda b: b,
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
}


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    (tmp_path / "root").mkdir()
    (tmp_path / "ctx").mkdir()
    return tmp_path


def add(tmp: Path, sources: tuple[str, ...], dest: str, **kw: object) -> None:
    kw.setdefault("unpack", True)
    action = CopyAction(1, sources, dest, **kw)  # type: ignore[arg-type]
    apply_file_op(FileOp((action,)), dest_root=tmp / "root", inputs={1: tmp / "ctx"},
                  ignore=IgnoreRules())


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_local_archive_extracted_by_content_testDockerfileAddArchive(tmp: Path, kind: str) -> None:
    data = COMPRESSORS[kind](make_tar([("foo", "file", "hello")]))
    (tmp / "ctx/archive.bin").write_bytes(data)  # the name says nothing
    assert detect_archive(tmp / "ctx/archive.bin") == kind
    add(tmp, ("archive.bin",), "/")
    assert (tmp / "root/foo").read_text() == "hello"


def test_unpack_false_and_copy_keep_archive_testDockerfileAddArchive(tmp: Path) -> None:
    (tmp / "ctx/t.tar").write_bytes(make_tar([("foo", "file", "x")]))
    add(tmp, ("t.tar",), "/kept/", unpack=False)
    assert (tmp / "root/kept/t.tar").is_file()
    assert not (tmp / "root/kept/foo").exists()


def test_non_archive_copied(tmp: Path) -> None:
    (tmp / "ctx/plain.tar.gz").write_text("not really")
    (tmp / "ctx/empty.tar").write_bytes(b"\0" * 1024)
    add(tmp, ("plain.tar.gz", "empty.tar"), "/d/")
    assert (tmp / "root/d/plain.tar.gz").read_text() == "not really"
    assert (tmp / "root/d/empty.tar").stat().st_size == 1024


def test_archive_into_dest_without_slash_and_implied_parents_testDockerfileAddArchiveWithImpliedParentDir(  # noqa: E501
        tmp: Path) -> None:
    (tmp / "ctx/t.tar").write_bytes(make_tar([("a/b/c.txt", "file", "deep")]))
    add(tmp, ("t.tar",), "/out")
    assert (tmp / "root/out/a/b/c.txt").read_text() == "deep"
    assert os.stat(tmp / "root/out/a").st_mode & 0o7777 == 0o755


def test_archive_through_absolute_symlink_testDockerfileAddArchiveThroughAbsoluteSymlink(
        tmp: Path) -> None:
    (tmp / "root/var/run").mkdir(parents=True)
    os.symlink("/var/run", tmp / "root/run")
    (tmp / "ctx/t.tar").write_bytes(make_tar([("run/x", "file", "x")]))
    add(tmp, ("t.tar",), "/")
    assert (tmp / "root/var/run/x").read_text() == "x"


@needs_root
def test_archive_chown_testDockerfileAddChownArchive(tmp: Path) -> None:
    (tmp / "ctx/t.tar").write_bytes(make_tar([("d/", "dir", ""), ("d/f", "file", "f")],
                                             uid=7))
    add(tmp, ("t.tar",), "/out/", chown="100:200")
    for p in ("out/d", "out/d/f"):
        st = os.lstat(tmp / "root" / p)
        assert (st.st_uid, st.st_gid) == (100, 200)
    add(tmp, ("t.tar",), "/keep/")
    assert os.lstat(tmp / "root/keep/d/f").st_uid == 7


def test_archive_wildcard_testDockerfileAddArchiveWildcard(tmp: Path) -> None:
    (tmp / "ctx/a.tar").write_bytes(make_tar([("fromA", "file", "a")]))
    (tmp / "ctx/b.tar").write_bytes(gzip.compress(make_tar([("fromB", "file", "b")])))
    add(tmp, ("*.tar",), "/dest")
    assert sorted(os.listdir(tmp / "root/dest")) == ["fromA", "fromB"]


@pytest.mark.parametrize(("entries", "problem"), [
    ([("../evil", "file", "x")], "climbs out"),
    ([("a/../../evil", "file", "x")], "climbs out"),
    ([("link", "sym", "../../etc"), ], "points outside"),
    ([("h", "hard", "../etc/passwd")], "outside"),
])
def test_unsafe_archive_refused(tmp: Path, entries: list[tuple[str, str, str]],
                                problem: str) -> None:
    (tmp / "ctx/bad.tar").write_bytes(make_tar(entries))
    with pytest.raises(FileOpError, match=problem):
        add(tmp, ("bad.tar",), "/x/")
    assert not (tmp / "evil").exists()


def test_archive_symlink_cannot_redirect_writes(tmp: Path) -> None:
    (tmp / "ctx/t.tar").write_bytes(make_tar([("esc", "sym", "/"), ("esc/pwned", "file", "x"),
                                              ("abs/", "dir", ""), ("/abs/f", "file", "y")]))
    add(tmp, ("t.tar",), "/x/")
    # "/" inside the extraction root is the extraction directory itself.
    assert (tmp / "root/x/pwned").read_text() == "x"
    assert (tmp / "root/x/abs/f").read_text() == "y"
    assert not (tmp / "pwned").exists()


def test_archive_hardlinks(tmp: Path) -> None:
    (tmp / "ctx/t.tar").write_bytes(make_tar([("a", "file", "same"), ("b", "hard", "a")]))
    add(tmp, ("t.tar",), "/h/")
    assert os.stat(tmp / "root/h/a").st_ino == os.stat(tmp / "root/h/b").st_ino


def _fake_fetch(tmp: Path, body: bytes, mtime: int | None = None) -> object:
    def fetch(url: str) -> Path:
        path = tmp / "download"
        path.write_bytes(body)
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        return path
    return fetch


def url_op(tmp: Path, action: AddUrlAction, fetch: object) -> None:
    apply_file_op(FileOp((action,)), dest_root=tmp / "root", inputs={1: None},
                  fetch=fetch)  # type: ignore[arg-type]


def test_url_to_dir_uses_basename_and_is_not_extracted_testDockerfileAddArchive(
        tmp: Path) -> None:
    body = gzip.compress(make_tar([("foo", "file", "x")]))
    url_op(tmp, AddUrlAction(1, "http://h/path/t.tar.gz?x=1", "/dl/"),
           _fake_fetch(tmp, body, mtime=1_500_000))
    out = tmp / "root/dl/t.tar.gz"
    assert out.read_bytes() == body
    assert os.stat(out).st_mode & 0o7777 == 0o600
    assert os.stat(out).st_mtime == 1_500_000


def test_url_chmod_testAddURLChmod(tmp: Path) -> None:
    url_op(tmp, AddUrlAction(1, "http://h/f", "/f", chmod="644"), _fake_fetch(tmp, b"x"))
    assert os.stat(tmp / "root/f").st_mode & 0o7777 == 0o644


def test_checksum_testAddChecksum(tmp: Path) -> None:
    body = b"payload"
    good = "sha256:" + hashlib.sha256(body).hexdigest()
    url_op(tmp, AddUrlAction(1, "http://h/f", "/ok", checksum=good), _fake_fetch(tmp, body))
    assert (tmp / "root/ok").read_bytes() == body
    bad = "sha256:" + "0" * 64
    with pytest.raises(FileOpError, match="digest mismatch"):
        url_op(tmp, AddUrlAction(1, "http://h/f", "/bad", checksum=bad), _fake_fetch(tmp, body))
    with pytest.raises(FileOpError, match="unsupported digest algorithm"):
        url_op(tmp, AddUrlAction(1, "http://h/f", "/m", checksum="md5:" + "0" * 32),
               _fake_fetch(tmp, body))
    with pytest.raises(FileOpError, match="invalid checksum digest format"):
        url_op(tmp, AddUrlAction(1, "http://h/f", "/m", checksum="0" * 64),
               _fake_fetch(tmp, body))


def test_checksum_on_local_source_refused_testAddChecksum() -> None:
    with pytest.raises(FileOpError, match="checksum requires HTTP"):
        check_checksum_sources(("local.txt",), "sha256:" + "0" * 64)
    check_checksum_sources(("https://example.com/x",), "sha256:" + "0" * 64)


def test_fetch_url_follows_redirects_and_verifies() -> None:
    body = b"remote bytes"

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old":
            return httpx.Response(302, headers={"location": "http://h/new/file.bin"})
        if request.url.path == "/new/file.bin":
            return httpx.Response(200, content=body, headers={
                "last-modified": "Wed, 21 Oct 2015 07:28:00 GMT"})
        return httpx.Response(404)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    path = fetch_url("http://h/old", checksum=digest, client=client)
    assert path.read_bytes() == body
    assert int(path.stat().st_mtime) == 1445412480
    with pytest.raises(FileOpError, match="digest mismatch"):
        fetch_url("http://h/old", checksum="sha256:" + "1" * 64, client=client)
    with pytest.raises(FileOpError, match="404"):
        fetch_url("http://h/missing", client=client)
