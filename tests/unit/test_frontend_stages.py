"""The stage graph: targets, pruning, dependencies and parallel waves."""

from __future__ import annotations

import pytest

from layerkit.dockerfile.parser import parse
from layerkit.errors import DockerfileError, FrontendError
from layerkit.frontend import (
    Platform,
    StageGraph,
    build_stage_graph,
    format_stages,
    stages_to_json,
)

AMD64 = Platform("linux", "amd64")

GO_APP = """\
# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22
ARG ALPINE=3.19

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-alpine AS base
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

FROM base AS build
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \\
    --mount=type=bind,target=. \\
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/app ./cmd/app

FROM base AS test
RUN --mount=type=bind,target=. go test ./...

FROM golangci/golangci-lint:v1.59 AS lint
RUN --mount=type=bind,from=base,source=/src,target=/src golangci-lint run

FROM alpine:${ALPINE} AS release
RUN apk add --no-cache ca-certificates
COPY --from=build /out/app /usr/local/bin/app
ENTRYPOINT ["/usr/local/bin/app"]
"""

NODE_APP = """\
FROM node:20-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci

FROM node:20-slim AS builder
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY . .
RUN npm run build

FROM nginx:1.27-alpine
COPY --from=builder /app/dist /usr/share/nginx/html
COPY --from=busybox:1.36 /bin/busybox /bin/busybox
"""

PYTHON_APP = """\
FROM python:3.12-slim AS wheels
RUN pip wheel --wheel-dir /wheels -r requirements.txt

FROM python:3.12-slim AS docs
RUN pip install mkdocs

FROM python:3.12-slim
COPY --from=0 /wheels /wheels
RUN --mount=type=cache,target=/root/.cache/pip pip install /wheels/*
"""


def graph(text: str, **kw: object) -> StageGraph:
    return build_stage_graph(parse(text), platform=AMD64, build_platform=AMD64, **kw)  # type: ignore[arg-type]


def test_go_app_default_target_prunes_test_and_lint() -> None:
    g = graph(GO_APP)
    assert g.target.name == "release"
    assert [s.name for s in g.stages if s.needed] == ["base", "build", "release"]
    assert [s.name for s in g.stages if not s.needed] == ["test", "lint"]
    assert g.build_order == [[0], [1], [4]]


def test_go_app_stage_bases_and_deps() -> None:
    g = graph(GO_APP)
    base, build, test, lint, release = g.stages
    assert base.base == "golang:1.22-alpine" and base.base_stage is None
    assert build.base_stage == 0 and build.deps == (0,)
    assert test.deps == (0,)
    assert lint.deps == (0,) and lint.dependencies[0].kind == "mount"
    assert release.base == "alpine:3.19" and release.deps == (1,)
    assert base.used_args == {"GO_VERSION", "BUILDPLATFORM"}


def test_go_app_target_lint_needs_base_only() -> None:
    g = graph(GO_APP, target="LINT")
    assert g.target.name == "lint"
    assert [s.name for s in g.stages if s.needed] == ["base", "lint"]
    assert g.build_order == [[0], [3]]


def test_node_app_copy_from_image_is_external() -> None:
    g = graph(NODE_APP)
    final = g.target
    assert final.name is None and final.display_name == "stage-2"
    assert final.deps == (1,)
    assert final.external_images == ("busybox:1.36",)
    assert g.build_order == [[0], [1], [2]]


def test_numbered_stage_reference_and_parallel_wave() -> None:
    g = graph(PYTHON_APP)
    assert g.stages[2].deps == (0,)
    assert not g.stages[1].needed
    g_all = graph(PYTHON_APP + "COPY --from=docs /site /site\n")
    assert g_all.stages[2].deps == (0, 1)
    assert g_all.build_order == [[0, 1], [2]]


def test_stage_names_are_case_insensitive() -> None:
    g = graph("FROM busybox AS STAge0\nRUN x\nFROM busybox AS Stage1\nCOPY --from=staGE0 /a /b\n")
    assert g.stages[1].deps == (0,)
    assert graph("FROM a AS Foo\nFROM b\n", target="FOO").target.index == 0


def test_stage_name_masks_image_of_same_name() -> None:
    g = graph("FROM alpine AS golang\nRUN x\nFROM scratch\nCOPY --from=golang /a /b\n")
    assert g.stages[1].deps == (0,) and g.stages[1].external_images == ()


def test_from_earlier_stage() -> None:
    g = graph("FROM alpine AS base\nFROM base\nRUN x\n")
    assert g.stages[1].base_stage == 0 and g.stages[1].deps == (0,)


def test_from_same_name_as_itself_is_an_image() -> None:
    g = graph("FROM node AS node\n")
    assert g.stages[0].base_stage is None and g.stages[0].base == "node"


def test_unknown_target_lists_stages() -> None:
    with pytest.raises(FrontendError) as info:
        graph(GO_APP, target="deploy")
    assert info.value.message == "target stage 'deploy' could not be found"
    assert info.value.hint is not None
    for name in ("base", "build", "test", "lint", "release"):
        assert name in info.value.hint


def test_copy_from_later_stage_is_an_error() -> None:
    text = "FROM busybox AS target\nCOPY --from=build / /out\nFROM alpine AS build\n"
    with pytest.raises(FrontendError) as info:
        graph(text)
    assert "cannot copy from stage 'build', it needs to be defined before current stage" in (
        info.value.message
    )
    assert info.value.location is not None and info.value.location.line == 2


def test_copy_from_later_index_is_an_error() -> None:
    with pytest.raises(FrontendError) as info:
        graph("FROM a\nCOPY --from=1 /x /y\nFROM b\n")
    assert "needs to be defined before current stage" in info.value.message


def test_copy_from_missing_index() -> None:
    with pytest.raises(FrontendError) as info:
        graph("FROM a\nFROM b\nCOPY --from=5 /x /y\n")
    assert info.value.message == "invalid stage index 5"


def test_copy_from_self_is_circular() -> None:
    with pytest.raises(FrontendError) as info:
        graph("FROM a AS me\nCOPY --from=me /x /y\n")
    assert "circular dependency detected on stage: me" in info.value.message


def test_mount_from_later_stage_is_an_error() -> None:
    with pytest.raises(FrontendError):
        graph("FROM a\nRUN --mount=from=later,target=/x true\nFROM b AS later\n")


def test_from_later_stage_is_an_error() -> None:
    with pytest.raises(FrontendError) as info:
        graph("FROM app AS x\nFROM alpine AS app\n")
    assert "defined later" in info.value.message


def test_duplicate_stage_name() -> None:
    with pytest.raises(FrontendError) as info:
        graph("FROM a AS x\nFROM b AS X\n")
    assert "duplicate stage name 'x'" in info.value.message
    assert info.value.location is not None and info.value.location.line == 2


def test_no_stages() -> None:
    with pytest.raises(FrontendError) as info:
        graph("ARG foo=bar\n")
    assert info.value.message == "dockerfile contains no stages to build"


def test_typo_in_pruned_stage_still_fails() -> None:
    with pytest.raises(DockerfileError):
        graph("FROM a AS unused\nRUNN x\nFROM b\n")


def test_onbuild_trigger_of_stage_adds_dependency() -> None:
    text = (
        "FROM alpine AS assets\nRUN x\n"
        "FROM alpine AS base\nONBUILD COPY --from=assets /a /a\n"
        "FROM base\nRUN y\n"
    )
    g = graph(text)
    final = g.target
    assert final.deps == (0, 1)
    assert [d.kind for d in final.dependencies] == ["from", "onbuild-copy"]
    assert len(final.onbuild_triggers) == 1
    assert g.build_order == [[0, 1], [2]]
    assert g.stages[1].deps == ()  # the declaring stage does not run its own trigger


def test_blank_base_name_error() -> None:
    with pytest.raises(FrontendError) as info:
        graph("ARG IMAGE\nFROM $IMAGE\n")
    assert "base name ($IMAGE) should not be blank" in info.value.message
    assert info.value.hint is not None and "IMAGE" in info.value.hint


def test_platform_flag_is_expanded_and_parsed() -> None:
    g = graph("FROM --platform=$TARGETPLATFORM alpine AS a\nFROM --platform=linux/arm64 b\n")
    assert g.stages[0].platform == AMD64
    assert g.stages[1].platform == Platform("linux", "arm64")


def test_bad_platform() -> None:
    with pytest.raises(FrontendError) as info:
        graph("FROM --platform=linux/amd64/v3/x a\n")
    assert "failed to parse platform" in info.value.message


def test_format_stages_text_and_json() -> None:
    g = graph(GO_APP, build_args={"UNUSED": "1"})
    text = format_stages(g)
    assert "target: release (stage 4)" in text
    assert "[3] lint" in text and "pruned" in text
    assert "wave 1: base" in text and "wave 3: release" in text
    assert "[Warning] One or more build-args [UNUSED] were not consumed" in text
    data = stages_to_json(g)
    assert data["build_order"] == [[0], [1], [4]]
    assert [s["needed"] for s in data["stages"]] == [True, True, False, False, True]
    assert data["unused_build_args"] == ["UNUSED"]


def test_graph_stage_lookup() -> None:
    g = graph(GO_APP)
    assert g.stage("Build").index == 1 and g.stage(0).name == "base"
    with pytest.raises(KeyError):
        g.stage("nope")


def test_public_interface_is_pinned() -> None:
    import layerkit.frontend as frontend

    assert sorted(frontend.__all__) == sorted([
        "BaseImageConfig", "Dependency", "MetaArg", "Platform", "Stage", "StageGraph", "Step",
        "build_stage_graph", "dispatch_stage", "format_stages", "format_stages_json",
        "host_platform", "parse_platform", "stages_to_json",
    ])
    for name in frontend.__all__:
        assert hasattr(frontend, name)
