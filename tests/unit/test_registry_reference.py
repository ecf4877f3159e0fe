"""Image references: Docker's normalisation, validation messages, and round-trips."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from layerkit.registry import InvalidReferenceError, Reference, parse_reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("python", "docker.io", "library/python", "latest", None),
        ("python:3.12", "docker.io", "library/python", "3.12", None),
        ("me/app", "docker.io", "me/app", "latest", None),
        ("docker.io/python", "docker.io", "library/python", "latest", None),
        ("index.docker.io/me/app:1", "docker.io", "me/app", "1", None),
        ("registry-1.docker.io/library/x", "docker.io", "library/x", "latest", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("localhost:5000/ns/app:v1", "localhost:5000", "ns/app", "v1", None),
        ("127.0.0.1:5000/app", "127.0.0.1:5000", "app", "latest", None),
        ("ghcr.io/o/r/deep/name:t", "ghcr.io", "o/r/deep/name", "t", None),
        (f"alpine@{DIGEST}", "docker.io", "library/alpine", None, DIGEST),
        (f"host.io/a:b@{DIGEST}", "host.io", "a", "b", DIGEST),
        ("[::1]:5000/app", "[::1]:5000", "app", "latest", None),
        ("Upper/app", "Upper", "app", "latest", None),  # upper case first part: a host
        ("a__b/c-d--e.f_g", "docker.io", "a__b/c-d--e.f_g", "latest", None),
    ],
)
def test_normalises_like_docker(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        registry, repository, tag, digest
    )


def test_string_forms() -> None:
    ref = parse_reference("python:3.12")
    assert str(ref) == "docker.io/library/python:3.12"
    assert ref.familiar == "python:3.12"
    assert ref.api_registry == "registry-1.docker.io"
    assert ref.api_reference == "3.12"
    pinned = ref.with_digest(DIGEST)
    assert pinned.api_reference == DIGEST
    assert str(pinned) == f"docker.io/library/python:3.12@{DIGEST}"
    assert parse_reference("localhost:5000/x").api_registry == "localhost:5000"
    assert parse_reference("x", default_tag=None).tag is None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        (" python", "whitespace"),
        ("Python", "lowercase"),
        ("me/App:1", "lowercase"),
        ("python:", "tag"),
        ("python:-bad", "tag"),
        ("a//b", "repository"),
        ("a/-b", "repository"),
        ("python@sha256:abc", "digest"),
        ("python@sha256:" + "A" * 64, "64 lower-case"),
        ("bad_host:5000/x", "registry host"),
        ("a" * 64, "image id"),
        ("host.io/" + "a" * 260, "longer than"),
        (":tag", "empty"),
    ],
)
def test_invalid_references_say_why(text: str, why: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        parse_reference(text)
    assert why in info.value.message
    assert info.value.hint


_component = st.from_regex(r"[a-z0-9]{1,6}(?:(?:[._]|__|-{1,2})[a-z0-9]{1,6}){0,2}", fullmatch=True)
_host = st.one_of(
    st.just(""),
    st.just("localhost"),
    st.from_regex(r"[a-z]{1,8}\.[a-z]{2,4}", fullmatch=True),
    st.from_regex(r"[a-z]{1,8}(?:\.[a-z]{1,5})?:[0-9]{1,5}", fullmatch=True),
)
_tag = st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True))
_digest = st.one_of(st.none(), st.from_regex(r"sha256:[a-f0-9]{64}", fullmatch=True))


@given(_host, st.lists(_component, min_size=1, max_size=3), _tag, _digest)
def test_parse_str_parse_is_stable(
    host: str, path: list[str], tag: str | None, digest: str | None
) -> None:
    # Without a host, a first component that looks like one ("a.b", "x:1", "localhost")
    # IS read as the registry, by Docker too: that input names something else.
    assume(host or not ("." in path[0] or ":" in path[0] or path[0] == "localhost"))
    text = ("/".join([host, *path]) if host else "/".join(path))
    text += f":{tag}" if tag else ""
    text += f"@{digest}" if digest else ""
    first = parse_reference(text)
    second = parse_reference(str(first))
    assert second == first
    assert parse_reference(str(second)) == second
    assert str(second) == str(first)
    # The familiar form names the same image too.
    assert parse_reference(first.familiar) == first
    assert isinstance(first, Reference)
    if tag:
        assert first.tag == tag
    if digest:
        assert first.digest == digest


def test_familiar_form_keeps_a_hub_repository_that_looks_like_a_host() -> None:
    ref = parse_reference("docker.io/a.b/c:1")
    assert ref.familiar == "docker.io/a.b/c:1"
    assert parse_reference(ref.familiar) == ref
    assert parse_reference("docker.io/library/library/a:1").familiar == "library/library/a:1"
