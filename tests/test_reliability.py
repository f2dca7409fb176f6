"""The fault matrix of `make reliability`, case by case, and a smaller load run."""

from __future__ import annotations

import pytest
from reliability import CASES, Case, run_case, run_load


@pytest.mark.parametrize("case", CASES, ids=[c.fault for c in CASES])
def test_fault_matrix_row(case: Case) -> None:
    row = run_case(case)
    assert row.passed, f"{row.fault}: expected {row.expected}, observed {row.observed}; {row.detail}"


def test_matrix_detects_a_wrong_expectation() -> None:
    """The runner can fail: the same fault with a wrong expectation is reported as not passed."""
    wrong = Case("one corrupted byte (expecting a file)", "file", CASES[12].setup)
    assert CASES[12].expected == "IntegrityError"
    row = run_case(wrong)
    assert not row.passed and row.observed == "IntegrityError"


def test_load_small() -> None:
    report = run_load(calls=600, tasks=64, downloads=40, size=256 * 1024)
    assert report.call_errors == 0 and report.download_errors == 0
    assert 0 < report.peak_api_connections <= report.pool_limit
    assert 0 < report.peak_storage_connections <= report.pool_limit
    assert report.rss_growth_mib < 20
