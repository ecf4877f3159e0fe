"""Real builds through the API: cache hits proven with random bytes, misses explained,
and ``plan`` agreeing with what the build then does (BuildKit's integration cases)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from support.buildenv import BuildEnv, make_build_env


@pytest.fixture
def build_env(tmp_path: Path, busybox_docker_archive: Path) -> BuildEnv:
    return make_build_env(tmp_path, busybox_docker_archive)


RANDOM = "head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'"


def read(rootfs: Path, path: str) -> str:
    return (rootfs / path.lstrip("/")).read_text()


def test_random_bytes_same_after_noop_rebuild_new_after_edit_above(
    build_env: BuildEnv,
) -> None:
    ctx = build_env.context({
        "Dockerfile": f"FROM busybox\nCOPY a.txt /a.txt\nRUN {RANDOM} > /rand\n",
        "a.txt": "one\n",
    })
    first, fs1 = build_env.rootfs(ctx)
    assert first.ran() == ["FROM busybox", "COPY a.txt /a.txt", f"RUN {RANDOM} > /rand"]
    assert build_env.plan(ctx) == [(t, "cached") for t, _ in first.statuses()]
    again, fs2 = build_env.rootfs(ctx)
    assert again.ran() == []
    assert read(fs2, "/rand") == read(fs1, "/rand")
    assert again.result.image_id == first.result.image_id  # reproducible ids when cached

    (ctx / "a.txt").write_text("two\n")
    predicted = build_env.plan(ctx)
    edited, fs3 = build_env.rootfs(ctx)
    assert predicted == edited.statuses()
    assert edited.ran() == ["COPY a.txt /a.txt", f"RUN {RANDOM} > /rand"]
    assert "a.txt changed" in edited.reason("COPY a.txt")
    assert "parent step" in edited.reason("RUN")
    assert read(fs3, "/rand") != read(fs1, "/rand")
    assert read(fs3, "/a.txt") == "two\n"


def test_one_line_code_change_reruns_only_the_code_copy_and_after(
    build_env: BuildEnv,
) -> None:
    ctx = build_env.context({
        "Dockerfile": (
            "FROM busybox\nWORKDIR /srv\nCOPY deps.txt ./\n"
            f"RUN {RANDOM} > /srv/deps-installed\n"
            "COPY app/ ./app/\nRUN wc -l app/main.sh > lines\n"
        ),
        "deps.txt": "libfoo\n",
        "app/main.sh": "echo hello\n",
        "app/util.sh": "true\n",
    })
    _, fs1 = build_env.rootfs(ctx)
    (ctx / "app" / "main.sh").write_text("echo hello\necho world\n")
    predicted = build_env.plan(ctx)
    built, fs2 = build_env.rootfs(ctx)
    assert built.ran() == ["COPY app/ ./app/", "RUN wc -l app/main.sh > lines"]
    assert predicted == built.statuses()
    assert built.reason("COPY app/") == "app/main.sh changed"
    assert read(fs2, "/srv/deps-installed") == read(fs1, "/srv/deps-installed")
    assert read(fs2, "/srv/lines").split()[0] == "2"
    assert "#5 reason: app/main.sh changed" in built.progress


def test_build_arg_change_is_explained_with_old_and_new_values(build_env: BuildEnv) -> None:
    ctx = build_env.context({
        "Dockerfile": f"FROM busybox\nARG VERSION=1.2\nRUN {RANDOM} > /r; echo $VERSION > /v\n",
    })
    _, fs1 = build_env.rootfs(ctx)
    predicted = build_env.plan(ctx, build_args={"VERSION": "1.3"})
    built, fs2 = build_env.rootfs(ctx, build_args={"VERSION": "1.3"})
    assert predicted == built.statuses()
    assert built.reason("RUN") == "build-arg VERSION changed (1.2 → 1.3)"
    assert read(fs2, "/v") == "1.3\n"
    assert read(fs2, "/r") != read(fs1, "/r")


def test_no_cache_runs_every_step_and_cache_mounts_start_empty(build_env: BuildEnv) -> None:
    ctx = build_env.context({
        "Dockerfile": (
            "FROM busybox\n"
            "RUN --mount=type=cache,target=/c touch /c/$(date +%s%N) && ls /c | wc -l > /n\n"
            f"RUN {RANDOM} > /r\n"
        ),
    })
    _, fs1 = build_env.rootfs(ctx)
    _, fs2 = build_env.rootfs(ctx, no_cache=True)
    forced = build_env.build(ctx, no_cache=True)
    assert forced.ran() == [t for t, _ in forced.statuses() if not t.startswith("FROM")]
    assert {forced.reason("RUN --mount"), forced.reason(f"RUN {RANDOM}")} == {"--no-cache"}
    assert read(fs2, "/r") != read(fs1, "/r")
    assert read(fs2, "/n").strip() == "1"  # an empty cache mount under --no-cache
    # Without --no-cache the persistent cache still holds only the first build's entry.
    plain = build_env.build(ctx)
    assert plain.ran() == []


def test_no_cache_filter_reruns_only_that_stage(build_env: BuildEnv) -> None:
    ctx = build_env.context({
        "Dockerfile": (
            f"FROM busybox AS s0\nRUN {RANDOM} > /r0\n"
            f"FROM busybox AS s1\nRUN {RANDOM} > /r1\n"
            "FROM busybox\nCOPY --from=s0 /r0 /r0\nCOPY --from=s1 /r1 /r1\n"
        ),
    })
    _, fs1 = build_env.rootfs(ctx)
    built, fs2 = build_env.rootfs(ctx, no_cache_filter=("s1",))
    assert read(fs2, "/r0") == read(fs1, "/r0")
    assert read(fs2, "/r1") != read(fs1, "/r1")
    assert built.reason(f"RUN {RANDOM} > /r1") == "--no-cache-filter s1"
    assert ("COPY --from=s0 /r0 /r0", "cached") in built.statuses()


def test_independent_stages_build_in_parallel_and_copy_from(build_env: BuildEnv) -> None:
    # /proc/uptime has centiseconds (busybox date has no %N).
    stamp = "cut -d' ' -f1 /proc/uptime > /start; sleep 1; cut -d' ' -f1 /proc/uptime > /end"
    ctx = build_env.context({
        "Dockerfile": (
            f"FROM busybox AS a\nRUN {stamp}\n"
            f"FROM busybox AS b\nRUN {stamp}\n"
            "FROM busybox\nCOPY --from=a /start /a-start\nCOPY --from=a /end /a-end\n"
            "COPY --from=b /start /b-start\nCOPY --from=b /end /b-end\n"
        ),
    })
    _, fs = build_env.rootfs(ctx, jobs=2)
    a = (float(read(fs, "/a-start")), float(read(fs, "/a-end")))
    b = (float(read(fs, "/b-start")), float(read(fs, "/b-end")))
    assert a[0] < b[1] and b[0] < a[1], f"stages ran one after the other: {a} {b}"


def test_target_prunes_unneeded_failing_stage(build_env: BuildEnv) -> None:
    ctx = build_env.context({
        "Dockerfile": (
            "FROM busybox AS broken\nRUN exit 1\n"
            "FROM busybox AS good\nRUN echo ok > /ok\n"
        ),
    })
    built, fs = build_env.rootfs(ctx, target="good")
    assert read(fs, "/ok") == "ok\n"
    assert all("exit 1" not in t for t, _ in built.statuses())


def test_failed_run_reports_command_code_and_output_and_keeps_earlier_steps(
    build_env: BuildEnv,
) -> None:
    from layerkit.solver import ExecFailed

    ctx = build_env.context({
        "Dockerfile": f"FROM busybox\nRUN {RANDOM} > /r\nRUN echo boom; exit 3\n",
    })
    with pytest.raises(ExecFailed) as info:
        build_env.build(ctx)
    err = info.value
    assert err.exit_code == 3
    assert "boom" in err.output_tail
    assert err.location is not None and err.location.line == 3
    assert "exit code: 3" in err.message
    (ctx / "Dockerfile").write_text(f"FROM busybox\nRUN {RANDOM} > /r\nRUN echo fixed\n")
    fixed = build_env.build(ctx)
    assert fixed.ran() == ["RUN echo fixed"]


def test_source_date_epoch_gives_same_digest_from_two_cold_stores(
    build_env: BuildEnv, busybox_docker_archive: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from support.buildenv import load_into

    ctx = build_env.context({
        "Dockerfile": ("FROM busybox\nWORKDIR /app\nCOPY f.txt ./\n"
                       "RUN mkdir -p /data && touch /data/x && echo hi > /data/y\n"
                       "ENV A=1\nCMD [\"sh\"]\n"),
        "f.txt": "content\n",
    })
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1673354096")
    digests = []
    for i in range(2):
        root = build_env.tmp / f"cold-{i}"
        load_into(root, busybox_docker_archive, "busybox:latest")
        out = build_env.tmp / f"oci-{i}.tar"
        built = build_env.build(ctx, root=str(root), outputs=(f"type=oci,dest={out}",))
        digests.append((built.result.image_id, built.result.manifest_digest))
    assert digests[0] == digests[1]


def test_cache_mount_persists_but_never_enters_the_image(build_env: BuildEnv) -> None:
    ctx = build_env.context({
        "Dockerfile": ("FROM busybox\nARG N\n"
                       "RUN --mount=type=cache,target=/cache echo $N >> /cache/log && "
                       "cp /cache/log /seen\n"),
    })
    build_env.build(ctx, build_args={"N": "1"})
    _, fs = build_env.rootfs(ctx, build_args={"N": "2"})
    assert read(fs, "/seen") == "1\n2\n"
    assert not (fs / "cache").exists() or not any((fs / "cache").iterdir())


def test_secret_is_usable_but_never_stored(build_env: BuildEnv) -> None:
    secret = "s3cr3t-" + "x9Q7vZ" * 4
    (build_env.tmp / "token").write_text(secret)
    ctx = build_env.context({
        "Dockerfile": ("FROM busybox\n"
                       "RUN --mount=type=secret,id=token,required "
                       "wc -c < /run/secrets/token > /len && ls /run/secrets > /listing\n"
                       "RUN --mount=type=secret,id=token,env=TOKEN "
                       "[ \"$TOKEN\" = \"$(cat /dev/null)$TOKEN\" ] && echo ${#TOKEN} > /envlen\n"),
    })
    built, fs = build_env.rootfs(ctx, secrets=(f"id=token,src={build_env.tmp / 'token'}",),
                                 outputs=(f"type=oci,dest={build_env.tmp / 'img.tar'}",
                                          f"type=docker,dest={build_env.tmp / 'd.tar'}"),
                                 metadata_file=str(build_env.tmp / "meta.json"))
    assert read(fs, "/len").strip() == str(len(secret))
    assert read(fs, "/envlen").strip() == str(len(secret))
    assert secret not in built.progress
    needle = secret.encode()
    places = [build_env.root, build_env.tmp / "img.tar", build_env.tmp / "d.tar",
              build_env.tmp / "meta.json", fs]
    for place in places:
        files = [place] if place.is_file() else [p for p in place.rglob("*") if p.is_file()]
        for path in files:
            if path.is_symlink():
                continue
            assert needle not in path.read_bytes(), f"secret found in {path}"


def test_tmpfs_and_bind_mounts(build_env: BuildEnv) -> None:
    ctx = build_env.context({
        "Dockerfile": (
            "FROM busybox AS tool\nRUN mkdir /out && echo from-stage > /out/msg\n"
            "FROM busybox\n"
            "RUN --mount=type=tmpfs,target=/scratch echo temp > /scratch/t && "
            "cat /scratch/t > /t\n"
            "RUN --mount=type=bind,from=tool,source=/out,target=/m cat /m/msg > /msg\n"
            "RUN --mount=type=bind,source=data,target=/d cat /d/x > /x\n"
        ),
        "data/x": "from-context\n",
    })
    _, fs = build_env.rootfs(ctx)
    assert read(fs, "/t") == "temp\n"
    assert not (fs / "scratch" / "t").exists()
    assert read(fs, "/msg") == "from-stage\n"
    assert read(fs, "/x") == "from-context\n"
    # A bind-mounted context file is keyed by its content.
    (ctx / "data" / "x").write_text("changed\n")
    built = build_env.build(ctx)
    assert built.ran() == ["RUN --mount=type=bind,source=data,target=/d cat /d/x > /x"]


def test_history_and_empty_layers_follow_buildkit(build_env: BuildEnv) -> None:
    import json

    ctx = build_env.context({
        "Dockerfile": ("FROM busybox\nLABEL a=b\nWORKDIR /\nCOPY f /f\n"
                       "RUN echo hi > /hi\nEXPOSE 5000 1234/udp\nCMD [\"sh\"]\n"),
        "f": "x\n",
    })
    built = build_env.build(ctx)
    from layerkit.content.store import ContentStore

    config = json.loads(ContentStore(build_env.root).read_bytes(built.result.image_id))
    base_len = 1  # busybox has one history entry and one layer
    history = config["history"][base_len:]
    assert [(h["created_by"], h.get("empty_layer", False)) for h in history] == [
        ("LABEL a=b", True),
        ("WORKDIR /", True),
        ("COPY f /f # buildkit", False),
        ("RUN /bin/sh -c echo hi > /hi # buildkit", False),
        ("EXPOSE [1234/udp 5000/tcp]", True),
        ('CMD ["sh"]', True),
    ]
    assert len(config["rootfs"]["diff_ids"]) == base_len + 2
    assert sorted(config["config"]["ExposedPorts"]) == ["1234/udp", "5000/tcp"]


def test_from_a_registry_image_pulls_once_then_builds_from_the_store(
    build_env: BuildEnv, pushed_busybox: str,
) -> None:
    ctx = build_env.context({"Dockerfile": f"FROM {pushed_busybox}\nRUN {RANDOM} > /r\n"})
    first, fs1 = build_env.rootfs(ctx)
    assert first.ran()[0] == f"FROM {pushed_busybox}"
    again, fs2 = build_env.rootfs(ctx)
    assert again.ran() == []
    assert read(fs2, "/r") == read(fs1, "/r")
    from layerkit.content.images import ImageIndex

    with ImageIndex(build_env.root) as index:
        assert index.get(pushed_busybox) is not None  # named in the store after the pull


def test_unknown_image_without_pull_is_a_clear_error(
    build_env: BuildEnv, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from layerkit.errors import BuildError

    monkeypatch.setenv("LAYERKIT_NO_PULL", "1")
    ctx = build_env.context({"Dockerfile": "FROM busybox\nFROM alpine:3.20\nRUN true\n"})
    with pytest.raises(BuildError) as info:
        build_env.build(ctx)
    assert "registries is not supported yet" in info.value.message
    assert info.value.location is not None and info.value.location.line == 2
    assert "layerkit load -i image.tar" in (info.value.hint or "")


def test_noop_rebuild_reads_no_content_mounts_nothing_runs_nothing(
    build_env: BuildEnv, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from layerkit.worker.local import LocalWorker

    ctx = build_env.context({
        "Dockerfile": "FROM busybox\nCOPY . /src\nRUN ls -R /src > /listing\n",
        **{f"pkg/m{i}.py": f"x = {i}\n" for i in range(50)},
    })
    # Files changed in the last 2 s are re-read ("racy git"); age them, as real ones are.
    for path in ctx.rglob("*"):
        os.utime(path, (time.time() - 60, time.time() - 60))
    first = build_env.build(ctx)

    def forbidden(*args: object, **kw: object) -> None:
        raise AssertionError("a no-op rebuild must not mount, run or re-tar anything")

    monkeypatch.setattr("layerkit.snapshot.snapshotter.Snapshotter.__init__", forbidden)
    monkeypatch.setattr("layerkit.executor.run.run_step", forbidden)
    monkeypatch.setattr("layerkit.snapshot.snapshotter.Snapshotter.diff", forbidden)
    stats: list[Any] = []
    real_close = LocalWorker.close

    def close(self: LocalWorker) -> None:
        stats.extend(h.stats for h in self._hashers.values())
        real_close(self)

    monkeypatch.setattr(LocalWorker, "close", close)
    again = build_env.build(ctx)
    assert again.ran() == []
    assert again.result.image_id == first.result.image_id
    assert stats and all(s.files_hashed == 0 and s.bytes_read == 0 for s in stats)
    assert all(s.stat_calls <= 52 + 5 for s in stats)  # one stat per context entry
