"""Finds the external tools the support code drives, or says how to install them.

A missing tool becomes a ``ToolMissing`` error that names the tool and the
``apt-get`` command; the pytest fixtures turn it into a loud skip.
"""

from __future__ import annotations

import shutil
from pathlib import Path

# tool name -> Debian package that ships it
APT_PACKAGES: dict[str, str] = {
    "docker-registry": "docker-registry",
    "busybox": "busybox-static",
    "skopeo": "skopeo",
    "umoci": "umoci",
    "htpasswd": "apache2-utils",
    "debootstrap": "debootstrap",
    "buildah": "buildah",
    "docker": "docker.io",
    "dockerd": "docker.io",
}

# Absolute paths tried before $PATH: the test user's PATH may lack /usr/sbin.
_FALLBACK_DIRS = ("/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin")


class ToolMissing(RuntimeError):
    """An external program is not installed."""

    def __init__(self, tool: str, why: str = "") -> None:
        self.tool = tool
        self.package = APT_PACKAGES.get(tool, tool)
        self.install_hint = f"apt-get install -y {self.package}"
        detail = f" ({why})" if why else ""
        super().__init__(f"{tool} is not installed{detail}: run `{self.install_hint}`")


def find_tool(name: str) -> Path | None:
    """Return the path of ``name``, looking on $PATH then in the usual system dirs."""
    found = shutil.which(name)
    if found:
        return Path(found)
    for directory in _FALLBACK_DIRS:
        candidate = Path(directory) / name
        if candidate.is_file():
            return candidate
    return None


def require_tool(name: str, why: str = "") -> Path:
    """Like ``find_tool`` but raises ``ToolMissing`` naming the apt package."""
    path = find_tool(name)
    if path is None:
        raise ToolMissing(name, why)
    return path
