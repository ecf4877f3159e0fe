"""Platform parsing and host detection."""

from __future__ import annotations

import pytest

from layerkit.errors import FrontendError
from layerkit.frontend import Platform, host_platform, parse_platform

HOST = Platform("linux", "amd64")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", Platform("linux", "amd64")),
        ("linux/x86_64", Platform("linux", "amd64")),
        ("linux/arm64/v8", Platform("linux", "arm64")),
        ("linux/aarch64", Platform("linux", "arm64")),
        ("linux/arm", Platform("linux", "arm", "v7")),
        ("linux/arm/v6", Platform("linux", "arm", "v6")),
        ("linux/armhf", Platform("linux", "arm", "v7")),
        ("linux/386", Platform("linux", "386")),
        ("Linux/AMD64", Platform("linux", "amd64")),
        ("windows/amd64", Platform("windows", "amd64")),
        ("linux", Platform("linux", "amd64")),
        ("arm64", Platform("linux", "arm64")),
        ("linux/riscv64", Platform("linux", "riscv64")),
    ],
)
def test_parse_platform(text: str, expected: Platform) -> None:
    assert parse_platform(text, host=HOST) == expected


@pytest.mark.parametrize("text", ["", "linux/amd64/v2/x", "linux//amd64", "linux/am d64"])
def test_parse_platform_invalid(text: str) -> None:
    with pytest.raises(FrontendError):
        parse_platform(text, host=HOST)


@pytest.mark.parametrize(
    ("machine", "expected"),
    [("x86_64", "linux/amd64"), ("aarch64", "linux/arm64"), ("armv7l", "linux/arm/v7"),
     ("armv6l", "linux/arm/v6"), ("i686", "linux/386"), ("riscv64", "linux/riscv64")],
)
def test_host_platform_from_machine(machine: str, expected: str) -> None:
    assert str(host_platform(machine, "Linux")) == expected


def test_host_platform_real_machine() -> None:
    p = host_platform()
    assert p.os and p.architecture and "/" not in p.architecture


def test_str() -> None:
    assert str(Platform("linux", "arm", "v7")) == "linux/arm/v7"
    assert str(Platform("linux", "amd64")) == "linux/amd64"
