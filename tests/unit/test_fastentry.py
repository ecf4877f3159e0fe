"""The pre-click ``layerkit build`` parser agrees with click whenever it accepts.

``commands/fastentry.parse`` may decline anything (click then decides), but an
argument list it accepts must mean exactly the BuildOptions the click command
builds from it. Hypothesis draws argument lists from the flags both know, flags
only click knows, and awkward values.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from unittest import mock

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layerkit.commands._buildflags import to_options
from layerkit.commands.build import command
from layerkit.commands.fastentry import parse
from layerkit.worker.options import BuildOptions

FLAGS = ["-t", "--tag", "-f", "--file", "--build-arg", "--target", "--platform", "--network",
         "--progress", "--metadata-file", "--root", "--jobs"]
CLICK_ONLY = ["--no-cache", "--push", "--pull", "-o", "--output", "--secret", "--cache-to",
              "--cache-from", "--ssh", "--build-context", "--insecure-registry", "--config",
              "--no-cache-filter", "-h", "--help", "--", "-q", "--tags", "-tfoo", "--jobs=2"]
VALUES = ["app:1", "x", "", "-", "-x", "--tag", "a=b", "A", "=v", "K=", "none", "host",
          "default", "bogus", "plain", "json", "tty", "auto", "4", "0", "1", "04", " 3",
          "\u0663", "ctx", ".", "/tmp/store", "Dockerfile.dev", "linux/amd64", "stage"]


def click_options(args: Sequence[str]) -> BuildOptions:
    ctx = command.make_context("build", list(args))
    kw = ctx.params
    return to_options(kw, tags=tuple(kw["tag"]), outputs=tuple(kw["output"]),
                      progress=kw["progress"], metadata_file=kw["metadata_file"])


def check(args: list[str], environ: dict[str, str]) -> BuildOptions | None:
    with mock.patch.dict(os.environ, environ, clear=False):
        if "LAYERKIT_ROOT" not in environ:
            os.environ.pop("LAYERKIT_ROOT", None)
        fast = parse(args, os.environ)
        if fast is not None:
            try:
                slow = click_options(args)
            except (click.ClickException, click.exceptions.Exit) as exc:
                pytest.fail(f"fast path accepted {args!r}, click rejects it: {exc}")
            assert fast == slow, args
    return fast


tokens = st.one_of(st.sampled_from(FLAGS), st.sampled_from(CLICK_ONLY),
                   st.sampled_from(VALUES), st.sampled_from([f"{f}={v}" for f in FLAGS[1::2]
                                                             for v in ("x", "", "plain")]))
environs = st.sampled_from([{}, {"LAYERKIT_ROOT": "/srv/lk"}, {"LAYERKIT_ROOT": ""}])


@settings(max_examples=1500, deadline=None)
@given(st.lists(tokens, max_size=9), environs)
def test_accepted_argument_lists_mean_what_click_says(args: list[str],
                                                      environ: dict[str, str]) -> None:
    check(args, environ)


@pytest.mark.parametrize("args", [
    [],
    ["."],
    ["-t", "app:1", "ctx"],
    ["--root", "/tmp/store", "-t", "a", "-t", "b", "-f", "Dockerfile.dev", "."],
    ["--build-arg", "A=1", "--build-arg", "B", "--target=stage", "--network", "none", "."],
    ["--progress", "plain", "--metadata-file", "md.json", "--jobs", "2", "ctx"],
    [".", "--tag=app:1"],  # options after the context, as click allows
])
def test_the_common_spellings_are_taken(args: list[str]) -> None:
    assert check(args, {"LAYERKIT_ROOT": "/srv/lk"}) is not None


@pytest.mark.parametrize("args", [
    ["--no-cache", "."], ["-o", "type=oci,dest=x", "."], ["--help"], ["-h"], ["--", "."],
    ["a", "b"], ["--network", "bogus"], ["--jobs", "0"], ["--jobs", "x"], ["-tapp"],
    ["--build-arg", "=v"], ["-t"], ["--tag", "-x"], ["--push", "-t", "r/a"],
])
def test_everything_else_is_left_to_click(args: list[str]) -> None:
    assert parse(args, {}) is None


def test_layerkit_root_from_the_environment() -> None:
    assert check(["."], {"LAYERKIT_ROOT": "/srv/lk"}) == BuildOptions(root="/srv/lk")
    assert check(["."], {"LAYERKIT_ROOT": ""}) == BuildOptions(root=None)
    assert check(["--root", "/x", "."], {"LAYERKIT_ROOT": "/srv/lk"}) == BuildOptions(root="/x")
