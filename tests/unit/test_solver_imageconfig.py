"""Image config and history, against BuildKit's documented behaviour."""

from __future__ import annotations

from pathlib import Path

from layerkit.graph import ConfigChange
from layerkit.solver import FakeBuild, FakeWorker, ImageConfig, apply_change, scratch_config
from layerkit.solver.imageconfig import DEFAULT_PATH, stage_start

IMAGES = {"busybox": {"/bin/sh": "sh"}}


def build_config(tmp_path: Path, dockerfile: str, base: ImageConfig | None = None,
                 **kw: object) -> ImageConfig:
    worker = FakeWorker(images=IMAGES, image_configs={"busybox": base or ImageConfig()})
    result = FakeBuild(dockerfile, worker, tmp_path / "c.db").build(**kw)  # type: ignore[arg-type]
    return result.final.config


def test_scratch_has_only_the_default_path(tmp_path: Path) -> None:
    cfg = build_config(tmp_path, "FROM scratch\nCOPY a /\n")
    assert cfg.env == (("PATH", DEFAULT_PATH),)
    assert scratch_config().to_oci_config() == {"Env": [f"PATH={DEFAULT_PATH}"]}


def test_entrypoint_resets_inherited_cmd(tmp_path: Path) -> None:
    base = ImageConfig(cmd=("sh",))
    cfg = build_config(tmp_path, 'FROM busybox\nENTRYPOINT ["/app"]\n', base)
    assert cfg.entrypoint == ("/app",)
    assert cfg.cmd is None


def test_entrypoint_keeps_a_cmd_set_in_this_stage(tmp_path: Path) -> None:
    cfg = build_config(tmp_path, 'FROM busybox\nCMD ["--help"]\nENTRYPOINT ["/app"]\n',
                       ImageConfig(cmd=("sh",)))
    assert cfg.cmd == ("--help",)


def test_shell_form_cmd_and_entrypoint_use_the_shell(tmp_path: Path) -> None:
    cfg = build_config(tmp_path, 'FROM busybox\nSHELL ["/bin/bash", "-xc"]\nCMD echo hi\n'
                                 "ENTRYPOINT exec app\n")
    assert cfg.entrypoint == ("/bin/bash", "-xc", "exec app")
    # CMD was set in this stage, so ENTRYPOINT keeps it.
    assert cfg.cmd == ("/bin/bash", "-xc", "echo hi")
    assert cfg.shell == ("/bin/bash", "-xc")


def test_expose_is_sorted_with_tcp_default(tmp_path: Path) -> None:
    """testExposeExpansion: 3000/tcp, 4000/udp and 5000/tcp."""
    cfg = build_config(tmp_path, 'FROM busybox\nARG PORTS="3000 4000/udp"\nEXPOSE $PORTS\n'
                                 "EXPOSE 5000\n")
    assert cfg.exposed_ports == ("3000/tcp", "4000/udp", "5000/tcp")
    assert cfg.to_oci_config()["ExposedPorts"] == {
        "3000/tcp": {}, "4000/udp": {}, "5000/tcp": {}}


def test_env_replaces_in_place_and_labels_merge(tmp_path: Path) -> None:
    base = ImageConfig(env=(("PATH", "/bin"), ("A", "1")), labels=(("l", "base"),))
    cfg = build_config(tmp_path, "FROM busybox\nENV PATH=/x:$PATH B=2\nLABEL m=1 l=mine\n", base)
    assert cfg.env == (("PATH", "/x:/bin"), ("A", "1"), ("B", "2"))
    assert dict(cfg.labels) == {"l": "mine", "m": "1"}


def test_onbuild_is_cleared_for_a_child_stage() -> None:
    cfg = apply_change(ImageConfig(), ConfigChange("onbuild", ("RUN x",)))
    assert cfg.on_build == ("RUN x",)
    assert stage_start(cfg).on_build == ()


def test_user_workdir_volumes_stopsignal_healthcheck(tmp_path: Path) -> None:
    cfg = build_config(
        tmp_path,
        "FROM busybox\nUSER app\nWORKDIR /srv\nWORKDIR data\nVOLUME /v /w\nSTOPSIGNAL SIGINT\n"
        "HEALTHCHECK --interval=5s --retries=3 CMD curl -f localhost\n",
    )
    oci = cfg.to_oci_config()
    assert oci["User"] == "app" and oci["WorkingDir"] == "/srv/data"
    assert oci["Volumes"] == {"/v": {}, "/w": {}}
    assert oci["StopSignal"] == "SIGINT"
    assert oci["Healthcheck"] == {"Test": ["CMD-SHELL", "curl -f localhost"],
                                  "Interval": 5_000_000_000, "Retries": 3}


def test_oci_round_trip() -> None:
    image = {
        "config": {"Env": ["PATH=/bin", "A=b=c"], "Cmd": ["sh"], "User": "1",
                   "ExposedPorts": {"80/tcp": {}}, "Labels": {"k": "v"}},
        "history": [{"created_by": "ADD rootfs", "comment": "x"},
                    {"created_by": "CMD", "empty_layer": True}],
    }
    cfg = ImageConfig.from_oci(image)
    assert cfg.env == (("PATH", "/bin"), ("A", "b=c"))
    assert cfg.to_oci_config() == image["config"]
    assert [h["created_by"] for h in cfg.history_json()] == ["ADD rootfs", "CMD"]
    assert cfg.history_json()[1]["empty_layer"] is True


def test_exported_history(tmp_path: Path) -> None:
    """testExportedHistory: one entry per instruction, empty_layer for metadata."""
    df = ("FROM busybox\nLABEL lbl=val\nCOPY foo2 foo3\nWORKDIR /\nRUN echo bar > foo4\n"
          'RUN ["ls"]\nEXPOSE 5000/tcp 1234/udp 2375\n')
    worker = FakeWorker(context={"foo2": "x"}, images=IMAGES,
                        image_configs={"busybox": ImageConfig.from_oci(
                            {"history": [{"created_by": "base"}]})})
    result = FakeBuild(df, worker, tmp_path / "c.db").build()
    history = result.final.config.history_json()
    assert [(h["created_by"], h.get("empty_layer", False)) for h in history] == [
        ("base", False),
        ("LABEL lbl=val", True),
        ("COPY foo2 foo3 # buildkit", False),
        ("WORKDIR /", True),
        ("RUN /bin/sh -c echo bar > foo4 # buildkit", False),
        ("RUN ls # buildkit", False),
        ("EXPOSE [1234/udp 2375/tcp 5000/tcp]", True),
    ]
    assert all(h["comment"] == "buildkit.dockerfile.v0" for h in history[1:])
    # A layer for COPY and the two RUNs (WORKDIR / makes none), over the base image.
    assert len(result.final.layers) == 3
    assert result.final.base is not None
    assert worker.files(result.final.base) == IMAGES["busybox"]


def test_exported_history_flatten_args(tmp_path: Path) -> None:
    """testExportedHistoryFlattenArgs: |2 foo=bar2 bar=123, latest values, first order."""
    df = "FROM busybox\nARG foo=bar\nARG bar=123\nARG foo=bar2\nRUN ls /etc/\n"
    history = build_config(tmp_path, df).history_json()
    texts = [h["created_by"] for h in history]
    assert texts == ["ARG foo=bar", "ARG bar=123", "ARG foo=bar2",
                     "RUN |2 foo=bar2 bar=123 /bin/sh -c ls /etc/ # buildkit"]


def test_metadata_history_texts(tmp_path: Path) -> None:
    df = ('FROM busybox\nENV a=1 b=2\nUSER u\nCMD ["x", "y z"]\nSHELL ["/bin/bash", "-c"]\n'
          "VOLUME /data\nSTOPSIGNAL SIGKILL\nONBUILD RUN hello\nWORKDIR /srv\n")
    texts = [(h["created_by"], h.get("empty_layer", False))
             for h in build_config(tmp_path, df).history_json()]
    assert texts == [
        ("ENV a=1 b=2", True), ("USER u", True), ('CMD ["x" "y z"]', True),
        ("SHELL [/bin/bash -c]", True), ("VOLUME [/data]", True),
        ("STOPSIGNAL SIGKILL", True), ("WORKDIR /srv", False),
    ]
