"""The no-op fast path (worker/memo.py) says exactly what the full path says, and
falls back to it whenever an input may have changed."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from support.buildenv import BuildEnv, cli, make_build_env

DOCKERFILE = """\
FROM busybox AS base
WORKDIR /srv
RUN head -c 8 /dev/urandom | od -An -tx1 > /srv/random
COPY app.sh ./
ARG VERSION=dev
LABEL version=$VERSION
CMD ["sh", "/srv/app.sh"]
"""


@pytest.fixture
def env(tmp_path: Path, busybox_docker_archive: Path) -> BuildEnv:
    return make_build_env(tmp_path, busybox_docker_archive)


def _age(ctx: Path) -> None:
    """Make every context file older than the racy window, as files usually are:
    mtimes can be set back, ctimes cannot, so wait the window out."""
    past = time.time() - 60
    for path in [ctx, *ctx.rglob("*")]:
        os.utime(path, (past, past), follow_symlinks=False)
    time.sleep(2.1)


def _build(env: BuildEnv, ctx: Path, *extra: str, fast: bool = True) -> tuple[str, dict[str, Any]]:
    md = env.tmp / "md.json"
    proc = cli("build", "--progress", "plain", "--metadata-file", str(md), "-t", "app:1",
               *extra, str(ctx), root=env.root,
               env={"LAYERKIT_MEMO_TRACE": str(_trace(env))} if fast
               else {"LAYERKIT_NO_FASTPATH": "1"})
    return proc.stderr, json.loads(md.read_text())


def _trace(env: BuildEnv) -> Path:
    return env.tmp / "memo-trace.txt"


def _traced(env: BuildEnv, kind: str) -> int:
    path = _trace(env)
    lines = path.read_text().splitlines() if path.exists() else []
    return sum(line.startswith(kind + " ") for line in lines)


def _hits(env: BuildEnv) -> int:
    return _traced(env, "hit")


def _kept(env: BuildEnv) -> int:
    """Builds that ran the full path with a kept lowered build (no parse)."""
    return _traced(env, "lowered")


def _normalise(progress: str) -> str:
    return re.sub(r"\d+\.\d+s", "T", progress)


def test_fast_path_reports_exactly_what_the_full_path_reports(env: BuildEnv) -> None:
    ctx = env.context({"Dockerfile": DOCKERFILE, "app.sh": "echo hi\n"})
    _age(ctx)
    _build(env, ctx, fast=False)  # cold: records the memo
    slow, slow_md = _build(env, ctx, fast=False)
    fast, fast_md = _build(env, ctx)
    assert _hits(env) == 1, "the third build must be answered by the memo"
    assert _normalise(fast) == _normalise(slow)
    assert fast_md == slow_md
    assert all(s["status"] == "cached" for s in fast_md["steps"])


def test_touch_is_answered_by_the_memo_and_an_edit_takes_the_full_path(env: BuildEnv) -> None:
    ctx = env.context({"Dockerfile": DOCKERFILE, "app.sh": "echo hi\n"})
    _age(ctx)
    _build(env, ctx)
    first = _build(env, ctx)[1]
    hits = _hits(env)
    assert hits == 1
    os.utime(ctx / "app.sh", (time.time() - 30, time.time() - 30))  # touch: new mtime only
    touched = _build(env, ctx)[1]  # same content: the memo answers at once
    assert _hits(env) == hits + 1
    assert touched["containerimage.config.digest"] == first["containerimage.config.digest"]
    assert all(s["status"] == "cached" for s in touched["steps"])
    (ctx / "app.sh").write_text("echo edited\n")
    edited = _build(env, ctx)[1]
    assert _hits(env) == hits + 1
    ran = [s["instruction"] for s in edited["steps"] if s["status"] == "ran"]
    assert ran == ["COPY app.sh ./"]
    assert edited["containerimage.config.digest"] != first["containerimage.config.digest"]
    # Back to the first content: a memo hit again, the first image.
    (ctx / "app.sh").write_text("echo hi\n")
    again = _build(env, ctx)[1]
    assert _hits(env) == hits + 2
    assert again["containerimage.config.digest"] == first["containerimage.config.digest"]


def test_files_written_just_now_are_read_not_trusted(env: BuildEnv) -> None:
    """No racy window to wait out: a fresh file is hashed, so a rebuild straight after
    a build hits, and an edit that keeps size and mtime is still seen."""
    ctx = env.context({"Dockerfile": DOCKERFILE, "app.sh": "echo hi\n"})
    _build(env, ctx)
    _build(env, ctx)
    assert _hits(env) == 1
    # Same size, same mtime as before, new content.
    st = (ctx / "app.sh").stat()
    (ctx / "app.sh").write_text("echo HI\n")
    os.utime(ctx / "app.sh", ns=(st.st_atime_ns, st.st_mtime_ns))
    md = _build(env, ctx)[1]
    assert _hits(env) == 1
    assert [s["instruction"] for s in md["steps"] if s["status"] == "ran"] == ["COPY app.sh ./"]
    # Files this fresh never vouch for a context by their stat identity alone.
    assert _traced(env, "stat") == 0


def test_an_aged_unchanged_context_is_vouched_for_by_its_stat_fingerprint(
        env: BuildEnv) -> None:
    """Once every change is older than the racy window, a rebuild takes the context's
    digest from its entries' stat identities (no file read, no stat cache load); any
    write moves a ctime, so even an edit that restores size and mtime is seen."""
    ctx = env.context({"Dockerfile": DOCKERFILE, "app.sh": "echo hi\n", "lib/a.txt": "a\n"})
    _age(ctx)
    first = _build(env, ctx)[1]  # cold: records the context's stat fingerprint
    assert _traced(env, "stat") == 0
    again = _build(env, ctx)[1]
    assert (_traced(env, "stat"), _hits(env)) == (1, 1)
    assert again["containerimage.config.digest"] == first["containerimage.config.digest"]
    st = (ctx / "app.sh").stat()
    (ctx / "app.sh").write_text("echo HI\n")  # same size; the old mtime is put back
    os.utime(ctx / "app.sh", ns=(st.st_atime_ns, st.st_mtime_ns))
    time.sleep(2.1)  # past the racy window: only the ctime tells the edit apart
    edited = _build(env, ctx)[1]
    assert (_traced(env, "stat"), _hits(env)) == (1, 1)
    assert [s["instruction"] for s in edited["steps"] if s["status"] == "ran"] == \
        ["COPY app.sh ./"]
    (ctx / "lib" / "b.txt").write_text("b\n")  # a new file is a new entry
    os.utime(ctx / "lib" / "b.txt", (time.time() - 60, time.time() - 60))
    time.sleep(2.1)
    added = _build(env, ctx)[1]  # the whole context's digest changed: the memo misses
    assert (_traced(env, "stat"), _hits(env)) == (1, 1)
    assert all(s["status"] == "cached" for s in added["steps"])  # COPY app.sh only
    assert added["containerimage.config.digest"] == edited["containerimage.config.digest"]
    rebuilt = _build(env, ctx)[1]  # recorded by the build before: vouched for again
    assert (_traced(env, "stat"), _hits(env)) == (2, 2)
    assert rebuilt["containerimage.config.digest"] == added["containerimage.config.digest"]


def test_add_from_a_url_always_takes_the_full_path(env: BuildEnv) -> None:
    """The full path checks an ADD URL every build; the memo cannot."""
    import http.server
    import threading

    served = env.tmp / "served"
    served.mkdir()
    (served / "data.txt").write_text("v1\n")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(served), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/data.txt"
        ctx = env.context({"Dockerfile": f"FROM busybox\nADD {url} /data.txt\n"})
        first = _build(env, ctx)[1]
        _build(env, ctx)
        (served / "data.txt").write_text("v2\n")
        second = _build(env, ctx)[1]
    finally:
        server.shutdown()
    assert _hits(env) == 0
    assert second["containerimage.config.digest"] != first["containerimage.config.digest"]


def test_retagged_base_image_misses_the_memo(env: BuildEnv) -> None:
    ctx = env.context({"Dockerfile": DOCKERFILE, "app.sh": "echo hi\n"})
    _age(ctx)
    _build(env, ctx)
    before = _build(env, ctx)[1]
    # Point busybox:latest at the image we just built: every step must rebuild on it.
    assert _hits(env) == 1
    cli("tag", before["containerimage.config.digest"], "busybox:latest", root=env.root)
    after = _build(env, ctx)[1]
    assert _hits(env) == 1
    assert any(s["status"] == "ran" for s in after["steps"])


def test_pruned_results_take_the_full_path(env: BuildEnv) -> None:
    ctx = env.context({"Dockerfile": DOCKERFILE, "app.sh": "echo hi\n"})
    _age(ctx)
    _build(env, ctx)
    _build(env, ctx)
    assert _hits(env) == 1
    cli("prune", "--all", "-f", root=env.root)
    md = _build(env, ctx)[1]
    assert _hits(env) == 1
    assert any(s["status"] == "ran" for s in md["steps"])


def test_a_registry_base_is_answered_once_unpacked(env: BuildEnv, pushed_busybox: str) -> None:
    ctx = env.context({
        "Dockerfile": f"FROM {pushed_busybox}\nCOPY app.sh /srv/\nRUN cat /srv/app.sh\n",
        "app.sh": "echo hi\n",
    })
    _age(ctx)
    first = _build(env, ctx)[1]  # pulls lazily, unpacks for the RUN, records the memo
    again = _build(env, ctx)[1]
    assert _hits(env) == 1
    assert again["containerimage.config.digest"] == first["containerimage.config.digest"]
    assert all(s["status"] == "cached" for s in again["steps"])


def test_a_context_edit_reuses_the_lowered_build_and_builds_the_same_image(
        env: BuildEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rebuild whose only change is in the context skips parsing and lowering (the
    memo keeps the lowered build); the image equals the full path's, step for step."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    ctx = env.context({"Dockerfile": DOCKERFILE, "app.sh": "echo hi\n"})
    _build(env, ctx)
    (ctx / "app.sh").write_text("echo one\n")
    _, kept_md = _build(env, ctx)
    assert _kept(env) == 1 and _hits(env) == 0
    assert [s["instruction"] for s in kept_md["steps"] if s["status"] == "ran"] == [
        "COPY app.sh ./"]
    # The full path (parse and lower afresh) keys every step as the kept build did:
    # all of them hit, and the image is the same.
    _, full_md = _build(env, ctx, fast=False)
    assert all(s["status"] == "cached" for s in full_md["steps"])
    assert kept_md["containerimage.config.digest"] == full_md["containerimage.config.digest"]

    # A changed Dockerfile, build arg or base image tag is lowered afresh.
    (ctx / "Dockerfile").write_text(DOCKERFILE + "ENV EXTRA=1\n")
    _build(env, ctx)
    assert _kept(env) == 1
    _build(env, ctx, "--build-arg", "VERSION=2")
    assert _kept(env) == 1
    (ctx / "app.sh").write_text("echo two\n")
    _build(env, ctx, "--build-arg", "VERSION=2")
    assert _kept(env) == 2
    cli("tag", "busybox", "busybox:other", root=env.root)
    (ctx / "app.sh").write_text("echo three\n")
    _build(env, ctx, "--build-arg", "VERSION=2")
    assert _kept(env) == 2  # the image index changed
