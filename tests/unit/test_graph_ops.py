"""Op digests and cache maps: canonical, versioned, volatile fields blanked."""

from __future__ import annotations

from dataclasses import replace

from layerkit.cache.keys import (
    KEY_VERSION,
    content_key,
    definition_key,
    has_content_deps,
    make_key,
)
from layerkit.graph import (
    OP_SCHEMA,
    AddUrlAction,
    CopyAction,
    Dep,
    ExecMount,
    ExecOp,
    FileOp,
    MkdirAction,
    SourceOp,
    canonical_json,
    digest_of,
)


def test_canonical_json_is_order_independent() -> None:
    assert canonical_json({"b": 1, "a": [1, "é"]}) == '{"a":[1,"é"],"b":1}'
    assert digest_of({"a": 1, "b": 2}) == digest_of({"b": 2, "a": 1})
    assert digest_of("x").startswith("sha256:")
    assert OP_SCHEMA.endswith(".v1")


def test_exec_digest_covers_fields_but_not_proxy_values() -> None:
    op = ExecOp(("/bin/sh", "-c", "make"), env=(("A", "1"),), cwd="/src", user="app")
    assert op.cache_map().base == replace(op, proxy_env=(("HTTP_PROXY", "x"),)).cache_map().base
    for changed in (replace(op, env=(("A", "2"),)), replace(op, cwd="/"),
                    replace(op, user="root"), replace(op, network="none"),
                    replace(op, args=("/bin/bash", "-c", "make"))):
        assert changed.cache_map().base != op.cache_map().base


def test_exec_mount_deps() -> None:
    op = ExecOp(("make",), mounts=(
        ExecMount("bind", "/ctx", input=1, source="/src"),
        ExecMount("bind", "/out", input=2, source="/out", readonly=False),
        ExecMount("cache", "/root/.cache", input=3, id="/root/.cache"),
        ExecMount("cache", "/c2", id="/c2"),
        ExecMount("secret", "/run/secrets/tok", id="tok"),
        ExecMount("tmpfs", "/tmp", size=1 << 20),
    ))
    deps = op.cache_map().deps
    assert deps == (Dep(0), Dep(1, ("/src",)), Dep(2, ("/out",)), Dep(3))
    assert has_content_deps(op.cache_map())


def test_file_op_deps_and_checksum_blanked() -> None:
    copy = CopyAction(1, ("app/*.py",), "/app/", excludes=("*.pyc",))
    url = AddUrlAction(2, "https://x/y.tgz", "/opt/")
    op = FileOp((copy, url))
    cm = op.cache_map()
    assert cm.deps == (Dep(0), Dep(1, ("app/*.py",), ("*.pyc",)), Dep(2, ("/",)))
    pinned = FileOp((copy, replace(url, checksum="sha256:abc")))
    assert pinned.cache_map().base == cm.base
    assert FileOp((replace(copy, chmod="755"), url)).cache_map().base != cm.base


def test_source_digest_uses_the_resolved_digest() -> None:
    a = SourceOp("image", ref="python:3.12", digest="sha256:1")
    b = SourceOp("image", ref="python:3.12", digest="sha256:2")
    assert a.cache_map().base != b.cache_map().base
    assert SourceOp("scratch").cache_map().deps == ()
    assert SourceOp("stage", name="build").cache_map().deps == (Dep(0),)


def test_keys_are_versioned_and_separate_kinds() -> None:
    cm = FileOp((MkdirAction("/app"),)).cache_map()
    d = definition_key(cm, ["parent-key"])
    assert d.startswith(f"{KEY_VERSION}:sha256:")
    assert d != definition_key(cm, ["other-parent"])
    copy_cm = FileOp((CopyAction(1, ("out",), "/out"),)).cache_map()
    dk = definition_key(copy_cm, ["p", "stage-key"])
    ck = content_key(copy_cm, ["p", "sha256:files"])
    assert dk != ck and ck.startswith(f"{KEY_VERSION}:")
    assert make_key("definition", "x") != make_key("content", "x")


def test_key_functions_reject_misaligned_values() -> None:
    cm = FileOp((MkdirAction("/app"),)).cache_map()
    for bad in ([], ["a", "b"], [""]):
        try:
            definition_key(cm, bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad!r}")
