"""The fallback's summary that reaches the research side (token-map manifest -> linkage report).

Counts of 1..9 records are banded (``pseudonymisation/ttp.py``, ``_SMALL``). The unlinked records
per reason add up to a total the research side knows (``records`` less the linked ones, both in
the summary and derivable from the content and token maps): a band that subtraction undoes is no
band, so a second count is banded with it (secondary suppression, disclosure.md).
"""

from __future__ import annotations

import itertools

import pytest

from pseudonymisation.ttp import _fallback_summary

ESTIMATE = {"records": 500, "linked": 498, "wrong_links": 0, "precision": 1.0, "recall": 0.996, "by_method": {}}


def _summary(linked: dict[str, int], unlinked: dict[str, int]) -> dict:
    report = {"settings": {"threshold": 18.0, "margin": 5.0}, "records": sum(linked.values()) + sum(unlinked.values()),
              "linked_by_method": linked, "unlinked_by_reason": unlinked, "blocking": {}, "model": {},
              "estimated_on_bsn_linked_records": ESTIMATE}
    return _fallback_summary(report)


def _exact_small_by_subtraction(summary: dict, linked: int) -> bool:
    """Whether records - linked - shown reasons gives the hidden reasons' sum as 1..9 (``linked``:
    the research side counts the linked records by method in the token maps, banded or not)."""
    reasons = summary["unlinked_by_reason"]
    hidden = [k for k, v in reasons.items() if isinstance(v, str)]
    rest = summary["records"] - linked - sum(v for v in reasons.values() if isinstance(v, int))
    return bool(hidden) and 0 < rest < 10


@pytest.mark.parametrize("unlinked", [
    {"below_threshold": 40, "ambiguous": 5},
    {"below_threshold": 40, "no_candidate": 12, "ambiguous": 3, "ambiguous_shared_candidate": 2},
    {"below_threshold": 40, "ambiguous": 9, "ambiguous_shared_candidate": 11},
])
def test_a_small_reason_is_not_exact_by_subtraction_from_the_total(unlinked: dict[str, int]) -> None:
    summary = _summary({"insurance_number": 120, "probabilistic": 300}, unlinked)
    reasons = summary["unlinked_by_reason"]
    assert {k for k, v in reasons.items() if v == "<10"} == {k for k, v in unlinked.items() if 0 < v < 10}
    assert not _exact_small_by_subtraction(summary, 420)
    assert summary["records"] == 420 + sum(unlinked.values())  # the total stays (the content gives it anyway)


def test_counts_of_ten_or_more_are_shown_when_the_small_ones_protect_each_other() -> None:
    summary = _summary({"probabilistic": 300}, {"below_threshold": 40, "ambiguous": 6, "no_candidate": 7})
    assert summary["unlinked_by_reason"] == {"below_threshold": 40, "ambiguous": "<10", "no_candidate": "<10"}


def test_no_small_count_in_any_summary_reaches_the_research_side() -> None:
    for a, b, c in itertools.product([0, 1, 9, 10, 35], repeat=3):
        summary = _summary({"probabilistic": 30, "insurance_number": a}, {"ambiguous": b, "below_threshold": c,
                                                                         "no_candidate": 50})
        for group in ("linked_by_method", "unlinked_by_reason"):
            assert all(isinstance(v, str) or v == 0 or v >= 10 for v in summary[group].values())
        assert not _exact_small_by_subtraction(summary, 30 + a)
