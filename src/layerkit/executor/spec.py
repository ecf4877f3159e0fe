"""Builds the OCI runtime ``config.json`` (runtime-spec 1.0.2) for one RUN step.

Pure data in, a dict out: no timestamps, no host lookups, so the same inputs
always give the same document and tests can check it as data. The defaults
follow Docker's and BuildKit's: Docker's default capability set, masked and
read-only /proc and /sys paths, a tmpfs /dev (the runtime adds the standard
device nodes), and namespaces mount/pid/ipc/uts, plus network only for
``--network=none`` (``default`` and ``host`` share the host's network so
package managers can reach the internet). See docs/executor.md.
"""

from __future__ import annotations

import resource
from collections.abc import Sequence
from typing import Any

from layerkit.errors import BuildError
from layerkit.executor.user import ResolvedUser
from layerkit.fastclass import dataclass, field

OCI_VERSION = "1.0.2"
NETWORK_MODES = ("default", "host", "none")
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Docker's default capability set (moby oci/caps/defaults.go).
DEFAULT_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
    "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)

MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
)
READONLY_PATHS = (
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
)


@dataclass(frozen=True)
class SpecInputs:
    """Everything the config depends on, already resolved."""

    rootfs: str
    args: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    user: ResolvedUser = field(default_factory=lambda: ResolvedUser(0, 0))
    hostname: str = "buildkitsandbox"
    network: str = "default"
    mounts: tuple[dict[str, Any], ...] = ()
    no_new_privileges: bool = False
    nofile: int = 1048576
    readonly_rootfs: bool = False


def nofile_limit(ceiling: int = 1048576) -> int:
    """The open-files limit to give a step: BuildKit's 1048576, capped by our
    own hard limit (raising it needs CAP_SYS_RESOURCE, which we may lack)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return ceiling if hard == resource.RLIM_INFINITY else min(hard, ceiling)


def check_network(network: str) -> None:
    if network not in NETWORK_MODES:
        raise BuildError(
            f"unknown network mode {network!r}",
            hint="use --network=default, --network=host or --network=none",
            reference="run-network",
        )


def with_default_path(env: Sequence[str]) -> tuple[str, ...]:
    """BuildKit adds a PATH when the image sets none."""
    if any(e.startswith("PATH=") for e in env):
        return tuple(env)
    return (DEFAULT_PATH, *env)


def default_mounts() -> list[dict[str, Any]]:
    """The kernel filesystems every container gets, in mount order."""
    return [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                     "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
    ]


def build_spec(inputs: SpecInputs) -> dict[str, Any]:
    """The runtime config for ``inputs``."""
    check_network(inputs.network)
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    if inputs.network == "none":
        namespaces.append({"type": "network"})
    caps = list(DEFAULT_CAPS)
    user: dict[str, Any] = {"uid": inputs.user.uid, "gid": inputs.user.gid}
    if inputs.user.additional_gids:
        user["additionalGids"] = list(inputs.user.additional_gids)
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": False,
            "user": user,
            "args": list(inputs.args),
            "env": list(with_default_path(inputs.env)),
            "cwd": inputs.cwd or "/",
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": inputs.nofile,
                         "soft": inputs.nofile}],
            "noNewPrivileges": inputs.no_new_privileges,
        },
        "root": {"path": inputs.rootfs, "readonly": inputs.readonly_rootfs},
        "hostname": inputs.hostname,
        "mounts": [*default_mounts(), *inputs.mounts],
        "linux": {
            "namespaces": namespaces,
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }
