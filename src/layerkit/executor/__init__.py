"""layerkit.executor: runs one RUN step in an OCI runtime (crun or runc).

Names are imported on first use: COPY needs only ``executor.user`` (names from the
image's /etc/passwd), not the runtime and subprocess machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from layerkit.executor.mounts import (
        BindMount,
        CacheMount,
        MountSpec,
        SecretMount,
        SshMount,
        TmpfsMount,
    )
    from layerkit.executor.run import ExecutorConfig, ProcessSpec, RunResult, reap, run_step
    from layerkit.executor.runtime import Runtime, find_runtime
    from layerkit.executor.spec import SpecInputs, build_spec
    from layerkit.executor.user import ResolvedUser, resolve_user

_WHERE = {
    "BindMount": "mounts", "CacheMount": "mounts", "MountSpec": "mounts",
    "SecretMount": "mounts", "SshMount": "mounts", "TmpfsMount": "mounts",
    "ExecutorConfig": "run", "ProcessSpec": "run", "RunResult": "run", "reap": "run",
    "run_step": "run", "Runtime": "runtime", "find_runtime": "runtime",
    "SpecInputs": "spec", "build_spec": "spec", "ResolvedUser": "user",
    "resolve_user": "user",
}

__all__ = [
    "BindMount",
    "CacheMount",
    "ExecutorConfig",
    "MountSpec",
    "ProcessSpec",
    "ResolvedUser",
    "RunResult",
    "Runtime",
    "SecretMount",
    "SpecInputs",
    "SshMount",
    "TmpfsMount",
    "build_spec",
    "find_runtime",
    "reap",
    "resolve_user",
    "run_step",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'layerkit.executor' has no attribute {name!r}")
    return getattr(importlib.import_module(f"layerkit.executor.{module}"), name)
