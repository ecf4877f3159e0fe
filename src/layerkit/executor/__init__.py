"""layerkit.executor: runs one RUN step in an OCI runtime (crun or runc)."""

from __future__ import annotations

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
