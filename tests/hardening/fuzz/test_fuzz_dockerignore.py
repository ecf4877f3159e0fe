"""Fuzzing .dockerignore reading and matching.

Properties: any ignore file either loads or fails with a ContextError naming
its line; matching never raises; ``explain`` agrees with ``matches``; without
'!' patterns the walker's incremental evaluation equals
``MatchesOrParentMatches`` (docs/context.md says they differ only through
exclusions); and on the syntax both implement (docs/dependencies.md: no
leading '/', '#', backslashes or '^' classes) layerkit agrees with
e2b-dockerfile-utils' matcher.
"""

from __future__ import annotations

from figures import bump
from hypothesis import given, settings
from hypothesis import strategies as st

from layerkit.context.dockerignore import IgnoreRule, IgnoreRules, parse_ignore_file
from layerkit.errors import ContextError

ANY_PIECES = ["a", "b", "*", "?", "**", "/", "[ab]", "[!a]", "[a-c]", "[", "]", "\\", "!",
              "#", " ", ".", "..", "~", "^", "$", "[^a]", "{a,b}", "\t", "é", "\x00"]
any_line = st.lists(st.one_of(st.sampled_from(ANY_PIECES), st.text(max_size=3)),
                    max_size=6).map("".join)
ignore_file = st.lists(any_line, max_size=8).map("\n".join)
path_part = st.sampled_from(["a", "b", "ab", "ba", ".x", "a.x", "c", "[ab]", "é", "*"])
rel_path = st.lists(path_part, min_size=1, max_size=5).map("/".join)


@settings(settings.get_profile("layerkit-fuzz"))
@given(ignore_file, st.lists(rel_path, min_size=1, max_size=4))
def test_loading_and_matching_never_crash(text: str, paths: list[str]) -> None:
    bump("fuzz: .dockerignore files")
    try:
        rules = parse_ignore_file(text, ".dockerignore")
    except ContextError as err:
        assert err.location is not None and err.location.line >= 1 and err.hint, err
        return
    for path in paths:
        matched = rules.matches(path)
        assert isinstance(matched, bool)
        found = rules.explain(path)
        assert (found is not None) == matched, (rules.patterns, path)
        if found is not None:
            assert found[0] in rules.patterns


SAFE = ["a", "b", "*", "?", "**", "/", "[ab]", ".x", "c", "[a-c]"]
safe_pattern = st.lists(st.sampled_from(SAFE), min_size=1, max_size=6).map(
    lambda parts: "".join(parts).lstrip("/"))


@settings(settings.get_profile("layerkit-fuzz"))
@given(st.lists(safe_pattern, min_size=1, max_size=4), rel_path)
def test_without_exclusions_walker_equals_matches_or_parent_matches(
    patterns: list[str], path: str
) -> None:
    patterns = [p for p in patterns if p]
    if not patterns:
        return
    rules = IgnoreRules([IgnoreRule(p, i) for i, p in enumerate(patterns, 1)])
    assert rules.matches(path) == rules.matcher.matches_or_parent_matches(path)
    bump("fuzz: .dockerignore walker/parent-match comparisons")


@settings(settings.get_profile("layerkit-fuzz"))
@given(st.lists(st.tuples(st.booleans(), safe_pattern), min_size=1, max_size=4), rel_path)
def test_agrees_with_e2b_on_the_shared_syntax(
    raw: list[tuple[bool, str]], path: str
) -> None:
    from e2b_dockerfile_utils.dockerignore import PatternMatcher as E2bMatcher

    patterns = [("!" if neg else "") + p for neg, p in raw if p]
    if not patterns:
        return
    rules = IgnoreRules([IgnoreRule(p, i) for i, p in enumerate(patterns, 1)])
    assert rules.matches(path) == E2bMatcher(patterns).matches(path), (patterns, path)
    bump("fuzz: .dockerignore e2b differential cases")


def test_pattern_blank_after_trimming_is_dropped_as_go_does() -> None:
    """Found by the long fuzz run: the line "/\\r/" reads as the pattern "\\r", which
    patternmatcher.New trims to nothing and drops; loading used to crash."""
    rules = parse_ignore_file("/\r/\n*.txt\n", ".dockerignore")
    assert rules.patterns == ["*.txt"]
    assert rules.matches("a.txt") and not rules.matches("a.py")
    assert rules.explain("a.txt") == ("*.txt", 2)
