"""Sizes, ages, tables and names as the docker CLI prints and reads them; the store API."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import layerkit.store as store_api
from layerkit.content.errors import ContentError
from layerkit.store import default_root, human_duration, human_size, parse_size
from layerkit.store.catalog import normalize_name, parse_created, split_name
from layerkit.store.table import render_table


def test_public_api_is_pinned() -> None:
    assert store_api.__all__ == sorted(store_api.__all__)
    assert set(store_api.__all__) == {
        "CacheMountNode", "ChainNode", "ImageNode", "KindUsage", "PruneOptions", "PrunePlan",
        "Reachable", "RecordNode", "StoreGraph", "StorePaths", "Usage", "chain_ids",
        "default_root", "disk_usage", "execute_plan", "gc_lock", "human_duration",
        "human_size", "parse_size", "plan_prune", "prune", "resolve_root", "walk",
    }


@pytest.mark.parametrize(("text", "expected"), [
    ("10GB", 10 * 1024**3), ("512mb", 512 * 1024**2), ("1.5G", 1536 * 1024**2),
    ("1024", 1024), ("1k", 1024), ("2KiB", 2048), ("0", 0), ("3 MB", 3 * 1024**2),
    ("1t", 1024**4),
])
def test_parse_size_like_docker_ram_in_bytes(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "GB", "-1GB", "10XB", "1..5G", "ten"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


@pytest.mark.parametrize(("size", "expected"), [
    (0, "0B"), (999, "999B"), (1000, "1kB"), (4_261_000, "4.26MB"), (77_900_000, "77.9MB"),
    (1_234_567_890, "1.23GB"), (10_240, "10.2kB"), (999_999, "1MB"), (999_499, "999kB"),
])
def test_human_size_three_significant_digits(size: int, expected: str) -> None:
    assert human_size(size) == expected


@given(st.integers(min_value=0, max_value=10**15))
def test_human_size_round_trips_within_a_unit(n: int) -> None:
    text = human_size(n)
    number = float(text.rstrip("kMGTPB"))
    assert 0 <= number < 1000 or text.endswith("PB")


@pytest.mark.parametrize(("seconds", "expected"), [
    (0.5, "Less than a second"), (1, "1 second"), (59, "59 seconds"), (60, "About a minute"),
    (150, "2 minutes"), (3600, "About an hour"), (5 * 3600, "5 hours"),
    (3 * 86400, "3 days"), (15 * 86400, "2 weeks"), (70 * 86400, "2 months"),
    (800 * 86400, "2 years"),
])
def test_human_duration_like_docker(seconds: float, expected: str) -> None:
    assert human_duration(seconds) == expected


def test_table_pads_like_go_tabwriter() -> None:
    text = render_table(["REPOSITORY", "TAG", "SIZE"], [["busybox", "latest", "4.26MB"]])
    assert text == ("REPOSITORY   TAG       SIZE\n"
                    "busybox      latest    4.26MB\n")


@pytest.mark.parametrize(("name", "expected"), [
    ("busybox", "busybox:latest"), ("busybox:1.36", "busybox:1.36"),
    ("docker.io/library/alpine:3", "alpine:3"), ("docker.io/team/app", "team/app:latest"),
    ("localhost:5000/x/y", "localhost:5000/x/y:latest"),
])
def test_normalize_name(name: str, expected: str) -> None:
    assert normalize_name(name) == expected


def test_normalize_name_refuses_bad_names() -> None:
    with pytest.raises(ContentError):
        normalize_name("Upper/Case")


def test_split_name_keeps_registry_ports() -> None:
    assert split_name("localhost:5000/x:v2") == ("localhost:5000/x", "v2")


def test_parse_created_offsets_and_fractions() -> None:
    assert parse_created("1970-01-01T00:01:00Z") == 60
    assert parse_created("1970-01-01T01:00:00.5+01:00") == 0.5
    assert parse_created(None) is None and parse_created("yesterday") is None


def test_default_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LAYERKIT_ROOT", str(tmp_path / "r"))
    assert default_root() == tmp_path / "r"
    monkeypatch.delenv("LAYERKIT_ROOT")
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_root() == tmp_path / "xdg" / "layerkit"
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert default_root() == Path("/var/lib/layerkit")
