"""plan: the same keys with nothing run; its predictions must match the build that follows."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from layerkit.solver import FakeBuild, FakeWorker, Plan, SolveResult

IMAGES = {"busybox": {"/bin/sh": "sh"}, "alpine": {"/etc/os": "alpine"}}

DOCKERFILE = """FROM busybox AS deps
ARG VERSION=1.2
WORKDIR /app
COPY requirements.txt .
RUN pip install
FROM alpine
COPY --from=deps /app /app
COPY . /src
RUN build
LABEL x=1
"""


def fresh(tmp_path: Path) -> FakeBuild:
    worker = FakeWorker(context={"requirements.txt": "flask", "main.py": "1"}, images=IMAGES)
    b = FakeBuild(DOCKERFILE, worker, tmp_path / "c.db")
    b.build()
    return b


def agree(plan: Plan, result: SolveResult) -> None:
    """Every certain prediction equals what the build did, with the same reason."""
    done = {s.number: s for s in result.steps if s.number is not None}
    assert set(done) == {p.number for p in plan.steps}
    for p in plan.steps:
        actual = done[p.number]
        expected = "cached" if actual.status == "cached" else "run"
        if p.uncertain:
            continue
        assert p.action == expected, (p, actual)
        if p.action == "run":
            assert p.reason == actual.reason


def edit_main(b: FakeBuild) -> dict[str, object]:
    b.worker.context["main.py"] = "2"
    return {}


def edit_requirements(b: FakeBuild) -> dict[str, object]:
    b.worker.context["requirements.txt"] = "flask\nrequests"
    return {}


def edit_arg(b: FakeBuild) -> dict[str, object]:
    return {"build_args": {"VERSION": "2"}}


def edit_label(b: FakeBuild) -> dict[str, object]:
    b.dockerfile = b.dockerfile.replace("LABEL x=1", "LABEL x=2")
    return {}


def no_cache(b: FakeBuild) -> dict[str, object]:
    return {"no_cache": True}


def nothing(b: FakeBuild) -> dict[str, object]:
    return {}


@pytest.mark.parametrize(
    "edit", [nothing, edit_main, edit_requirements, edit_arg, edit_label, no_cache]
)
def test_plan_predicts_what_the_build_does(
    tmp_path: Path, edit: Callable[[FakeBuild], dict[str, object]]
) -> None:
    b = fresh(tmp_path)
    kw = edit(b)
    runs_before = b.worker.calls["run_exec"] + b.worker.calls["run_file"]
    plan = b.plan(**kw)  # type: ignore[arg-type]
    assert b.worker.calls["run_exec"] + b.worker.calls["run_file"] == runs_before
    result = b.build(**kw)  # type: ignore[arg-type]
    agree(plan, result)


def test_edit_main_predicts_copy_and_later_run(tmp_path: Path) -> None:
    b = fresh(tmp_path)
    edit_main(b)
    plan = b.plan()
    by_text = {p.text: p for p in plan.steps}
    assert by_text["COPY . /src"].action == "run"
    assert by_text["COPY . /src"].reason == "main.py changed"
    assert by_text["RUN build"].reason == "parent step 7 ran"
    assert by_text["RUN pip install"].action == "cached"
    assert not any(p.uncertain for p in plan.steps)


def test_copy_from_a_rebuilding_stage_is_uncertain(tmp_path: Path) -> None:
    b = fresh(tmp_path)
    edit_requirements(b)
    plan = b.plan()
    copy = next(p for p in plan.steps if p.text.startswith("COPY --from"))
    assert copy.action == "run" and copy.uncertain
    assert copy.reason == ("source stage deps will rebuild (may still hit if its output is "
                           "unchanged)")
    later = next(p for p in plan.steps if p.text == "RUN build")
    assert later.uncertain


def test_estimates_come_from_the_previous_duration(tmp_path: Path) -> None:
    worker = FakeWorker(images=IMAGES, delay_s=0.2)
    b = FakeBuild("FROM busybox\nARG V=1\nRUN slow\n", worker, tmp_path / "c.db")
    b.build()
    plan = b.plan(build_args={"V": "2"})
    run = next(p for p in plan.steps if p.text == "RUN slow")
    assert run.estimated_s is not None and run.estimated_s >= 0.15
    assert plan.estimated_s == pytest.approx(run.estimated_s)


def test_plan_renders_text_and_json(tmp_path: Path) -> None:
    b = fresh(tmp_path)
    edit_main(b)
    plan = b.plan()
    text = plan.render_text()
    assert "#7 [stage-1 3/4] COPY . /src" in text
    assert "run (~" in text and "main.py changed" in text
    assert text.splitlines()[-1].startswith("2 of 8 steps will run")
    data = json.loads(plan.render_json())
    assert data["summary"]["run"] == 2
    step = next(s for s in data["steps"] if s["instruction"] == "COPY . /src")
    assert step["prediction"] == "run" and step["uncertain"] is False


def test_plan_on_an_empty_cache_runs_everything(tmp_path: Path) -> None:
    b = FakeBuild(DOCKERFILE, FakeWorker(context={"requirements.txt": "x", "main.py": "y"},
                                         images=IMAGES), tmp_path / "c.db")
    plan = b.plan()
    assert all(p.action == "run" for p in plan.steps)
    assert plan.steps[0].reason == "no earlier build of this step in the cache"
    assert b.store.all() == []  # a plan records nothing
