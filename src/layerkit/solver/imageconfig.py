"""Image config: turns a base config plus a stage's config changes into the built image config.

Follows BuildKit's dockerfile2llb dispatchers:

- a stage starts from its base's config with ONBUILD triggers cleared (they
  ran, or they belong to the base only); ``scratch`` starts with only the
  default ``PATH``;
- ENV replaces a variable in place or appends it; LABEL merges;
- shell-form CMD/ENTRYPOINT already carry the SHELL (the lowering prepends it);
- ENTRYPOINT resets an inherited CMD unless a CMD was set in this stage;
- EXPOSE ports are ``port/proto`` (``/tcp`` by default), kept sorted;
- every instruction except ONBUILD adds a history entry (see the lowering).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from layerkit.fastclass import dataclass, replace
from layerkit.graph.model import HistoryEntry
from layerkit.graph.ops import ConfigChange

__all__ = [
    "DEFAULT_PATH",
    "Healthcheck",
    "ImageConfig",
    "apply_change",
    "scratch_config",
    "stage_start",
]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Healthcheck:
    test: tuple[str, ...]
    interval: int = 0  # nanoseconds
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an OCI image config a Dockerfile can change, plus history."""

    env: tuple[tuple[str, str], ...] = ()
    user: str = ""
    working_dir: str = ""
    shell: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    labels: tuple[tuple[str, str], ...] = ()
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    stop_signal: str = ""
    healthcheck: Healthcheck | None = None
    on_build: tuple[str, ...] = ()
    author: str = ""
    args_escaped: bool = False
    history: tuple[HistoryEntry, ...] = ()
    cmd_set: bool = False  # a CMD was set in the current stage

    def env_dict(self) -> dict[str, str]:
        return dict(self.env)

    def with_history(self, entry: HistoryEntry | None) -> ImageConfig:
        return self if entry is None else replace(self, history=(*self.history, entry))

    # -- OCI conversion ------------------------------------------------------------

    def to_oci_config(self) -> dict[str, Any]:
        """The ``config`` object of an OCI image config (Docker's capitalised keys)."""
        out: dict[str, Any] = {}
        if self.user:
            out["User"] = self.user
        if self.exposed_ports:
            out["ExposedPorts"] = {p: {} for p in self.exposed_ports}
        if self.env:
            out["Env"] = [f"{k}={v}" for k, v in self.env]
        if self.entrypoint is not None:
            out["Entrypoint"] = list(self.entrypoint)
        if self.cmd is not None:
            out["Cmd"] = list(self.cmd)
        if self.volumes:
            out["Volumes"] = {v: {} for v in self.volumes}
        if self.working_dir:
            out["WorkingDir"] = self.working_dir
        if self.labels:
            out["Labels"] = dict(self.labels)
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        if self.shell:
            out["Shell"] = list(self.shell)
        if self.on_build:
            out["OnBuild"] = list(self.on_build)
        if self.args_escaped:
            out["ArgsEscaped"] = True
        if self.healthcheck is not None:
            hc = self.healthcheck
            out["Healthcheck"] = {
                k: v
                for k, v in (
                    ("Test", list(hc.test)), ("Interval", hc.interval), ("Timeout", hc.timeout),
                    ("StartPeriod", hc.start_period), ("StartInterval", hc.start_interval),
                    ("Retries", hc.retries),
                )
                if v or k == "Test"
            }
        return out

    def history_json(self) -> list[dict[str, Any]]:
        out = []
        for h in self.history:
            entry: dict[str, Any] = {"created_by": h.created_by, "comment": h.comment}
            if h.empty_layer:
                entry["empty_layer"] = True
            out.append(entry)
        return out

    @classmethod
    def from_oci(cls, image: Mapping[str, Any]) -> ImageConfig:
        """From an OCI image config document (``{"config": {...}, "history": [...]}``)."""
        cfg = image.get("config") or {}
        hc = cfg.get("Healthcheck")
        history = tuple(
            HistoryEntry(h.get("created_by", ""), bool(h.get("empty_layer", False)),
                         h.get("comment", ""))
            for h in image.get("history") or ()
        )
        return cls(
            env=tuple(_split_env(e) for e in cfg.get("Env") or ()),
            user=cfg.get("User", ""),
            working_dir=cfg.get("WorkingDir", ""),
            shell=tuple(cfg.get("Shell") or ()),
            cmd=tuple(cfg["Cmd"]) if cfg.get("Cmd") is not None else None,
            entrypoint=tuple(cfg["Entrypoint"]) if cfg.get("Entrypoint") is not None else None,
            labels=tuple(sorted((cfg.get("Labels") or {}).items())),
            exposed_ports=tuple(sorted(cfg.get("ExposedPorts") or {})),
            volumes=tuple(sorted(cfg.get("Volumes") or {})),
            stop_signal=cfg.get("StopSignal", ""),
            healthcheck=Healthcheck(
                tuple(hc.get("Test") or ()), hc.get("Interval", 0), hc.get("Timeout", 0),
                hc.get("StartPeriod", 0), hc.get("StartInterval", 0), hc.get("Retries", 0),
            ) if hc else None,
            on_build=tuple(cfg.get("OnBuild") or ()),
            author=image.get("author", ""),
            args_escaped=bool(cfg.get("ArgsEscaped", False)),
            history=history,
        )


def _split_env(item: str) -> tuple[str, str]:
    key, _, value = item.partition("=")
    return key, value


def scratch_config() -> ImageConfig:
    """BuildKit's ``emptyImage``: nothing but a default PATH."""
    return ImageConfig(env=(("PATH", DEFAULT_PATH),))


def stage_start(base: ImageConfig) -> ImageConfig:
    """A stage's starting config: the base's, with ONBUILD triggers and CMD tracking reset."""
    return replace(base, on_build=(), cmd_set=False)


def _set_pairs(
    current: Sequence[tuple[str, str]], new: Sequence[tuple[str, str]]
) -> tuple[tuple[str, str], ...]:
    out = list(current)
    for key, value in new:
        for i, (k, _) in enumerate(out):
            if k == key:
                out[i] = (key, value)
                break
        else:
            out.append((key, value))
    return tuple(out)


def apply_change(cfg: ImageConfig, change: ConfigChange) -> ImageConfig:
    """One config change, as the matching BuildKit dispatcher applies it."""
    f = change.field
    first = change.values[0] if change.values else ""
    if f == "env":
        return replace(cfg, env=_set_pairs(cfg.env, change.pairs))
    if f == "labels":
        return replace(cfg, labels=_set_pairs(cfg.labels, change.pairs))
    if f == "user":
        return replace(cfg, user=first)
    if f == "workdir":
        return replace(cfg, working_dir=first)
    if f == "shell":
        return replace(cfg, shell=change.values)
    if f == "cmd":
        return replace(cfg, cmd=change.values, cmd_set=True, args_escaped=True)
    if f == "entrypoint":
        return replace(cfg, entrypoint=change.values,
                       cmd=cfg.cmd if cfg.cmd_set else None)
    if f == "expose":
        from layerkit.dockerfile.instructions import normalize_ports  # the parser's module

        ports = set(cfg.exposed_ports) | set(normalize_ports(change.values))
        return replace(cfg, exposed_ports=tuple(sorted(ports)))
    if f == "volumes":
        return replace(cfg, volumes=tuple(sorted(set(cfg.volumes) | set(change.values))))
    if f == "stopsignal":
        return replace(cfg, stop_signal=first)
    if f == "healthcheck":
        d = {k: int(v) for k, v in change.pairs}
        hc = Healthcheck(change.values, d.get("interval", 0), d.get("timeout", 0),
                         d.get("start_period", 0), d.get("start_interval", 0),
                         d.get("retries", 0))
        return replace(cfg, healthcheck=hc)
    if f == "onbuild":
        return replace(cfg, on_build=(*cfg.on_build, *change.values))
    if f == "maintainer":
        return replace(cfg, author=first)
    return cfg  # "arg": history only
