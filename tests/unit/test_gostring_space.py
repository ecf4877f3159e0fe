"""gostring.is_space is Go's unicode.IsSpace: checked against e2b-dockerfile-utils'
port (the one it replaces on the hot path) for every code point."""

from __future__ import annotations

from e2b_dockerfile_utils import is_space as reference

from layerkit.dockerfile.gostring import is_space


def test_every_code_point_agrees_with_the_reference_port() -> None:
    differing = [hex(c) for c in range(0x110000) if is_space(chr(c)) != reference(chr(c))]
    assert differing == []
    assert is_space("\u3000") and is_space("\x85") and not is_space("\u200b")
