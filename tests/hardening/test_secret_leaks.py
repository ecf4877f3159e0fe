"""Secrets: a value passed with ``--secret`` never appears in anything layerkit writes.

Builds use the secret as a file, at a custom target and as an environment
variable, export every output type, write a metadata file, export the cache
when ``--cache-to`` exists, push to a real loopback registry with a registry
cache (``mode=max``) and an inline cache, and fail once on purpose. Then every
byte is scanned: the whole store root (blobs, snapshots, SQLite files and their
WALs), every output (tars are opened and every member scanned, gzip and zstd are
decompressed first), every file the registry stored on disk, captured stdout
and stderr of every command, and the host's tmpfs directories where secrets are
staged during a RUN.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import json
import lzma
import os
import secrets
import sys
import tarfile
from pathlib import Path

import pytest
from buildharness import build_cmd, build_env, run, write_project
from figures import bump

from support.registry import RunningRegistry
from support.registrycheck import DirectRegistry

SECRET = "lk-secret-" + secrets.token_hex(16)
NEEDLES = (SECRET.encode(), base64.b64encode(SECRET.encode()),
           SECRET.encode().hex().encode(), SECRET.encode("utf-16-le"))

DOCKERFILE = """\
FROM busybox
RUN --mount=type=secret,id=tok sh -c 'test -s /run/secrets/tok && wc -c < /run/secrets/tok \\
    > /len.txt'
RUN --mount=type=secret,id=tok,target=/etc/app/token sh -c 'sha256sum /etc/app/token \\
    | cut -c1-8 > /hash.txt'
RUN --mount=type=secret,id=tok,env=TOK sh -c '[ -n "$TOK" ] && echo ok > /env-ok.txt'
ARG NOT_SECRET=plain
RUN echo "$NOT_SECRET" > /arg.txt
"""
FAILING = """\
FROM busybox
RUN --mount=type=secret,id=tok,env=TOK sh -c 'echo using the token; exit 3'
"""


def _decoded(data: bytes) -> list[bytes]:
    """``data`` and what it decompresses to (one level), for nested scanning."""
    out = [data]
    try:
        if data[:2] == b"\x1f\x8b":
            out.append(gzip.decompress(data))
        elif data[:4] == b"\x28\xb5\x2f\xfd":
            import zstandard

            out.append(zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read())
        elif data[:3] == b"BZh":
            out.append(bz2.decompress(data))
        elif data[:6] == b"\xfd7zXZ\x00":
            out.append(lzma.decompress(data))
    except Exception:  # not really compressed: the raw bytes are scanned anyway
        pass
    return out


def scan_bytes(data: bytes, where: str, depth: int = 0) -> list[str]:
    hits: list[str] = []
    for layer in _decoded(data):
        for needle in NEEDLES:
            if needle in layer:
                hits.append(where)
                return hits
        if depth < 3 and len(layer) >= 512:
            try:
                with tarfile.open(fileobj=io.BytesIO(layer), mode="r:") as tf:
                    for member in tf:
                        f = tf.extractfile(member) if member.isreg() else None
                        if f is not None:
                            hits += scan_bytes(f.read(), f"{where}!{member.name}", depth + 1)
            except (tarfile.TarError, EOFError, OSError):
                pass
    return hits


def scan_tree(top: Path) -> tuple[list[str], int]:
    hits: list[str] = []
    files = 0
    for dirpath, _dirs, names in os.walk(top):
        for name in names:
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            files += 1
            hits += scan_bytes(path.read_bytes(), str(path))
    return hits, files


def _load(root: Path, archive: Path) -> None:
    from support.buildenv import load_into, require_build_env

    require_build_env()
    load_into(root, archive, "busybox:latest")


@pytest.mark.timeout(900)
def test_secret_never_leaves_the_run(tmp_path: Path, busybox_docker_archive: Path) -> None:
    root = tmp_path / "store"
    _load(root, busybox_docker_archive)
    secret_file = tmp_path / "secret-src" / "token"
    secret_file.parent.mkdir()
    secret_file.write_text(SECRET)
    ctx = write_project(tmp_path / "ctx", {"Dockerfile": DOCKERFILE})
    bad_ctx = write_project(tmp_path / "bad", {"Dockerfile": FAILING})
    out = tmp_path / "out"
    out.mkdir()
    help_text = run([sys.executable, "-m", "layerkit", "build", "--help"]).stdout
    cache_to = (["--cache-to", f"type=local,dest={out / 'cache'},mode=max"]
                if "--cache-to" in help_text else [])
    env = build_env({"MY_SECRET": SECRET})
    captured: list[tuple[str, str]] = []
    for i, (source, progress) in enumerate([(f"src={secret_file}", "plain"),
                                            ("env=MY_SECRET", "json")]):
        args = ["--secret", f"id=tok,{source}", "-t", f"secret:{i}",
                "-o", f"type=oci,dest={out / f'oci-{i}.tar'}",
                "-o", f"type=docker,dest={out / f'docker-{i}.tar'}",
                "-o", f"type=local,dest={out / f'rootfs-{i}'}",
                "-o", f"type=tar,dest={out / f'rootfs-{i}.tar'}",
                "--metadata-file", str(out / f"metadata-{i}.json"), *cache_to]
        cmd = build_cmd(root, ctx, *args)
        cmd[cmd.index("plain")] = progress
        done = run(cmd, env=env)
        assert done.code == 0, done.stderr
        captured += [(f"build {i} stdout", done.stdout), (f"build {i} stderr", done.stderr)]
        # The secret really reached the step (else the scan would prove nothing).
        assert (out / f"rootfs-{i}" / "len.txt").read_text().strip() == str(len(SECRET))
        assert (out / f"rootfs-{i}" / "env-ok.txt").read_text().strip() == "ok"
        # Rebuild from cache: the secret must not be part of any key either.
        again = run(cmd, env=env)
        assert again.code == 0, again.stderr
        captured += [(f"rebuild {i} stderr", again.stderr)]
    failed = run(build_cmd(root, bad_ctx, "--secret", f"id=tok,src={secret_file}"), env=env)
    assert failed.code != 0 and "exit" in failed.stderr.lower()
    captured += [("failing build stdout", failed.stdout), ("failing build stderr", failed.stderr)]
    for sub in (["history", "secret:0", "--no-trunc"], ["inspect", "secret:0"], ["images"],
                ["du"]):
        shown = run([sys.executable, "-m", "layerkit", *sub, "--root", str(root)])
        captured += [(" ".join(sub), shown.stdout + shown.stderr)]

    hits = [label for label, text in captured if any(n.decode() in text for n in NEEDLES[:2])]
    store_hits, store_files = scan_tree(root)
    out_hits, out_files = scan_tree(out)
    staged: list[str] = []
    for tmpfs in (Path("/dev/shm"), Path("/run")):
        try:
            for dirpath, _dirs, names in os.walk(tmpfs):
                for name in names:
                    path = Path(dirpath) / name
                    try:
                        if path.is_file() and not path.is_symlink() and \
                                path.stat().st_size < (1 << 20) and SECRET.encode() in \
                                path.read_bytes():
                            staged.append(str(path))
                    except OSError:
                        continue
        except OSError:
            continue
    assert not hits, f"secret in command output: {hits}"
    assert not store_hits, f"secret in the store: {store_hits[:10]}"
    assert not out_hits, f"secret in outputs: {out_hits[:10]}"
    assert not staged, f"secret left in a tmpfs after the build: {staged}"
    assert store_files > 10 and out_files > 10
    bump("secrets: files scanned (store + outputs)", store_files + out_files)
    bump("secrets: command outputs scanned", len(captured))


@pytest.mark.timeout(900)
def test_secret_never_reaches_a_registry(tmp_path: Path, busybox_docker_archive: Path,
                                         registry: RunningRegistry) -> None:
    """The same builds, pushed (``--push``) with a registry cache (``mode=max``) and an
    inline cache: every byte the registry stored on disk is scanned, layers opened."""
    root = tmp_path / "store"
    _load(root, busybox_docker_archive)
    secret_file = tmp_path / "secret-src" / "token"
    secret_file.parent.mkdir()
    secret_file.write_text(SECRET)
    ctx = write_project(tmp_path / "ctx", {"Dockerfile": DOCKERFILE})
    env = build_env({"MY_SECRET": SECRET})
    captured: list[tuple[str, str]] = []
    for i, source in enumerate([f"src={secret_file}", "env=MY_SECRET"]):
        rootfs = tmp_path / f"rootfs-{i}"
        cmd = build_cmd(root, ctx, "--secret", f"id=tok,{source}",
                        "-t", registry.ref("secret", f"v{i}"), "--push",
                        "--cache-to", f"type=registry,ref={registry.ref('secret-cache')},mode=max",
                        "--cache-to", "type=inline", "-o", f"type=local,dest={rootfs}")
        for attempt in ("build", "rebuild"):
            done = run(cmd, env=env)
            assert done.code == 0, done.stderr
            captured += [(f"{attempt} {i} stdout", done.stdout),
                         (f"{attempt} {i} stderr", done.stderr)]
        # The secret really reached the steps (else the scan would prove nothing) ...
        assert (rootfs / "len.txt").read_text().strip() == str(len(SECRET))
        assert (rootfs / "env-ok.txt").read_text().strip() == "ok"
    # ... and the registry really holds the image, its inline cache and the cache export.
    with DirectRegistry(registry.address) as direct:
        for ref in (("secret", "v0"), ("secret", "v1"), ("secret-cache", "latest")):
            assert direct.manifest(*ref) is not None, ref
            assert not direct.manifest_problems(*ref)
        manifest = json.loads(direct.manifest("secret", "v1") or b"{}")
        config = direct.blob("secret", manifest["config"]["digest"])
    assert b"moby.buildkit.cache.v0" in config
    hits = [label for label, text in captured if any(n.decode() in text for n in NEEDLES[:2])]
    registry_hits, registry_files = scan_tree(registry.root / "data")
    assert not hits, f"secret in command output: {hits}"
    assert not registry_hits, f"secret in the registry: {registry_hits[:10]}"
    layers = list((registry.root / "data").rglob("blobs/sha256/*/*/data"))
    assert registry_files > 10 and len(layers) >= 5
    bump("secrets: registry files scanned (push + cache exports)", registry_files)


@pytest.mark.timeout(600)
def test_the_scan_finds_a_secret_that_does_leak(tmp_path: Path, busybox_docker_archive: Path,
                                                registry: RunningRegistry) -> None:
    """Control: a step that copies the secret into the image must be caught by the
    same scan, in the store, inside the gzip'd layers of the OCI export and in the
    registry's storage after a push."""
    root = tmp_path / "store"
    _load(root, busybox_docker_archive)
    secret_file = tmp_path / "token"
    secret_file.write_text(SECRET)
    ctx = write_project(tmp_path / "ctx", {"Dockerfile": (
        "FROM busybox\nRUN --mount=type=secret,id=tok cp /run/secrets/tok /leaked\n")})
    oci = tmp_path / "out" / "oci.tar"
    done = run(build_cmd(root, ctx, "--secret", f"id=tok,src={secret_file}",
                         "-o", f"type=oci,dest={oci}", "-t", registry.ref("leak"), "--push"))
    assert done.code == 0, done.stderr
    registry_hits, _ = scan_tree(registry.root / "data")
    assert registry_hits and all("/blobs/sha256/" in h for h in registry_hits), registry_hits
    # Found inside a gzip'd layer blob, so the hit went through decompression.
    assert all(Path(h.split("!")[0]).read_bytes()[:2] == b"\x1f\x8b" for h in registry_hits)
    store_hits, _ = scan_tree(root)
    assert any("blobs" in h for h in store_hits), store_hits
    oci_hits = scan_bytes(oci.read_bytes(), "oci.tar")
    assert oci_hits and all("!blobs/sha256/" in h for h in oci_hits), oci_hits
    with tarfile.open(oci) as tf:
        magics = [tf.extractfile(m).read(2) for m in tf.getmembers()  # type: ignore[union-attr]
                  if m.isreg() and m.name.startswith("blobs/")]
    # The layers are gzip'd in the export, so the hit above went through decompression.
    assert b"\x1f\x8b" in magics
