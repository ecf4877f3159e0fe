"""Fuzzing image reference parsing (``registry.parse_reference``).

Properties: any string parses or fails with InvalidReferenceError (a layerkit
error with a hint); a parsed reference printed and parsed again is the same
reference, and so is its familiar (Docker-style short) form; references built
from distribution's grammar always parse and keep their parts.
"""

from __future__ import annotations

from figures import bump
from hypothesis import given, settings
from hypothesis import strategies as st

from layerkit.registry.errors import InvalidReferenceError
from layerkit.registry.reference import parse_reference

PIECES = ["a", "b", "z9", "-", "_", "__", ".", ":", "/", "@", "sha256:", "0" * 64, "f" * 64,
          "localhost", "docker.io", "index.docker.io", "library", "5000", "A", "UP", "[::1]",
          "latest", " ", "\n", "é", "//", "..", "-x", "sha512:" + "1" * 128, "library/"]
_noise = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=3)), max_size=8)
_plausible = st.lists(st.sampled_from(["a", "b0", "x-y", "p.q", "/", ":", "v1", "@",
                                       "sha256:" + "a" * 64, "localhost:5000/", "Host.io/"]),
                      min_size=1, max_size=6)
anything = st.one_of(_noise, _plausible).map("".join)


@settings(settings.get_profile("layerkit-fuzz"))
@given(anything)
def test_parse_fails_only_clearly_and_round_trips(text: str) -> None:
    bump("fuzz: reference strings")
    try:
        ref = parse_reference(text)
    except InvalidReferenceError as err:
        assert err.hint, err
        assert err.message.startswith("invalid image reference"), err.message
        return
    again = parse_reference(str(ref))
    assert again == ref, (text, str(ref))
    assert parse_reference(ref.familiar) == ref, (text, ref.familiar)
    assert ref.tag is not None or ref.digest is not None
    bump("fuzz: reference round trips")


component = st.from_regex(r"\A[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z")
domain = st.sampled_from(["localhost:5000", "registry.example.com", "ghcr.io", "127.0.0.1:5000",
                          "docker.io", "Example.COM:443"])
tag = st.from_regex(r"\A[\w][\w.-]{0,20}\Z", alphabet="abcXYZ019_.-")
digest = st.from_regex(r"\A[a-f0-9]{64}\Z").map(lambda h: f"sha256:{h}")


@settings(settings.get_profile("layerkit-fuzz"))
@given(st.one_of(st.none(), domain), st.lists(component, min_size=1, max_size=3),
       st.one_of(st.none(), tag), st.one_of(st.none(), digest))
def test_grammar_valid_references_parse(
    host: str | None, path: list[str], t: str | None, d: str | None
) -> None:
    repo = "/".join(path)
    if host is None and len(path) > 1 and ("." in path[0] or path[0] == "localhost"):
        host = "docker.io"  # else the first component names a registry (Docker's rule)
    if len(repo) > 200:
        return
    if host in (None, "docker.io") and len(path) == 1 and len(repo) == 64 and set(repo) <= set(
            "0123456789abcdef"):
        return  # a 64-hex name is refused as an image id, by design
    text = (f"{host}/" if host else "") + repo + (f":{t}" if t else "") + (f"@{d}" if d else "")
    ref = parse_reference(text)
    assert ref.tag == (t if t or d else "latest")
    assert ref.digest == d
    assert ref.repository.endswith(repo)
    bump("fuzz: grammar-valid references")


def test_familiar_keeps_library_when_it_is_not_the_official_prefix() -> None:
    """Found by the long fuzz run: ``library/library/a`` printed as ``library/a``."""
    for text, familiar in [("library/library/a", "library/library/a:latest"),
                           ("library/a/b", "library/a/b:latest"), ("a", "a:latest"),
                           ("docker.io/library/a:1", "a:1"), ("me/app", "me/app:latest")]:
        ref = parse_reference(text)
        assert ref.familiar == familiar
        assert parse_reference(ref.familiar) == ref
