"""The public surface the worker and CLI helpers code against, pinned."""

from __future__ import annotations

from pathlib import Path

import layerkit.graph
import layerkit.progress
import layerkit.solver
from layerkit.solver import FakeBuild, FakeWorker, Worker


def test_solver_all_is_pinned() -> None:
    assert sorted(layerkit.solver.__all__) == sorted([
        "BaseState", "CacheSource", "ExecContext", "ExecFailed", "FakeBuild", "FakeWorker",
        "Healthcheck", "ImageConfig", "InputValue", "LocalCache", "LoweredBuild", "Plan",
        "SolveOptions", "SolveResult", "StageResult", "StepOutcome", "StepPlan", "StepResult",
        "Worker", "apply_change", "lower_build", "plan", "scratch_config", "solve",
        "solve_build",
    ])
    for name in layerkit.solver.__all__:
        assert hasattr(layerkit.solver, name)


def test_graph_and_progress_exports_exist() -> None:
    for module in (layerkit.graph, layerkit.progress):
        for name in module.__all__:
            assert hasattr(module, name), name


def test_fake_worker_satisfies_the_protocol() -> None:
    assert isinstance(FakeWorker(), Worker)


def test_copy_from_an_image_and_add_url_without_checksum(tmp_path: Path) -> None:
    url = "https://example.com/a.txt"
    worker = FakeWorker(images={"busybox": {}, "nginx": {"/etc/nginx/nginx.conf": "conf"}},
                        urls={url: "v1"})
    b = FakeBuild(f"FROM busybox\nCOPY --from=nginx /etc/nginx /etc/nginx\nADD {url} /d/\n"
                  "RUN unique\n", worker, tmp_path / "c.db")
    first = b.build()
    assert b.files(first)["/etc/nginx/nginx.conf"] == "conf"
    assert b.files(first)["/d/a.txt"] == "v1"
    assert b.build().steps[-1].status == "cached"
    worker.urls[url] = "v2"  # the remote file changed: ADD and the RUN after it miss
    third = b.build()
    add = next(s for s in third.steps if s.text.startswith("ADD"))
    assert add.status == "ran" and add.reason == f"{url} changed"
    assert third.steps[-1].reason == "parent step 3 ran"
    assert worker.calls["checksum_url"] == 3


def test_metadata_lists_every_instruction(tmp_path: Path) -> None:
    b = FakeBuild("FROM busybox\nENV A=1\nRUN x\n", FakeWorker(images={"busybox": {}}),
                  tmp_path / "c.db")
    meta = b.build().metadata()
    assert [(s["instruction"], s["status"]) for s in meta["steps"]] == [
        ("FROM busybox", "ran"), ("ENV A=1", "cached"), ("RUN x", "ran")]
    assert all({"stage", "index", "reason", "duration_s"} <= set(s) for s in meta["steps"])
