"""Parses the build flags that name outside resources, as ``docker buildx build`` spells them.

``--secret id=ID,src=FILE|env=VAR``, ``--ssh default[=SOCKET]``,
``--build-context NAME=PATH|oci-layout://DIR[:TAG]`` and
``-o/--output type=…,dest=…``: text in, small frozen specs out. A bad value
is a :class:`~layerkit.errors.BuildError` that shows the flag and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from layerkit.errors import BuildError
from layerkit.fastclass import dataclass, field

__all__ = [
    "NamedContext",
    "OutputSpec",
    "SecretSpec",
    "SshSpec",
    "parse_build_contexts",
    "parse_outputs",
    "parse_secrets",
    "parse_ssh",
]

OUTPUT_TYPES = ("image", "oci", "docker", "local", "tar", "registry")


def _flag_error(flag: str, value: str, problem: str, hint: str) -> BuildError:
    return BuildError(f"{flag} {value!r}: {problem}", hint=hint, reference="bad-flag")


def _pairs(flag: str, value: str, hint: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in value.split(","):
        if not part:
            continue
        key, eq, val = part.partition("=")
        if not eq:
            raise _flag_error(flag, value, f"{part!r} is not key=value", hint)
        out[key.strip().lower()] = val
    return out


@dataclass(frozen=True)
class SecretSpec:
    """A secret the user offers to ``RUN --mount=type=secret,id=ID``."""

    id: str
    src: Path | None = None
    env: str | None = None

    def read(self) -> bytes:
        if self.src is not None:
            return self.src.read_bytes()
        return os.environ.get(self.env or self.id, "").encode()


def parse_secrets(values: Sequence[str]) -> dict[str, SecretSpec]:
    hint = "write --secret id=mytoken,src=./token.txt or --secret id=mytoken,env=TOKEN"
    out: dict[str, SecretSpec] = {}
    for value in values:
        kv = _pairs("--secret", value, hint)
        sid = kv.get("id", "")
        src = kv.get("src") or kv.get("source")
        env = kv.get("env")
        if "type" in kv and kv["type"] not in ("file", "env"):
            raise _flag_error("--secret", value, f"unknown type {kv['type']!r}", hint)
        if not sid:
            sid = Path(src).name if src else (env or "")
        if not sid:
            raise _flag_error("--secret", value, "no id", hint)
        if src is None and env is None:
            # BuildKit: with neither, an env var named like the id, else a file of that name.
            if sid in os.environ:
                env = sid
            else:
                src = sid
        if src is not None:
            path = Path(src).expanduser()
            if not path.is_file():
                raise _flag_error("--secret", value, f"file {src} does not exist",
                                  "point src= at a readable file")
            out[sid] = SecretSpec(sid, src=path.absolute())
        else:
            out[sid] = SecretSpec(sid, env=env)
    return out


@dataclass(frozen=True)
class SshSpec:
    id: str
    socket: Path


def parse_ssh(
    values: Sequence[str], environ: Mapping[str, str] | None = None
) -> dict[str, SshSpec]:
    env = os.environ if environ is None else environ
    out: dict[str, SshSpec] = {}
    for value in values:
        sid, _, path = value.partition("=")
        sid = sid or "default"
        sock = path or env.get("SSH_AUTH_SOCK", "")
        if not sock:
            raise _flag_error("--ssh", value, "no agent socket: SSH_AUTH_SOCK is not set",
                              "start ssh-agent (eval $(ssh-agent)) or pass "
                              "--ssh default=/path/to/socket")
        out[sid] = SshSpec(sid, Path(sock))
    return out


@dataclass(frozen=True)
class NamedContext:
    """``--build-context NAME=…``: a local directory or an OCI layout (with a tag)."""

    name: str
    kind: str  # "local" | "oci-layout"
    path: Path
    tag: str = ""


def parse_build_contexts(values: Sequence[str]) -> dict[str, NamedContext]:
    hint = "write --build-context NAME=./dir or --build-context NAME=oci-layout:///path/to/layout:tag"
    out: dict[str, NamedContext] = {}
    for value in values:
        name, eq, where = value.partition("=")
        if not eq or not name or not where:
            raise _flag_error("--build-context", value, "expected NAME=VALUE", hint)
        if where.startswith("oci-layout://"):
            rest = where.removeprefix("oci-layout://")
            path, tag = rest, ""
            head, colon, tail = rest.rpartition(":")
            if colon and "/" not in tail:
                path, tag = head, tail
            if "@" in path:
                path, _, tag = path.partition("@")
            ctx = NamedContext(name, "oci-layout", Path(path).absolute(), tag)
            if not (ctx.path / "index.json").is_file():
                raise _flag_error("--build-context", value, f"{path} is not an OCI layout "
                                  "(no index.json)", hint)
        elif "://" in where or where.startswith("docker-image:"):
            raise _flag_error("--build-context", value, "only local directories and "
                              "oci-layout:// are supported", hint)
        else:
            ctx = NamedContext(name, "local", Path(where).absolute())
            if not ctx.path.is_dir():
                raise _flag_error("--build-context", value, f"directory {where} does not exist",
                                  hint)
        out[name.lower()] = ctx
    return out


@dataclass(frozen=True)
class OutputSpec:
    """One ``-o type=…``; ``attrs`` keeps the other keys (compression, name, …)."""

    type: str
    dest: Path | None = None
    attrs: Mapping[str, str] = field(default_factory=dict)


def parse_outputs(values: Sequence[str]) -> list[OutputSpec]:
    hint = ("write -o type=oci,dest=out.tar, -o type=docker,dest=img.tar, "
            "-o type=local,dest=DIR, -o type=tar,dest=fs.tar, -o type=image[,push=true] "
            "or -o type=registry,name=REGISTRY/REPO:TAG")
    out: list[OutputSpec] = []
    for value in values:
        if "=" not in value:
            # docker buildx: a bare path means type=local,dest=PATH ("-" is a tar on stdout).
            out.append(OutputSpec("local", Path(value).absolute()))
            continue
        kv = _pairs("--output", value, hint)
        kind = kv.pop("type", "local")
        if kind not in OUTPUT_TYPES:
            raise _flag_error("--output", value, f"unknown type {kind!r}", hint)
        dest = kv.pop("dest", None)
        if kind == "registry":
            # BuildKit: type=registry is type=image,push=true; the names come from name=
            # (or -t when the build names its image).
            kind, kv["push"] = "image", "true"
            kv.setdefault("registry", "true")
        if kind == "image" and kv.get("push", "false").lower() not in (
                "true", "false", "1", "0"):
            raise _flag_error("--output", value, f"push={kv['push']!r} is not true or false",
                              hint)
        if kind != "image" and not dest:
            raise _flag_error("--output", value, f"type={kind} needs dest=", hint)
        if kind == "oci" and kv.get("compression", "gzip") not in ("gzip", "zstd",
                                                                     "uncompressed"):
            raise _flag_error("--output", value, f"unknown compression {kv['compression']!r}",
                              "use compression=gzip or compression=zstd")
        out.append(OutputSpec(kind, Path(dest).absolute() if dest else None, kv))
    return out
