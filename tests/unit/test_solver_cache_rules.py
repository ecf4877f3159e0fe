"""The cache-key rules, proved with a FakeWorker: random RUN output, call counters.

Each test builds, edits something, rebuilds, and checks which steps hit (same
random bytes, no new worker call) and which ran, and why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from layerkit.solver import FakeBuild, FakeWorker, SolveResult, StepOutcome

IMAGES = {"busybox": {"/bin/sh": "sh"}, "alpine": {"/etc/alpine-release": "3.20"}}


def make(tmp_path: Path, dockerfile: str, context: dict[str, str] | None = None) -> FakeBuild:
    worker = FakeWorker(context=context or {}, images=IMAGES)
    return FakeBuild(dockerfile, worker, tmp_path / "cache.db")


def step(result: SolveResult, text_start: str, stage: str | None = None) -> StepOutcome:
    found = [s for s in result.steps if s.text.startswith(text_start)
             and (stage is None or s.stage == stage)]
    assert len(found) == 1, [s.text for s in result.steps]
    return found[0]


def test_unchanged_rebuild_hits_everything_and_runs_nothing(tmp_path: Path) -> None:
    b = make(tmp_path, "FROM busybox\nCOPY app.py /app/\nRUN build\n", {"app.py": "print(1)"})
    first = b.build()
    runs = b.worker.calls["run_exec"]
    second = b.build()
    assert b.worker.calls["run_exec"] == runs == 1
    assert b.files(second) == b.files(first)  # identical random bytes: a hit
    assert all(s.status == "cached" for s in second.steps)
    assert step(second, "RUN").source == "local cache"


def test_first_build_reason(tmp_path: Path) -> None:
    result = make(tmp_path, "FROM busybox\nRUN build\n").build()
    assert step(result, "RUN").reason == "no earlier build of this step in the cache"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("LABEL a=1", "LABEL a=2"),
        ("EXPOSE 80", "EXPOSE 81/udp"),
        ('CMD ["a"]', 'CMD ["b"]'),
        ('ENTRYPOINT ["a"]', 'ENTRYPOINT ["b"]'),
        ("HEALTHCHECK CMD a", "HEALTHCHECK --interval=5s CMD b"),
        ("STOPSIGNAL SIGTERM", "STOPSIGNAL SIGKILL"),
        ("ONBUILD RUN a", "ONBUILD RUN b"),
        ("MAINTAINER a", "MAINTAINER b"),
    ],
)
def test_metadata_instructions_do_not_invalidate_later_steps(
    tmp_path: Path, before: str, after: str
) -> None:
    b = make(tmp_path, f"FROM busybox\n{before}\nRUN build\n")
    first = b.build()
    b.dockerfile = f"FROM busybox\n{after}\nRUN build\n"
    second = b.build()
    assert step(second, "RUN").status == "cached"
    assert b.files(second) == b.files(first)
    assert b.worker.calls["run_exec"] == 1
    assert second.final.config != first.final.config  # only the config changed


def test_declared_arg_invalidates_every_later_run_but_not_copy(tmp_path: Path) -> None:
    df = "FROM busybox\nARG VERSION=1.2\nCOPY a.txt /\nRUN one\nRUN two\n"
    b = make(tmp_path, df, {"a.txt": "a"})
    b.build()
    result = b.build(build_args={"VERSION": "1.3"})
    assert step(result, "COPY").status == "cached"
    one, two = step(result, "RUN one"), step(result, "RUN two")
    assert one.status == two.status == "ran"
    assert one.reason == "build-arg VERSION changed (1.2 → 1.3)"
    # Own inputs first, then the parent.
    assert two.reason == "build-arg VERSION changed (1.2 → 1.3); parent step 3 ran"


def test_arg_used_in_copy_text_invalidates_copy(tmp_path: Path) -> None:
    b = make(tmp_path, "FROM busybox\nARG SRC=a.txt\nCOPY $SRC /x\n", {"a.txt": "a", "b.txt": "b"})
    b.build()
    result = b.build(build_args={"SRC": "b.txt"})
    copy = step(result, "COPY")
    assert copy.status == "ran"
    assert "instruction changed" in copy.reason
    assert "build-arg SRC changed (a.txt → b.txt)" in copy.reason


@pytest.mark.parametrize(
    ("before", "after", "why"),
    [
        ("ENV A=1", "ENV A=2", "ENV A changed (1 → 2)"),
        ("USER root", "USER app", "USER changed (root → app)"),
        ("WORKDIR /a", "WORKDIR /b", "WORKDIR changed (/a → /b)"),
        ('SHELL ["/bin/sh", "-c"]', 'SHELL ["/bin/bash", "-c"]',
         "SHELL changed (/bin/sh -c → /bin/bash -c)"),
    ],
)
def test_env_user_workdir_shell_invalidate_later_runs(
    tmp_path: Path, before: str, after: str, why: str
) -> None:
    b = make(tmp_path, f"FROM busybox\n{before}\nRUN build\n")
    first = b.build()
    b.dockerfile = f"FROM busybox\n{after}\nRUN build\n"
    second = b.build()
    run = step(second, "RUN")
    assert run.status == "ran"
    assert why in run.reason
    assert b.files(second) != b.files(first)


def test_undeclared_proxy_args_stay_out_of_the_key(tmp_path: Path) -> None:
    b = make(tmp_path, "FROM busybox\nRUN fetch\n")
    first = b.build(build_args={"HTTP_PROXY": "http://a:3128"})
    second = b.build(build_args={"HTTP_PROXY": "http://b:3128", "no_proxy": "x"})
    assert step(second, "RUN").status == "cached"
    assert b.files(second) == b.files(first)


def test_declared_proxy_arg_is_in_the_key(tmp_path: Path) -> None:
    b = make(tmp_path, "FROM busybox\nARG HTTP_PROXY\nRUN fetch\n")
    b.build(build_args={"HTTP_PROXY": "http://a:3128"})
    second = b.build(build_args={"HTTP_PROXY": "http://b:3128"})
    assert step(second, "RUN").status == "ran"


def test_base_image_digest_is_in_the_key(tmp_path: Path) -> None:
    b = make(tmp_path, "FROM busybox\nRUN build\n")
    b.build()
    b.worker.images["busybox"] = {"/bin/sh": "a newer sh"}  # the tag moved
    result = b.build()
    from_ = step(result, "FROM")
    assert from_.status == "ran"
    assert from_.reason.startswith("base image changed (busybox@sha256:")
    assert step(result, "RUN").reason == "parent step 1 ran"


def test_copy_wildcard_cache(tmp_path: Path) -> None:
    """testCopyWildcardCache: only files matched by the wildcard COPY matter to the RUN."""
    df = "FROM busybox\nCOPY foo* files/\nRUN unique\nCOPY bar files/\n"
    b = make(tmp_path, df, {"foo1": "1", "foo2": "2", "bar": "b"})
    first = b.build()
    b.worker.context["bar"] = "changed"
    second = b.build()
    assert step(second, "RUN").status == "cached"
    assert step(second, "COPY bar").status == "ran"
    random_files = {k: v for k, v in b.files(second).items() if k.startswith("/random")}
    assert random_files == {k: v for k, v in b.files(first).items() if k.startswith("/random")}
    b.worker.context["foo2"] = "changed"
    third = b.build()
    assert step(third, "COPY foo*").reason == "foo2 changed"
    assert step(third, "RUN").status == "ran"


def test_wildcard_rename_misses(tmp_path: Path) -> None:
    """testWildcardRenameCache: the wildcard key includes the matched names."""
    b = make(tmp_path, "FROM busybox\nCOPY file* /files/\nRUN ls\n", {"file1": "same"})
    b.build()
    b.worker.context = {"file2": "same"}
    result = b.build()
    copy = step(result, "COPY")
    assert copy.status == "ran"
    assert copy.reason == "file1, file2 changed"


def test_copy_dot_names_the_changed_file(tmp_path: Path) -> None:
    b = make(tmp_path, "FROM busybox\nCOPY . .\nRUN pip install\n",
             {"app/main.py": "1", "README": "r"})
    b.build()
    b.worker.context["app/main.py"] = "2"
    result = b.build()
    assert step(result, "COPY").reason == "app/main.py changed"
    assert step(result, "RUN").reason == "parent step 2 ran"


COPY_FROM = """FROM busybox AS build
COPY cachebust /
RUN make-out
FROM alpine
COPY --from=build /out /out
RUN unique
"""


def test_copy_from_stage_keys_on_content(tmp_path: Path) -> None:
    """The source stage re-ran but produced the same /out: the COPY still hits."""
    b = make(tmp_path, COPY_FROM, {"cachebust": "0"})
    b.worker.on("make-out", lambda files, op, ctx: files.update({"/out/foo": "constant"}))
    first = b.build()
    b.worker.context["cachebust"] = "1"
    second = b.build()
    assert step(second, "RUN make-out").status == "ran"
    copy = step(second, "COPY --from")
    assert copy.status == "cached"
    assert copy.reason == "same source content as before"
    assert step(second, "RUN unique").status == "cached"
    assert b.files(second) == b.files(first)
    # The alias key was stored: a third build hits by definition key, no checksum needed.
    checksums = b.worker.calls["checksum_paths"]
    b.build()
    assert b.worker.calls["checksum_paths"] == checksums


def test_copy_from_stage_with_changed_content_misses(tmp_path: Path) -> None:
    b = make(tmp_path, COPY_FROM, {"cachebust": "0"})
    b.worker.on("make-out", lambda files, op, ctx: files.update({"/out/foo": "v1"}))
    b.build()
    b.worker.context["cachebust"] = "1"
    b.worker.behaviours.clear()
    b.worker.on("make-out", lambda files, op, ctx: files.update({"/out/foo": "v2"}))
    result = b.build()
    copy = step(result, "COPY --from")
    assert copy.status == "ran"
    assert "build:/out/foo changed" in copy.reason


def test_mount_rw_from_stage_keys_on_content(tmp_path: Path) -> None:
    """testMountRWCache: a RUN bind-mounting another stage's subpath hits when it is
    unchanged, even though that stage re-ran."""
    df = """FROM busybox AS build
COPY cachebust /
RUN make-out
FROM busybox
RUN --mount=from=build,src=out,target=/out,rw unique
"""
    b = make(tmp_path, df, {"cachebust": "0"})
    b.worker.on("make-out", lambda files, op, ctx: files.update({"/out/foo": "constant"}))
    first = b.build()
    b.worker.context["cachebust"] = "1"
    second = b.build()
    assert step(second, "RUN make-out").status == "ran"
    assert step(second, "RUN --mount").status == "cached"
    assert b.files(second) == b.files(first)


def test_bind_mounted_context_content_is_in_the_key(tmp_path: Path) -> None:
    """testMountDuplicate: changed bind-mounted context content is a miss."""
    df = "FROM busybox\nRUN --mount=source=.,target=/ctx --mount=source=b.txt,target=/b cat\n"
    b = make(tmp_path, df, {"a.txt": "1", "b.txt": "b"})
    b.build()
    assert step(b.build(), "RUN").status == "cached"
    b.worker.context["a.txt"] = "2"
    result = b.build()
    assert step(result, "RUN").status == "ran"
    assert "a.txt changed" in step(result, "RUN").reason


def test_cache_mount_and_secret_are_not_content_keyed(tmp_path: Path) -> None:
    df = ("FROM busybox\nRUN --mount=type=cache,target=/root/.cache "
          "--mount=type=secret,id=tok --mount=type=tmpfs,target=/t build\n")
    b = make(tmp_path, df)
    b.build()
    checks = b.worker.calls["checksum_context"] + b.worker.calls["checksum_paths"]
    assert step(b.build(), "RUN").status == "cached"
    assert b.worker.calls["checksum_context"] + b.worker.calls["checksum_paths"] == checks == 0


def test_no_cache_runs_every_step(tmp_path: Path) -> None:
    b = make(tmp_path, "FROM busybox\nCOPY a /\nRUN one\n", {"a": "a"})
    first = b.build()
    second = b.build(no_cache=True)
    assert step(second, "RUN").reason == "--no-cache"
    assert step(second, "COPY").status == "ran"
    assert b.files(second) != b.files(first)
    # And the build after that reuses what --no-cache produced.
    third = b.build()
    assert all(s.status == "cached" for s in third.steps)
    assert b.files(third) == b.files(second)


def test_no_cache_filter_runs_only_that_stage(tmp_path: Path) -> None:
    """testNoCache: no-cache=s1 re-runs s1 only; s0 is a hit."""
    df = "FROM busybox AS s0\nRUN unique0\nFROM busybox AS s1\nRUN unique1\n"
    b = make(tmp_path, df)
    first = b.build(target="s1")
    b.build(target="s0")
    s0_before = b.worker.ran.count("unique0")
    second = b.build(target="s1", no_cache_filter=("s1",))
    assert step(second, "RUN unique1").reason == "--no-cache-filter s1"
    assert b.files(second) != b.files(first)
    result0 = b.build(target="s0", no_cache_filter=("s1",))
    assert step(result0, "RUN unique0").status == "cached"
    assert b.worker.ran.count("unique0") == s0_before


def test_result_gone_from_store_is_a_miss_not_an_error(tmp_path: Path) -> None:
    b = make(tmp_path, "FROM busybox\nRUN one\n")
    first = b.build()
    assert first.final.result is not None
    b.worker.forget(first.final.result.ref)
    result = b.build()
    run = step(result, "RUN")
    assert run.status == "ran"
    assert run.reason == "cache record found but its result is no longer in the store"


def test_keys_start_with_the_schema_version(tmp_path: Path) -> None:
    b = make(tmp_path, "FROM busybox\nCOPY a /\nRUN x\n", {"a": "a"})
    b.build()
    records = b.store.all()
    assert records
    assert all(r.key.startswith("lk1:sha256:") for r in records)


def test_records_keep_the_plain_inputs(tmp_path: Path) -> None:
    df = "FROM busybox\nARG V=1\nENV E=2\nUSER app\nWORKDIR /w\nRUN make $V\n"
    b = make(tmp_path, df)
    b.build()
    run = next(r for r in b.store.all() if r.inputs.get("instruction", "").startswith("RUN"))
    inputs = run.inputs
    assert inputs["args"] == {"V": "1"}
    assert inputs["env"]["E"] == "2" and "V" not in inputs["env"]
    assert (inputs["user"], inputs["workdir"], inputs["shell"]) == ("app", "/w", "/bin/sh -c")
    assert inputs["parent_label"] == "step 2"
    assert run.duration_s >= 0 and run.last_used > 0


def test_add_url_checksum_does_not_change_the_key(tmp_path: Path) -> None:
    """testAddGitChecksumCache analogue: pinning the right checksum keeps the cache."""
    url = "https://example.com/tool.tgz"
    worker = FakeWorker(images=IMAGES, urls={url: "tool-bytes"})
    b = FakeBuild(f"FROM busybox\nADD {url} /opt/\nRUN unique\n", worker, tmp_path / "c.db")
    first = b.build()
    digest = worker.checksum_url(url)
    b.dockerfile = f"FROM busybox\nADD --checksum={digest} {url} /opt/\nRUN unique\n"
    second = b.build()
    assert step(second, "RUN").status == "cached"
    assert b.files(second) == b.files(first)


def test_no_cache_tells_the_worker_to_start_cache_mounts_empty(tmp_path: Path) -> None:
    """testCacheMountModeNoCache: under no-cache the cache mount starts empty."""
    seen: list[bool] = []
    b = make(tmp_path, "FROM busybox\nRUN --mount=type=cache,target=/cache,mode=0773 count\n")
    b.worker.on("count", lambda files, op, ctx: seen.append(ctx.no_cache))
    b.build()
    b.build(no_cache=True)
    b.build(build_args={"FOO": "x"})  # an undeclared arg changes nothing: a hit
    assert seen == [False, True]
