from pathlib import Path

import pytest

from layerkit.content.errors import ContentError
from layerkit.content.images import ImageIndex

A = "sha256:" + "a" * 64
B = "sha256:" + "ab" * 32


def test_tag_resolve_untag(tmp_path: Path) -> None:
    with ImageIndex(tmp_path) as idx:
        idx.tag("app:1", A)
        idx.tag("app:latest", A, "sha256:" + "c" * 64)
        assert idx.get("app:1") is not None
        assert idx.resolve("app:latest").config_digest == A
        assert idx.names_for(A) == ["app:1", "app:latest"]
        assert idx.untag("app:1") and not idx.untag("app:1")
        assert [r.name for r in idx.all()] == ["app:latest"]


def test_retag_moves_the_name(tmp_path: Path) -> None:
    with ImageIndex(tmp_path) as idx:
        idx.tag("app", A)
        idx.tag("app", B)
        assert idx.resolve("app").config_digest == B


def test_id_prefixes(tmp_path: Path) -> None:
    with ImageIndex(tmp_path) as idx:
        idx.tag("one", A)
        idx.tag("two", B)
        assert idx.resolve("aaaa").name == "one"
        assert idx.resolve("sha256:abab").name == "two"
        with pytest.raises(ContentError, match="no such image"):
            idx.resolve("a")  # shorter than 4 characters: only a name
        idx.tag("three", "sha256:aaaa" + "b" * 60)
        with pytest.raises(ContentError, match="ambiguous"):
            idx.resolve("aaaa")
