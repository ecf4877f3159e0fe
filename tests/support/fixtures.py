"""pytest fixtures over the support modules: registries and busybox base images.

Registered in tests/conftest.py through ``pytest_plugins``. A missing tool
(``docker-registry``, ``busybox``, ``skopeo``) skips the test loudly, naming
the tool and the ``apt-get install`` command that provides it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .docker import DockerDaemon, start_docker
from .images import (
    OciImage,
    build_busybox_image,
    push_image,
    write_docker_archive,
)
from .registry import HtpasswdAuth, RunningRegistry, start_registry
from .tools import ToolMissing, require_tool

MULTI_PLATFORMS = ("linux/amd64", "linux/arm64")


def _skip(err: ToolMissing) -> None:
    pytest.skip(f"SKIPPED: {err.tool} missing — install it with `{err.install_hint}`")


@pytest.fixture
def tool() -> Callable[[str], Path]:
    """``tool("skopeo")`` returns the tool's path or skips naming the apt package."""

    def find(name: str) -> Path:
        try:
            return require_tool(name)
        except ToolMissing as err:
            _skip(err)
            raise  # unreachable: pytest.skip raises

    return find


def _registry(workdir: Path, auth: HtpasswdAuth | None = None) -> Iterator[RunningRegistry]:
    try:
        running = start_registry(workdir, auth=auth)
    except ToolMissing as err:
        _skip(err)
        raise
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """A fresh, empty registry on 127.0.0.1:<random port> (no auth), for one test."""
    yield from _registry(tmp_path_factory.mktemp("registry"))


@pytest.fixture(scope="session")
def session_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """One registry shared by the whole session: push under unique repository names."""
    yield from _registry(tmp_path_factory.mktemp("session-registry"))


@pytest.fixture
def basic_auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """A registry requiring HTTP Basic auth; credentials are in ``registry.auth``."""
    yield from _registry(tmp_path_factory.mktemp("auth-registry"), HtpasswdAuth())


def _build(factory: Callable[[], OciImage]) -> OciImage:
    try:
        return factory()
    except ToolMissing as err:
        _skip(err)
        raise


@pytest.fixture(scope="session")
def busybox_image(tmp_path_factory: pytest.TempPathFactory) -> OciImage:
    """busybox:1.35 (linux/amd64) as an OCI layout: ``busybox_image.oci_ref``."""
    layout = tmp_path_factory.mktemp("busybox-oci")
    return _build(lambda: build_busybox_image(layout, "1.35"))


@pytest.fixture(scope="session")
def busybox_index_image(tmp_path_factory: pytest.TempPathFactory) -> OciImage:
    """busybox:1.35 as an image index with linux/amd64 and linux/arm64 entries."""
    layout = tmp_path_factory.mktemp("busybox-index-oci")
    return _build(lambda: build_busybox_image(layout, "1.35", platforms=MULTI_PLATFORMS))


@pytest.fixture(scope="session")
def busybox_docker_archive(
    busybox_image: OciImage, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A ``docker load``-able tar of ``busybox:1.35``."""
    dest = tmp_path_factory.mktemp("busybox-archive") / "busybox.tar"
    return write_docker_archive(busybox_image, dest, "busybox:1.35")


def _push(image: OciImage, reg: RunningRegistry, repository: str) -> str:
    ref = reg.ref(repository, image.tag)
    try:
        push_image(image, ref)
    except ToolMissing as err:
        _skip(err)
    return ref


@pytest.fixture(scope="session")
def pushed_busybox(session_registry: RunningRegistry, busybox_image: OciImage) -> str:
    """``127.0.0.1:PORT/busybox:1.35`` in ``session_registry``."""
    return _push(busybox_image, session_registry, "busybox")


@pytest.fixture(scope="session")
def pushed_busybox_index(
    session_registry: RunningRegistry, busybox_index_image: OciImage
) -> str:
    """``127.0.0.1:PORT/busybox-multi:1.35``: an index with amd64 and arm64 entries."""
    return _push(busybox_index_image, session_registry, "busybox-multi")


@pytest.fixture(scope="session")
def docker_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerDaemon]:
    """A real Docker engine: the host's, or a private dockerd started for the session."""
    try:
        daemon = start_docker(tmp_path_factory.mktemp("dockerd"))
    except ToolMissing as err:
        _skip(err)
        raise
    try:
        yield daemon
    finally:
        daemon.stop()
