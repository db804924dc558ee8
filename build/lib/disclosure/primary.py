"""Primary suppression rules (``shared/spec/disclosure.md``, "Primary rules").

Every rule is vectorised over whole columns (numpy for counts, polars for contributor lists) and
returns :class:`Flags`: one hidden flag and one reason per cell. Reasons are stable strings that a
release records next to each hidden cell:

=========================  =================================================================
reason                     rule
=========================  =================================================================
``primary:count``          a count of 1..T-1 persons
``primary:complement``     an "n of N" count whose complement N - n is 1..T-1
``primary:percentage``     a percentage whose numerator or denominator is < T, or whose
                           count is hidden
``primary:change``         a percentage-point change where either percentage is hidden
``primary:contributors``   a magnitude over 1..T-1 persons (the threshold rule for magnitudes)
``primary:p-percent``      a magnitude failing the p %-rule
``primary:dominance``      a magnitude failing (n, k)-dominance
=========================  =================================================================

Zeros are published (when the policy says so) and are never primary: a zero tells nothing
about a person. Whether zeros are shown at all is decided by :func:`disclosure.secondary.protect`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from disclosure.policy import Policy

__all__ = [
    "Flags",
    "NOfN",
    "change_rule",
    "count_rule",
    "magnitude_rule",
    "n_of_n_rule",
    "percentage_rule",
]


@dataclass(frozen=True, eq=False)
class Flags:
    """Hidden flags and reasons, one per cell ("" where the cell is shown).

    Attributes:
        hidden: boolean array.
        reasons: array of ``str`` (object dtype), "" for shown cells.
    """

    hidden: np.ndarray
    reasons: np.ndarray

    def __or__(self, other: Flags) -> Flags:
        """Union of two rule results; the first rule's reason wins where both hide a cell."""
        reasons = np.where(self.hidden, self.reasons, other.reasons)
        return Flags(self.hidden | other.hidden, reasons)


@dataclass(frozen=True, eq=False)
class NOfN:
    """The flags of an "n of N" table: the count n, the total N and the percentage n / N."""

    count: Flags
    total: Flags
    percentage: Flags


def _counts(values: npt.ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind not in "iu" and not (array.dtype.kind == "f" and np.all(np.mod(array, 1) == 0)):
        msg = f"{name}: expected integer counts of persons"
        raise ValueError(msg)
    array = array.astype(np.int64)
    if np.any(array < 0):
        msg = f"{name}: expected non-negative counts, found {int(np.sum(array < 0))} negative"
        raise ValueError(msg)
    return array


def _flags(hidden: np.ndarray, reason: str) -> Flags:
    return Flags(hidden, np.where(hidden, reason, "").astype(object))


def count_rule(counts: npt.ArrayLike, policy: Policy) -> Flags:
    """Counts of 1..T-1 persons are hidden (``primary:count``); zeros are never primary.

    Args:
        counts: counts of distinct persons (numpy array, list or polars Series).
        policy: the disclosure policy (its ``threshold``).
    """
    n = _counts(counts, "counts")
    return _flags((n >= 1) & (n < policy.threshold), "primary:count")


def percentage_rule(
    n: npt.ArrayLike, total: npt.ArrayLike, policy: Policy, *, count_hidden: npt.ArrayLike | None = None
) -> Flags:
    """A percentage n / N is shown only when n >= T and N >= T and its count is shown.

    Args:
        n: numerators (persons with the attribute).
        total: denominators N.
        policy: the disclosure policy.
        count_hidden: optional flags of the counts n after *all* suppression (primary and
            secondary); a percentage whose count is hidden is hidden too.
    """
    num, den = _counts(n, "n"), _counts(total, "N")
    hidden = (num < policy.threshold) | (den < policy.threshold)
    if count_hidden is not None:
        hidden = hidden | np.asarray(count_hidden, dtype=bool)
    return _flags(hidden, "primary:percentage")


def n_of_n_rule(n: npt.ArrayLike, total: npt.ArrayLike, policy: Policy) -> NOfN:
    """Primary flags of an "n of N" table: counts, complements and percentages.

    The count n is hidden when it is 1..T-1 (``primary:count``) or, when n > 0, when its
    complement N - n is 1..T-1 (``primary:complement``: it tells that fewer than T persons
    lacked the attribute). The total N follows the count rule. The percentage follows
    :func:`percentage_rule` with the count's flags.

    Raises:
        ValueError: if the arrays differ in length or some n exceeds its N.
    """
    num, den = _counts(n, "n"), _counts(total, "N")
    if num.shape != den.shape:
        msg = f"n_of_n_rule: n and N differ in length ({num.size} and {den.size})"
        raise ValueError(msg)
    if np.any(num > den):
        msg = f"n_of_n_rule: n exceeds N in {int(np.sum(num > den))} rows"
        raise ValueError(msg)
    count = count_rule(num, policy)
    complement = den - num
    by_complement = (num > 0) & (complement >= 1) & (complement < policy.threshold)
    count = count | _flags(by_complement, "primary:complement")
    return NOfN(count, count_rule(den, policy), percentage_rule(num, den, policy, count_hidden=count.hidden))


def change_rule(hidden_before: npt.ArrayLike, hidden_after: npt.ArrayLike) -> Flags:
    """A percentage-point change is hidden when either of its percentages is (``primary:change``)."""
    return _flags(np.asarray(hidden_before, dtype=bool) | np.asarray(hidden_after, dtype=bool), "primary:change")


def magnitude_rule(
    contributions: pl.DataFrame | pl.LazyFrame,
    policy: Policy,
    *,
    cell: str,
    value: str,
    contributor: str | None = None,
) -> pl.DataFrame:
    """Primary flags of a magnitude table (costs) from its contributor lists.

    A cell's magnitude X is the sum of its contributions x1 >= x2 >= ... (per person when
    ``contributor`` is given, so that one person's many claims count as one contributor).
    A non-zero cell is hidden when, in this order of reasons:

    - it has 1..T-1 contributors (``primary:contributors``: units are persons, and a
      magnitude over fewer than T persons describes fewer than T persons);
    - the p %-rule fails: X - x1 - x2 < p/100 * x1, i.e. the second-largest contributor can
      estimate the largest within p % (``primary:p-percent``);
    - (n, k)-dominance fails: x1 + ... + xn > k/100 * X (``primary:dominance``).

    Args:
        contributions: one row per contribution, with the cell key and a non-negative value.
        policy: the disclosure policy (threshold, p_percent, dominance_n, dominance_k).
        cell: column holding the cell key.
        value: column holding the contribution.
        contributor: optional column holding the person; contributions are summed per person.

    Returns:
        One row per cell: ``cell``, ``total``, ``contributors``, ``hidden``, ``reason``.

    Raises:
        ValueError: when a contribution is negative (the rules assume non-negative magnitudes).
    """
    frame = contributions.lazy()
    if contributor is not None:
        frame = frame.group_by(cell, contributor).agg(pl.col(value).sum())
    top = max(2, policy.dominance_n)
    stats = (
        frame.group_by(cell)
        .agg(
            pl.col(value).sum().alias("total"),
            pl.len().alias("contributors"),
            (pl.col(value) < 0).sum().alias("_negative"),
            pl.col(value).top_k(top).alias("_top"),  # top_k does not promise an order: sorted below
        )
        .with_columns(pl.col("_top").list.sort(descending=True))
        .sort(cell)
        .collect()
    )
    if stats["_negative"].sum():
        msg = f"magnitude_rule: column '{value}' has negative contributions in {int((stats['_negative'] > 0).sum())} cells"
        raise ValueError(msg)
    x1 = pl.col("_top").list.get(0, null_on_oob=True).fill_null(0)
    x2 = pl.col("_top").list.get(1, null_on_oob=True).fill_null(0)
    top_n = pl.col("_top").list.head(policy.dominance_n).list.sum()
    nonzero = pl.col("total") > 0
    few = nonzero & (pl.col("contributors") < policy.threshold)
    p_rule = nonzero & ((pl.col("total") - x1 - x2) < policy.p_percent / 100 * x1)
    dominance = nonzero & (top_n > policy.dominance_k / 100 * pl.col("total"))
    reason = (
        pl.when(few)
        .then(pl.lit("primary:contributors"))
        .when(p_rule)
        .then(pl.lit("primary:p-percent"))
        .when(dominance)
        .then(pl.lit("primary:dominance"))
        .otherwise(pl.lit(""))
    )
    return stats.select(
        pl.col(cell), pl.col("total"), pl.col("contributors").cast(pl.Int64),
        (few | p_rule | dominance).alias("hidden"), reason.alias("reason"),
    )
