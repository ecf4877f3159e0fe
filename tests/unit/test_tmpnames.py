"""layerkit.tmpnames: exclusive creation under fresh names, as tempfile does."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from layerkit import tmpnames


def test_files_are_new_private_and_distinct(tmp_path: Path) -> None:
    made = set()
    for _ in range(200):
        fd, path = tmpnames.create_file(tmp_path, ".marker.", ".part")
        os.close(fd)
        assert path.parent == tmp_path and path.name.startswith(".marker.")
        assert path.name.endswith(".part")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        made.add(path)
    assert len(made) == 200 == len(list(tmp_path.iterdir()))


def test_directories_are_new_and_private(tmp_path: Path) -> None:
    a, b = tmpnames.create_dir(tmp_path, ".new-"), tmpnames.create_dir(tmp_path, ".new-")
    assert a != b and a.is_dir() and b.is_dir()
    assert stat.S_IMODE(a.stat().st_mode) == 0o700


def test_an_existing_name_is_never_reused(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Creation is exclusive: a taken name is skipped, never opened."""
    (tmp_path / "x-000000000000").write_text("someone else's")
    answers = iter([b"\0" * 6, b"\0" * 6, b"\1" * 6])
    monkeypatch.setattr(os, "urandom", lambda n: next(answers))
    fd, path = tmpnames.create_file(tmp_path, "x-")
    os.close(fd)
    assert path.name == "x-010101010101"
    assert (tmp_path / "x-000000000000").read_text() == "someone else's"
