"""The registry flags of ``layerkit build``: ``-o type=registry``, ``-o type=image,push=true``,
``--push``, ``--cache-from``/``--cache-to`` and the registry options, from the command line
to BuildOptions and push targets (no build runs)."""

from __future__ import annotations

from typing import Any

import click
import pytest
from click.testing import CliRunner

from layerkit.errors import BuildError
from layerkit.worker.options import BuildOptions
from layerkit.worker.session import _push_targets
from layerkit.worker.specs import parse_outputs


def test_type_registry_is_image_with_push() -> None:
    (spec,) = parse_outputs(["type=registry,name=reg.example/app:1"])
    assert spec.type == "image" and spec.attrs["push"] == "true"
    assert _push_targets(BuildOptions(), [spec], ()) == ("reg.example/app:1",)


def test_push_targets_combine_tags_and_outputs() -> None:
    specs = parse_outputs(["type=image,name=r.example/a:1,push=true", "type=image,name=b:2"])
    options = BuildOptions(push=True)
    targets = _push_targets(options, specs, ("r.example/t:1", "r.example/a:1"))
    assert targets == ("r.example/t:1", "r.example/a:1")  # b:2 is not pushed; no duplicates


@pytest.mark.parametrize(("outputs", "push", "tags", "message"), [
    (["type=registry"], False, (), "needs name="),
    ([], True, (), "--push needs at least one -t"),
    (["type=image,push=maybe"], False, (), "is not true or false"),
])
def test_push_flag_errors_say_how_to_fix(outputs: list[str], push: bool,
                                        tags: tuple[str, ...], message: str) -> None:
    with pytest.raises(BuildError) as info:
        _push_targets(BuildOptions(push=push), parse_outputs(outputs), tags)
    assert message in info.value.message
    assert info.value.hint


def test_cli_flags_reach_build_options() -> None:
    from layerkit.commands._buildflags import build_flags, to_options

    seen: dict[str, Any] = {}

    @click.command()
    @build_flags
    def cmd(**kw: Any) -> None:
        seen["options"] = to_options(kw)

    result = CliRunner().invoke(cmd, [
        "--cache-from", "type=registry,ref=r.example/c", "--cache-from", "r.example/app:1",
        "--cache-to", "type=registry,ref=r.example/c,mode=max", "--cache-to", "type=inline",
        "--push", "--pull", "--insecure-registry", "r.example", "--config", "/etc/lk.toml",
        "ctx",
    ])
    assert result.exit_code == 0, result.output
    options: BuildOptions = seen["options"]
    assert options.cache_from == ("type=registry,ref=r.example/c", "r.example/app:1")
    assert options.cache_to == ("type=registry,ref=r.example/c,mode=max", "type=inline")
    assert options.push and options.pull
    assert options.insecure_registries == ("r.example",)
    assert options.registry_config == "/etc/lk.toml"
    assert options.context == "ctx"
