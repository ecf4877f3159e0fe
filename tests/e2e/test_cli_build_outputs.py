"""``layerkit build`` from the command line: outputs checked by independent tools
(skopeo, umoci, the OCI JSON schemas, docker when a daemon is reachable), the
``--metadata-file`` and ``plan``'s output."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from support.buildenv import BuildEnv, cli, make_build_env
from support.docker import DockerDaemon


@pytest.fixture
def build_env(tmp_path: Path, busybox_docker_archive: Path) -> BuildEnv:
    return make_build_env(tmp_path, busybox_docker_archive)


DOCKERFILE = """\
FROM busybox AS base
WORKDIR /srv
COPY deps.txt ./
RUN head -c 8 /dev/urandom | od -An -tx1 > /srv/id

FROM base
COPY app/ ./app/
ARG VERSION=dev
LABEL version=$VERSION
ENV GREETING=hello
CMD ["sh", "/srv/app/run.sh"]
"""


@pytest.fixture
def app(build_env: BuildEnv) -> Path:
    return build_env.context({
        "Dockerfile": DOCKERFILE,
        "deps.txt": "a\n",
        "app/run.sh": "echo $GREETING from $(cat /srv/id)\n",
    })


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (apt-get install {name})")
    return path


def test_metadata_file_has_digests_names_and_steps(build_env: BuildEnv, app: Path) -> None:
    meta = build_env.tmp / "meta.json"
    proc = cli("build", "-t", "demo:1", "-t", "demo:latest", "--metadata-file", str(meta),
               "--progress", "plain", str(app), root=build_env.root)
    data = json.loads(meta.read_text())
    assert proc.stdout.strip() == data["containerimage.config.digest"]
    assert data["containerimage.digest"].startswith("sha256:")
    assert data["image.name"] == "demo:1,demo:latest"
    steps = data["steps"]
    assert {s["status"] for s in steps if s["number"]} == {"ran"}
    run = next(s for s in steps if s["instruction"].startswith("RUN"))
    assert run["stage"] == "base" and run["index"] == 3
    assert run["reason"] == "no earlier build of this step in the cache"
    assert run["duration_s"] > 0
    label = next(s for s in steps if s["instruction"].startswith("LABEL"))
    assert label["instruction"] == "LABEL version=$VERSION"  # as written
    again = build_env.tmp / "meta2.json"
    cli("build", "-t", "demo:1", "--metadata-file", str(again), str(app), root=build_env.root)
    data2 = json.loads(again.read_text())
    assert {s["status"] for s in data2["steps"]} == {"cached"}
    assert data2["containerimage.config.digest"] == data["containerimage.config.digest"]


def test_plan_cli_predicts_and_build_agrees(build_env: BuildEnv, app: Path) -> None:
    cli("build", str(app), root=build_env.root)
    (app / "app" / "run.sh").write_text("echo changed\n")
    plan = json.loads(cli("plan", "--format", "json", str(app), root=build_env.root).stdout)
    predicted = {s["instruction"]: s["prediction"] for s in plan["steps"]}
    text = cli("plan", str(app), root=build_env.root).stdout
    assert "app/run.sh changed" in text
    meta = build_env.tmp / "m.json"
    cli("build", "--metadata-file", str(meta), str(app), root=build_env.root)
    actual = {s["instruction"]: "cached" if s["status"] == "cached" else "run"
              for s in json.loads(meta.read_text())["steps"] if s["number"]}
    assert predicted == actual
    assert [k for k, v in actual.items() if v == "run"] == ["COPY app/ ./app/"]


def test_oci_output_passes_skopeo_umoci_and_schemas(
    build_env: BuildEnv, app: Path, conformance_dir: Path,
) -> None:
    skopeo, umoci = _tool("skopeo"), _tool("umoci")
    tar = build_env.tmp / "image.oci.tar"
    layout = build_env.tmp / "layout"
    zstd = build_env.tmp / "layout-zstd"
    cli("build", "-t", "demo:1", "-o", f"type=oci,dest={tar}",
        "-o", f"type=oci,dest={layout},tar=false",
        "-o", f"type=oci,dest={zstd},tar=false,compression=zstd", str(app),
        root=build_env.root)
    info = json.loads(subprocess.run([skopeo, "inspect", f"oci-archive:{tar}"],
                                     capture_output=True, text=True, check=True).stdout)
    assert info["Env"][-1] == "GREETING=hello"
    assert info["Labels"]["version"] == "dev"
    assert len(info["Layers"]) == 5  # busybox + WORKDIR + COPY + RUN + COPY
    bundle = build_env.tmp / "bundle"
    subprocess.run([umoci, "unpack", "--image", f"{layout}:1", str(bundle)],
                   capture_output=True, text=True, check=True)
    assert (bundle / "rootfs" / "srv" / "app" / "run.sh").read_text().startswith("echo")
    try:
        from conformance.test_oci_schema import SchemaSet
    except ImportError as e:  # pragma: no cover - the helper moved
        pytest.skip(f"OCI schema helper not importable: {e}")
    schemas = SchemaSet(conformance_dir / "oci-image-spec" / "schema")
    suffixes = []
    for where in (layout, zstd):
        index = json.loads((where / "index.json").read_text())
        assert schemas.errors("index", index) == []
        manifest_digest = index["manifests"][0]["digest"].split(":")[1]
        manifest = json.loads((where / "blobs" / "sha256" / manifest_digest).read_text())
        assert schemas.errors("manifest", manifest) == []
        suffixes.append(manifest["layers"][0]["mediaType"].rsplit("+", 1)[-1])
        config = json.loads((where / "blobs" / "sha256" /
                             manifest["config"]["digest"].split(":")[1]).read_text())
        assert schemas.errors("config", config) == []
    assert suffixes == ["gzip", "zstd"]
    # umoci 0.4 cannot read zstd layers; skopeo can.
    subprocess.run([skopeo, "inspect", f"oci:{zstd}:1"], capture_output=True, check=True)


def test_docker_local_and_tar_outputs(build_env: BuildEnv, app: Path) -> None:
    docker_tar = build_env.tmp / "docker.tar"
    local = build_env.tmp / "rootfs"
    fs_tar = build_env.tmp / "fs.tar"
    cli("build", "-t", "demo:1", "-o", f"type=docker,dest={docker_tar}",
        "-o", f"type=local,dest={local}", "-o", f"type=tar,dest={fs_tar}", str(app),
        root=build_env.root)
    with tarfile.open(docker_tar) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert manifest[0]["RepoTags"] == ["demo:1"]
    assert (local / "srv" / "app" / "run.sh").is_file()
    assert (local / "bin" / "busybox").is_file()
    with tarfile.open(fs_tar) as tar:
        assert "srv/app/run.sh" in tar.getnames()
    skopeo = shutil.which("skopeo")
    if skopeo:
        out = subprocess.run([skopeo, "inspect", "--config", f"docker-archive:{docker_tar}"],
                             capture_output=True, text=True, check=True).stdout
        assert json.loads(out)["config"]["Cmd"] == ["sh", "/srv/app/run.sh"]


def test_docker_archive_loads_and_runs_in_docker(
    build_env: BuildEnv, app: Path, docker_daemon: DockerDaemon,
) -> None:
    dest = build_env.tmp / "docker.tar"
    cli("build", "-t", "layerkit-e2e:1", "-o", f"type=docker,dest={dest}", str(app),
        root=build_env.root)
    docker_daemon.run("load", "-i", str(dest))
    try:
        out = docker_daemon.run("run", "--rm", "layerkit-e2e:1", timeout=180).stdout
        assert out.startswith("hello from")
    finally:
        docker_daemon.run("rmi", "-f", "layerkit-e2e:1", check=False)


def test_build_context_oci_layout_and_local_dir(
    build_env: BuildEnv, busybox_image: object,
) -> None:
    layout = busybox_image.layout  # type: ignore[attr-defined]
    tag = busybox_image.tag  # type: ignore[attr-defined]
    extra = build_env.context({"msg.txt": "from a named context\n"}, name="extra")
    ctx = build_env.context({
        "Dockerfile": ("FROM mybase\nCOPY --from=extra msg.txt /msg.txt\n"
                       "RUN cat /msg.txt > /copy\n"),
    }, name="named")
    out = build_env.tmp / "named-rootfs"
    cli("build", "--build-context", f"mybase=oci-layout://{layout}:{tag}",
        "--build-context", f"extra={extra}", "-o", f"type=local,dest={out}", str(ctx),
        root=build_env.root)
    assert (out / "copy").read_text() == "from a named context\n"
    (extra / "msg.txt").write_text("edited\n")
    meta = build_env.tmp / "named.json"
    cli("build", "--build-context", f"mybase=oci-layout://{layout}:{tag}",
        "--build-context", f"extra={extra}", "--metadata-file", str(meta), str(ctx),
        root=build_env.root)
    ran = [s["instruction"] for s in json.loads(meta.read_text())["steps"]
           if s["status"] == "ran"]
    assert ran == ["COPY --from=extra msg.txt /msg.txt", "RUN cat /msg.txt > /copy"]
