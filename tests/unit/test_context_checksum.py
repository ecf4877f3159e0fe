"""Content checksums of COPY sources and the persistent stat cache."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from layerkit.context import (
    ContextHasher,
    IgnoreRules,
    diff_files,
    parse_ignore_file,
    resolve_in_root,
)
from layerkit.context.statcache import StatCache, stat_key
from layerkit.errors import ContextError

OLD = time.time() - 3600  # well outside the racy window


def _write(root: Path, rel: str, content: str = "x", *, old: bool = True) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    if old:
        os.utime(path, (OLD, OLD))
    return path


def _digest(
    root: Path,
    sources: list[str],
    rules: IgnoreRules | None = None,
    cache: Path | None = None,
    **kw: object,
) -> str:
    with ContextHasher(root, rules or IgnoreRules(), cache) as hasher:
        return hasher.checksum_sources(sources, **kw).digest  # type: ignore[arg-type]


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    _write(root, "app/main.py", "print('hi')\n")
    _write(root, "app/util.py", "X = 1\n")
    _write(root, "README.md", "readme")
    _write(root, "secret.env", "TOKEN=1")
    return root


def test_digest_format_and_determinism(ctx: Path) -> None:
    first = _digest(ctx, ["."])
    assert first.startswith("sha256:") and len(first) == 71
    assert _digest(ctx, ["."]) == first


def test_touch_changes_nothing(ctx: Path, tmp_path: Path) -> None:
    before = _digest(ctx, ["app"], cache=tmp_path / "cache")
    os.utime(ctx / "app/main.py", (OLD + 10, OLD + 10))
    assert _digest(ctx, ["app"], cache=tmp_path / "cache") == before
    assert _digest(ctx, ["app/main.py"]) == _digest(ctx, ["app/main.py"])


def test_chmod_and_special_bits_change_the_checksum(ctx: Path) -> None:
    before = _digest(ctx, ["app/main.py"])
    (ctx / "app/main.py").chmod(0o755)
    after_exec = _digest(ctx, ["app/main.py"])
    (ctx / "app/main.py").chmod(0o4755)
    after_setuid = _digest(ctx, ["app/main.py"])
    assert len({before, after_exec, after_setuid}) == 3


def test_content_change_changes_it_and_diff_names_the_file(ctx: Path) -> None:
    with ContextHasher(ctx, IgnoreRules()) as hasher:
        old = hasher.checksum_sources(["."])
    _write(ctx, "app/main.py", "print('bye')\n")
    with ContextHasher(ctx, IgnoreRules()) as hasher:
        new = hasher.checksum_sources(["."])
    assert new.digest != old.digest
    assert diff_files(old.files, new.files) == ["app/main.py"]


def test_file_name_is_not_part_of_a_single_file_checksum(ctx: Path) -> None:
    _write(ctx, "copy.md", "readme")
    assert _digest(ctx, ["copy.md"]) != _digest(ctx, ["README.md"])  # source string differs
    with ContextHasher(ctx, IgnoreRules()) as hasher:
        a = hasher.checksum_sources(["copy.md"]).files["copy.md"]
        b = hasher.checksum_sources(["README.md"]).files["README.md"]
    assert a == b


def test_renaming_a_wildcard_match_changes_it(ctx: Path) -> None:
    before = _digest(ctx, ["app/*.py"])
    (ctx / "app/util.py").rename(ctx / "app/helpers.py")
    assert _digest(ctx, ["app/*.py"]) != before


def test_renaming_inside_a_copied_dir_changes_the_dir_checksum(ctx: Path) -> None:
    with ContextHasher(ctx, IgnoreRules()) as hasher:
        old = hasher.checksum_sources(["app"])
    (ctx / "app/util.py").rename(ctx / "app/utils.py")
    with ContextHasher(ctx, IgnoreRules()) as hasher:
        new = hasher.checksum_sources(["app"])
    assert new.digest != old.digest
    assert diff_files(old.files, new.files) == ["app/util.py", "app/utils.py"]


def test_change_to_an_ignored_file_changes_nothing(ctx: Path) -> None:
    rules = parse_ignore_file("secret.env\n", ".dockerignore")
    before = _digest(ctx, ["."], rules)
    _write(ctx, "secret.env", "TOKEN=2, a different length")
    assert _digest(ctx, ["."], rules) == before
    assert _digest(ctx, ["."]) != _digest(ctx, ["."], rules)


def test_exclude_patterns_are_relative_to_each_source(ctx: Path) -> None:
    with ContextHasher(ctx, IgnoreRules()) as hasher:
        kept = hasher.checksum_sources(["app"], excludes=["util.py"])
        rooted = hasher.checksum_sources(["app"], excludes=["app/util.py"])
    assert "app/util.py" not in kept.files and "app/main.py" in kept.files
    assert "app/util.py" in rooted.files  # relative to "app", so nothing matched
    assert kept.digest != rooted.digest


def test_leading_slash_stays_inside_and_dotdot_escape_is_refused(ctx: Path) -> None:
    assert _digest(ctx, ["/app"]) == _digest(ctx, ["app"])
    assert _digest(ctx, ["app/../README.md"]) == _digest(ctx, ["README.md"])
    with pytest.raises(ContextError) as info:
        _digest(ctx, ["../etc/passwd"])
    assert "../etc/passwd" in info.value.message
    assert info.value.hint is not None
    assert "COPY sources must be inside the build context" in info.value.hint


def test_symlink_to_absolute_path_resolves_inside_the_context(ctx: Path) -> None:
    (ctx / "pw").symlink_to("/etc/passwd")
    with pytest.raises(ContextError) as info:
        _digest(ctx, ["pw"])
    assert "pw" in info.value.message and "/etc/passwd" in info.value.message
    # <context>/etc/passwd is what the link means inside the build.
    _write(ctx, "etc/passwd", "not the host's")
    with ContextHasher(ctx, IgnoreRules()) as hasher:
        result = hasher.checksum_sources(["pw"])
    assert set(result.files) == {"etc/passwd"}


def test_symlink_climbing_out_is_clamped_at_the_root(ctx: Path) -> None:
    (ctx / "app/up").symlink_to("../../../../README.md")
    with ContextHasher(ctx, IgnoreRules()) as hasher:
        result = hasher.checksum_sources(["app/up"])
    assert set(result.files) == {"README.md"}
    assert resolve_in_root(ctx, "app/up") == ctx / "README.md"
    assert resolve_in_root(ctx, "../../x") == ctx / "x"


def test_symlinks_inside_a_copied_dir_are_hashed_as_links(ctx: Path) -> None:
    (ctx / "app/pw").symlink_to("/etc/passwd")
    before = _digest(ctx, ["app"])
    with ContextHasher(ctx, IgnoreRules()) as hasher:
        assert "app/pw" in hasher.checksum_sources(["app"]).files
    (ctx / "app/pw").unlink()
    (ctx / "app/pw").symlink_to("/etc/shadow")
    assert _digest(ctx, ["app"]) != before
    # not following the source itself: the link is the thing copied
    (ctx / "link").symlink_to("app")
    assert _digest(ctx, ["link"], follow_source_links=False) != _digest(ctx, ["link"])


def test_parent_component_symlink_is_followed(ctx: Path) -> None:
    (ctx / "alias").symlink_to("app")
    with ContextHasher(ctx, IgnoreRules()) as hasher:
        assert set(hasher.checksum_sources(["alias/main.py"]).files) == {"app/main.py"}


def test_errors_name_the_source_and_explain(ctx: Path) -> None:
    rules = parse_ignore_file("# comment\n*.env\n", ".dockerignore")
    with pytest.raises(ContextError) as info:
        _digest(ctx, ["secret.env"], rules)
    assert "secret.env" in info.value.message
    assert info.value.hint is not None and 'line 2 ("*.env")' in info.value.hint
    with pytest.raises(ContextError) as info:
        _digest(ctx, ["app/mian.py"])
    assert "app/mian.py" in info.value.message
    assert info.value.hint is not None and "did you mean" in info.value.hint
    assert "main.py" in info.value.hint
    (ctx / "dangling").symlink_to("nowhere")
    with pytest.raises(ContextError) as info:
        _digest(ctx, ["dangling"])
    assert "dangling" in info.value.message
    with pytest.raises(ContextError):
        _digest(ctx, ["*.nothing"])


# --- the stat cache -----------------------------------------------------------


def test_second_checksum_of_an_unchanged_tree_reads_nothing(tmp_path: Path) -> None:
    root = tmp_path / "big"
    n_dirs, per_dir = 100, 200
    for d in range(n_dirs):
        (root / f"d{d:03}").mkdir(parents=True)
        for f in range(per_dir):
            path = root / f"d{d:03}" / f"f{f:03}.txt"
            path.write_text(f"{d}-{f}")
            os.utime(path, (OLD, OLD))
    n_files = n_dirs * per_dir
    cache = tmp_path / "cache"
    with ContextHasher(root, IgnoreRules(), cache) as first:
        digest = first.checksum_sources(["."]).digest
    assert first.stats.files_hashed == n_files
    with ContextHasher(root, IgnoreRules(), cache) as second:
        assert second.checksum_sources(["."]).digest == digest
    assert second.stats.files_hashed == 0
    assert second.stats.bytes_read == 0
    assert second.stats.cache_hits >= n_files
    assert second.stats.stat_calls <= n_files + n_dirs + 1  # one lstat per entry
    changed = root / "d042" / "f042.txt"
    changed.write_text("changed!")
    os.utime(changed, (OLD, OLD))
    with ContextHasher(root, IgnoreRules(), cache) as third:
        result = third.checksum_sources(["."])
    assert result.digest != digest
    assert third.stats.files_hashed == 1
    assert third.stats.bytes_read == len("changed!")


def test_same_size_same_mtime_edit_is_caught_through_ctime(ctx: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    before = _digest(ctx, ["README.md"], cache=cache)
    path = ctx / "README.md"
    mtime = path.stat().st_mtime_ns
    path.write_text("READme")  # same size
    os.utime(path, ns=(mtime, mtime))  # and the old mtime; ctime still moves
    assert _digest(ctx, ["README.md"], cache=cache) != before


def test_identical_stat_identity_is_trusted_known_limitation(tmp_path: Path) -> None:
    # Same limitation as BuildKit and git: if (dev, inode, size, mtime, ctime,
    # mode) are all unchanged, the cached digest is believed without reading.
    path = _write(tmp_path, "f", "abc")
    cache = StatCache(tmp_path / "c.sqlite", str(tmp_path))
    fake = "sha256:" + "0" * 64
    assert cache.record("f", path.stat(), fake, time.time_ns())
    cache.flush()
    assert cache.load() == {"f": (stat_key(path.stat()), fake)}
    cache.close()


def test_recently_modified_file_is_not_trusted_next_time(ctx: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _write(ctx, "fresh.txt", "new", old=False)
    _digest(ctx, ["."], cache=cache)
    with ContextHasher(ctx, IgnoreRules(), cache) as again:
        again.checksum_sources(["."])
    assert again.stats.files_hashed == 1  # only the racy file is read again


def test_corrupt_cache_is_treated_as_empty(ctx: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "statcache.sqlite").write_bytes(b"this is not a database" * 100)
    expected = _digest(ctx, ["."])
    with ContextHasher(ctx, IgnoreRules(), cache) as hasher:
        assert hasher.checksum_sources(["."]).digest == expected
    assert hasher.stats.files_hashed == 4
    with ContextHasher(ctx, IgnoreRules(), cache) as hasher:
        assert hasher.checksum_sources(["."]).digest == expected
    assert hasher.stats.files_hashed == 0  # rebuilt and usable again


def test_wrong_digest_rows_are_ignored(ctx: Path, tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    cache = StatCache(db, os.path.realpath(ctx))
    cache.record("README.md", (ctx / "README.md").stat(), "md5:nonsense", time.time_ns())
    cache.flush()
    cache.close()
    with ContextHasher(ctx, IgnoreRules(), tmp_path) as hasher:
        hasher.checksum_sources(["README.md"])
    assert hasher.stats.files_hashed == 1


def test_two_hashers_share_one_cache(ctx: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    a = ContextHasher(ctx, IgnoreRules(), cache)
    b = ContextHasher(ctx, IgnoreRules(), cache)
    assert a.checksum_sources(["app"]).digest == b.checksum_sources(["app"]).digest
    a.close()
    b.close()
    with ContextHasher(ctx, IgnoreRules(), cache) as c:
        c.checksum_sources(["app"])
    assert c.stats.files_hashed == 0


def test_user_xattr_changes_the_checksum(ctx: Path) -> None:
    path = ctx / "README.md"
    before = _digest(ctx, ["README.md"])
    try:
        os.setxattr(path, "user.layerkit", b"1")
    except OSError:
        pytest.skip("this filesystem has no user xattrs")
    assert _digest(ctx, ["README.md"]) != before
