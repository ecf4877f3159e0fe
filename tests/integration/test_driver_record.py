"""The overlayfs probe's answer is kept in <root>/driver.json and trusted only
while the conditions it was made under hold."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from layerkit.snapshot import driver


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    real = driver._probe

    def counting(root: Path) -> tuple[bool, bool]:
        calls.append(root)
        return real(root)

    monkeypatch.setattr(driver, "_probe", counting)
    monkeypatch.setattr(driver, "_detected", {})
    monkeypatch.delenv(driver.ENV, raising=False)
    return calls


@pytest.mark.skipif(os.geteuid() != 0, reason="the overlayfs probe needs root")
def test_the_probe_runs_once_per_conditions(tmp_path: Path, probes: list[Path]) -> None:
    first = driver.choose_driver(tmp_path)
    assert first == "overlayfs" and len(probes) == 1  # overlayfs works on this machine kind
    record = json.loads((tmp_path / "driver.json").read_text())
    assert record["driver"] == first and record["volatile"] is True  # Linux 5.10+ here

    driver._detected.clear()  # a new process
    assert driver.choose_driver(tmp_path) == first and len(probes) == 1

    # Another boot, kernel or filesystem: the record no longer applies.
    (tmp_path / "driver.json").write_text(json.dumps({**record, "conditions": "[]"}))
    driver._detected.clear()
    assert driver.choose_driver(tmp_path) == first and len(probes) == 2

    # A damaged record is probed again, never trusted.
    (tmp_path / "driver.json").write_text('{"driver": "naive", "condit')
    driver._detected.clear()
    assert driver.choose_driver(tmp_path) == first and len(probes) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".driver-", ".probe-"))]
