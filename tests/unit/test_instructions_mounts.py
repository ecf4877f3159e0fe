"""RUN --mount parsing: every field, BuildKit's defaults and validations."""

from __future__ import annotations

import pytest

from layerkit.dockerfile.flags import FlagError
from layerkit.dockerfile.mounts import Mount, mount_from, parse_mount, parse_ram_bytes


def test_default_is_readonly_bind_of_context() -> None:
    m = parse_mount("target=/context")
    assert (m.type, m.target, m.readonly, m.from_) == ("bind", "/context", True, None)


def test_bind_rw_and_from() -> None:
    m = parse_mount("type=bind,from=build,source=/out,target=/in,rw")
    assert m.readonly is False and m.from_ == "build" and m.source == "/out"
    m2 = parse_mount("type=bind,src=a,dst=/b,readwrite=true")
    assert (m2.source, m2.target, m2.readonly) == ("a", "/b", False)
    m3 = parse_mount("type=bind,destination=/b,ro=false")
    assert m3.target == "/b" and m3.readonly is False


def test_cache_defaults_and_fields() -> None:
    m = parse_mount("type=cache,target=/root/.cache/")
    assert m.readonly is False
    assert m.id == "/root/.cache"  # cleaned target
    assert m.effective_sharing == "shared"
    full = parse_mount("type=cache,id=go,target=/go,sharing=locked,mode=0775,uid=1000,gid=1001")
    assert (full.id, full.sharing, full.mode, full.uid, full.gid) == ("go", "locked", 0o775,
                                                                     1000, 1001)
    assert parse_mount("type=cache,target=/x,ro").readonly is True


def test_secret_defaults() -> None:
    m = parse_mount("type=secret,id=npmrc")
    assert m.target == "/run/secrets/npmrc" and m.id == "npmrc" and m.readonly
    assert m.required is False
    by_target = parse_mount("type=secret,target=/root/.aws/credentials,required")
    assert by_target.id == "credentials" and by_target.required is True
    by_source = parse_mount("type=secret,source=token")
    assert by_source.id == "token" and by_source.target == "/run/secrets/token"
    env_only = parse_mount("type=secret,id=tok,env=TOKEN")
    assert env_only.env == "TOKEN" and env_only.target is None


def test_ssh_default_id() -> None:
    m = parse_mount("type=ssh")
    assert m.id == "default" and m.readonly
    assert parse_mount("type=ssh,id=github,required=true").required is True


def test_tmpfs_size() -> None:
    m = parse_mount("type=tmpfs,target=/tmp,size=128m")
    assert m.size == 128 * 1024 * 1024 and m.readonly is False
    assert parse_ram_bytes("1g") == 1 << 30
    assert parse_ram_bytes("512kb") == 512 * 1024


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("type=bind,target=/x,mode=0755", "mode not allowed for 'bind' type mounts"),
        ("type=tmpfs,target=/x,uid=1", "uid not allowed for 'tmpfs' type mounts"),
        ("type=bind,target=/x,size=1m", "unexpected key 'size' for mount type 'bind'"),
        ("type=cache,target=/x,required", "unexpected key 'required' for mount type 'cache'"),
        ("type=secret,from=x,id=a", "secret mount should not have a from"),
        ("type=secret,id=a,sharing=locked", "secret mount should not define sharing"),
        ("type=secret", "invalid secret mount. one of source, target required"),
        ("type=secret,source=a,id=b", "both source and id can't be set"),
        ("type=bind,target=/x,sharing=private", "invalid cache sharing set for bind mount"),
        ("type=cache,target=/x,sharing=everyone", "unsupported sharing value 'everyone'"),
        ("type=cache,target=/x,mode=abc", "invalid value abc for mode"),
        ("type=cache,target=/x,uid=-1", "invalid value -1 for uid"),
        ("type=bind,target=/x,ro=maybe", "invalid value for ro: maybe"),
        ("type=ssh,source=x", "ssh does not support source"),
        ("type=bind,bogus", "invalid field 'bogus' must be a key=value pair"),
        ("type=cache,targt=/x", "unexpected key 'targt'"),
        ("type=tmpfs,target=/x,size=lots", "invalid size"),
    ],
)
def test_invalid_mounts(spec: str, message: str) -> None:
    with pytest.raises(FlagError) as info:
        parse_mount(spec)
    assert message in info.value.message


def test_keys_are_case_insensitive() -> None:
    m = parse_mount("TYPE=cache,Target=/x")
    assert m.type == "cache" and m.target == "/x"


def test_expand_applies_to_values() -> None:
    env = {"MNT": "cache", "P": "/data"}

    def expand(value: str) -> str:
        for k, v in env.items():
            value = value.replace("$" + k, v)
        return value

    m = parse_mount("type=$MNT,target=$P", expand)
    assert (m.type, m.target, m.id) == ("cache", "/data", "/data")


def test_from_variable_rejected_even_with_expander() -> None:
    with pytest.raises(FlagError) as info:
        parse_mount("from=$X,target=/x", lambda v: v)
    assert "define alias stage instead" in info.value.message


def test_mount_from_helper_and_target_resolution() -> None:
    assert mount_from("type=bind,from=build,target=/x") == "build"
    assert mount_from("type=cache,target=/x") is None
    assert Mount(target="cache").resolve_target("/src") == "/src/cache"
    assert Mount(target="/abs/").resolve_target("/src") == "/abs"
    with pytest.raises(FlagError):
        Mount(target="").resolve_target("/")


def test_quoted_csv_field() -> None:
    m = parse_mount('type=bind,"source=a,b",target=/x')
    assert m.source == "a,b"
