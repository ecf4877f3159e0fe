"""Which BuildKit integration cases the solver tests reproduce (read in place).

The map is checked against the conformance file so a renamed or mistyped case
fails loudly; the tests named here do the actual proving.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# BuildKit case → the unit test(s) that reproduce its HIT/MISS behaviour.
COVERED = {
    "testCopyWildcardCache": "test_solver_cache_rules::test_copy_wildcard_cache",
    "testWildcardRenameCache": "test_solver_cache_rules::test_wildcard_rename_misses",
    "testMountRWCache": "test_solver_cache_rules::test_mount_rw_from_stage_keys_on_content",
    "testMountDuplicate":
        "test_solver_cache_rules::test_bind_mounted_context_content_is_in_the_key",
    "testBuiltinArgs": "test_solver_cache_rules::test_undeclared_proxy_args_stay_out_of_the_key",
    "testCacheMountModeNoCache":
        "test_solver_cache_rules::test_no_cache_tells_the_worker_to_start_cache_mounts_empty",
    "testNoCache": "test_solver_cache_rules::test_no_cache_filter_runs_only_that_stage",
    "testAddGitChecksumCache":
        "test_solver_cache_rules::test_add_url_checksum_does_not_change_the_key",
    "testExportedHistory": "test_solver_imageconfig::test_exported_history",
    "testExportedHistoryFlattenArgs": "test_solver_imageconfig::test_exported_history_flatten_args",
    "testExposeExpansion": "test_solver_imageconfig::test_expose_is_sorted_with_tcp_default",
}


def test_every_mapped_case_exists(conformance_dir: Path) -> None:
    text = (conformance_dir / "buildkit-integration-cases.md").read_text()
    missing = [case for case in COVERED if f"`{case}`" not in text]
    assert not missing


@pytest.mark.parametrize("case", sorted(COVERED))
def test_mapped_test_exists(case: str) -> None:
    module, name = COVERED[case].split("::")
    source = (Path(__file__).parent / f"{module}.py").read_text()
    assert f"def {name}(" in source
