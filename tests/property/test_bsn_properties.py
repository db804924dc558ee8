"""Property tests of the BSN rules (data-contract.md, "Identifiers")."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from extracts.bsn import (
    BsnStatus,
    bsn_status,
    check_digit_ok,
    normalise_bsn,
    valid_bsns_from_prefixes,
)

_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)
_SETTINGS = settings(max_examples=200, deadline=None)

bsn_like_text = st.text(alphabet="0123456789 .-\t\nabX", max_size=14)
prefixes = st.integers(min_value=0, max_value=99_999_999)


def _apply(expr_fn, values: list[str | None]) -> list[str | None]:
    frame = pl.DataFrame({"b": values}, schema={"b": pl.String})
    return frame.select(expr_fn(pl.col("b")).alias("b"))["b"].to_list()


@_SETTINGS
@given(st.lists(st.one_of(st.none(), bsn_like_text, st.text(max_size=12)), max_size=20))
def test_normalise_bsn_is_idempotent(values: list[str | None]) -> None:
    once = _apply(normalise_bsn, values)
    assert _apply(normalise_bsn, once) == once


@_SETTINGS
@given(prefix=prefixes, position=st.integers(0, 8), shift=st.integers(1, 9))
def test_valid_bsn_with_one_digit_changed_fails_the_11_test(
    prefix: int, position: int, shift: int
) -> None:
    bsns, ok = valid_bsns_from_prefixes(np.array([prefix]))
    if not ok[0]:
        return  # about 1 prefix in 11 has no check digit; nothing to mutate
    digits = list(f"{int(bsns[0]):09d}")
    digits[position] = str((int(digits[position]) + shift) % 10)  # always a different digit
    changed = "".join(digits)
    assert _apply(bsn_status, [changed]) != [BsnStatus.VALID.value]
    assert not check_digit_ok(np.array([int(changed)]))[0]


def test_every_single_digit_substitution_changes_the_11_test_sum() -> None:
    # Why the property above holds, exhaustively: a substitution at position i changes the sum by
    # w_i * delta with |delta| in 1..9; 11 is prime and divides neither w_i (incl. -1 for d9)
    # nor delta, so it never divides the change.
    for weight in _WEIGHTS:
        for delta in [*range(-9, 0), *range(1, 10)]:
            assert (weight * delta) % 11 != 0, (weight, delta)


@_SETTINGS
@given(st.lists(prefixes, min_size=1, max_size=50))
def test_valid_bsns_from_prefixes_pass_check_digit_ok_and_bsn_status(values: list[int]) -> None:
    bsns, ok = valid_bsns_from_prefixes(np.array(values, dtype=np.int64))
    good = bsns[ok]
    assert check_digit_ok(good).all()
    assert (good // 10 == np.array(values)[ok]).all()  # the prefix is kept
    statuses = _apply(bsn_status, [f"{int(b):09d}" for b in good])
    assert set(statuses) <= {BsnStatus.VALID.value}


@_SETTINGS
@given(st.lists(prefixes, min_size=1, max_size=50))
def test_prefixes_reported_not_ok_have_no_valid_check_digit(values: list[int]) -> None:
    bsns, ok = valid_bsns_from_prefixes(np.array(values, dtype=np.int64))
    for prefix in np.array(values)[~ok]:  # a handful of prefixes, not rows of data
        candidates = prefix * 10 + np.arange(10, dtype=np.int64)
        assert not check_digit_ok(candidates).any()
