"""Writes the /etc/hosts, /etc/hostname and /etc/resolv.conf a RUN step sees.

They are generated outside the rootfs and bind-mounted read-only, so a step
can read them but they never end up in the layer."""

from __future__ import annotations

from pathlib import Path

DEFAULT_RESOLV = "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"


def hosts_text(hostname: str) -> str:
    return (
        f"127.0.0.1\tlocalhost {hostname}\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
    )


def resolv_text(network: str, host_resolv: Path = Path("/etc/resolv.conf")) -> str:
    """The host's resolver config (we share its network namespace), or an
    empty-handed one when the step has no network."""
    if network == "none":
        return ""
    try:
        text = host_resolv.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return DEFAULT_RESOLV
    return text if "nameserver" in text else DEFAULT_RESOLV


def write_etc_files(directory: Path, hostname: str, network: str) -> dict[str, Path]:
    """Write the files into ``directory``; returns container path → host path."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "/etc/hosts": hosts_text(hostname),
        "/etc/hostname": hostname + "\n",
        "/etc/resolv.conf": resolv_text(network),
    }
    out: dict[str, Path] = {}
    for target, text in files.items():
        path = directory / target.rsplit("/", 1)[1]
        path.write_text(text, encoding="utf-8")
        path.chmod(0o644)
        out[target] = path
    return out
