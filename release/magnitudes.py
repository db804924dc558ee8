"""Magnitude cells of a release (claimed costs): what is shown, under the p %-rule and dominance.

``shared/spec/disclosure.md``, "Primary rules": costs are published under the p %-rule and
(n, k)-dominance. A magnitude column (:class:`Magnitude`) belongs to a count of persons in the
same row (the persons with a cost) and has a mean (total / persons). Decided after the counts are
protected (:func:`release.protection.decide`), per row:

1. the total is hidden when its persons count is hidden (``persons``: like events follow their
   persons), or when the cell fails the magnitude rules (:func:`disclosure.magnitude_stats_rule`
   on the study's per-cell statistics: fewer than T persons, ``primary:p-percent``,
   ``primary:dominance``);
2. **nested cells** (a ``part_of`` relation of the persons quantity with itself: the costs of a
   condition contain those of a condition it contains, and all-cause costs are additive over
   persons): a hidden part under a shown whole would be bounded from above by the whole, so the
   whole is hidden too; a hidden whole over a shown part with the same published persons would
   equal the part, so the part is hidden too; when both are shown their difference (the persons
   of the whole outside the part) is published implicitly, and must pass the magnitude rules
   itself. Its statistics are not in the study folder, so they are bounded by the whole's
   (x1 and x2 of a subset are at most those of the set): when the bound cannot show that the
   difference passes, the whole is hidden (``secondary:magnitude``). Repeated until stable;
3. the mean is hidden whenever the total or the persons count is; over 0 persons it is
   ``below-threshold`` (there is no mean).

No margin of a magnitude is published (no ``Total`` rows, no total over sectors), so no other
sum constrains a hidden total. Published values are rounded to whole euros, half up, from the
unrounded cents: ``total = (cents + 50) // 100`` and ``mean = round(cents / persons / 100)``.
A total that would read as a BSN (nine digits passing the 11-test) is hidden too. The per-cell
statistics (the largest and second-largest contribution) never leave this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from disclosure import Policy, magnitude_stats_rule
from extracts.bsn import check_digit_ok

__all__ = ["ROUNDING", "Magnitude", "decide_magnitudes", "nested_pairs"]

ROUNDING = "whole euros, half up"
SUPPRESSED, BELOW = "suppressed", "below-threshold"


@dataclass(frozen=True)
class Magnitude:
    """A magnitude column: the total of ``quantity`` over the persons counted in ``persons``.

    Attributes:
        name: the total's column (whole euros).
        quantity: the quantity the total is a cell of (``cost_total``).
        persons: the count column of the same row (the contributors, ``cost_persons``).
        mean: the mean's column (total / persons, whole euros).
        unit: the currency.
    """

    name: str
    quantity: str
    persons: str
    mean: str
    unit: str = "EUR"


def nested_pairs(frame: pl.DataFrame, coordinates: tuple[str, ...], relations: list[dict],
                 quantity: str) -> np.ndarray:
    """Row pairs (whole, part) that the ``part_of`` relations of ``quantity`` with itself nest.

    A relation's ``where`` selects part rows (a value or a list of values per coordinate), its
    ``set`` names the whole's coordinates that differ (``docs/release-format.md``, "relations").
    """
    index = {tuple(str(v) for v in row): i for i, row in enumerate(frame.select(coordinates).iter_rows())}
    pairs = []
    for rel in relations:
        if rel.get("type") != "part_of" or rel.get("part") != quantity or rel.get("whole") != quantity:
            continue
        where: Mapping = rel.get("where", {})
        for part, row in enumerate(frame.select(coordinates).iter_rows(named=True)):
            coords = {c: str(v) for c, v in row.items()}
            if not all(coords.get(c) in ([str(x) for x in v] if isinstance(v, list) else [str(v)])
                       for c, v in where.items()):
                continue
            whole = index.get(tuple({**coords, **{c: str(v) for c, v in rel.get("set", {}).items()}}[c]
                                    for c in coordinates))
            if whole is not None and whole != part:
                pairs.append((whole, part))
    return np.array(sorted(set(pairs)), dtype=np.int64).reshape(-1, 2)


def _difference_fails(policy: Policy, total: np.ndarray, persons: np.ndarray, x1: np.ndarray, x2: np.ndarray,
                      whole: np.ndarray, part: np.ndarray) -> np.ndarray:
    """True where the difference whole - part cannot be shown to pass the magnitude rules."""
    d_total = total[whole] - total[part]
    d_persons = persons[whole] - persons[part]
    empty = d_persons == 0
    # x1, x2 of the difference are at most the whole's: the rules on those bounds are sufficient.
    p_fails = 100 * (d_total - x1[whole] - x2[whole]) < policy.p_percent * x1[whole]
    dominance_fails = 100 * (x1[whole] + (policy.dominance_n - 1) * x2[whole]) > policy.dominance_k * d_total
    few = d_persons < policy.threshold
    return ~empty & (few | p_fails | dominance_fails)


def decide_magnitudes(stats: pl.DataFrame, persons_hidden: np.ndarray, pairs: np.ndarray, policy: Policy,
                      magnitude: Magnitude) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Values, statuses and the engine's reasons of a magnitude column and its mean, row by row.

    Args:
        stats: per row ``persons``, ``total_cents``, ``largest_cents``, ``second_cents``.
        persons_hidden: per row, whether the row's persons count is hidden.
        pairs: (whole, part) row pairs of nested cells (:func:`nested_pairs`).
        policy: the release's policy.
        magnitude: the column.

    Returns:
        ``{total column: (values, statuses, reasons), mean column: (...)}``; values are whole
        euros (null where hidden), statuses ``""`` or ``suppressed`` (``below-threshold`` for a
        mean over nobody), reasons the engine's (for the steward's record, never published).
    """
    n = stats["persons"].to_numpy().astype(np.int64)
    cents = stats["total_cents"].to_numpy().astype(np.int64)
    x1 = stats["largest_cents"].to_numpy().astype(np.int64)
    x2 = stats["second_cents"].to_numpy().astype(np.int64)
    flags = magnitude_stats_rule(cents, n, x1, x2, policy)
    hidden = np.asarray(persons_hidden, dtype=bool) | flags.hidden
    reasons = np.where(np.asarray(persons_hidden, dtype=bool), "persons", flags.reasons).astype(object)
    whole, part = (pairs[:, 0], pairs[:, 1]) if pairs.size else (np.array([], np.int64),) * 2
    changed = True
    while changed:
        before = hidden.copy()
        shown_persons = ~np.asarray(persons_hidden, dtype=bool)
        hide_whole = ~hidden[whole] & (hidden[part] | (~hidden[part] & _difference_fails(
            policy, cents, n, x1, x2, whole, part)))
        same = shown_persons[whole] & shown_persons[part] & (n[whole] == n[part])
        hide_part = hidden[whole] & ~hidden[part] & same
        for rows, mask in ((whole, hide_whole), (part, hide_part)):
            newly = rows[mask]
            reasons[newly[~hidden[newly]]] = "secondary:magnitude"
            hidden[newly] = True
        changed = bool((hidden != before).any())
    rounded = (cents + 50) // 100
    # A total of nine digits passing the 11-test would read as a BSN to every leak scanner
    # (pfl-audit's included): hidden, rare (totals of 100 to 999 million euros, 1 in 11).
    nine = (rounded >= 100_000_000) & (rounded < 1_000_000_000)
    bsn_like = nine & check_digit_ok(np.where(nine, rounded, 0))
    reasons[bsn_like & ~hidden] = "identifier-like"
    hidden |= bsn_like
    total = np.where(hidden, None, rounded).astype(object)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_value = (2 * cents + 100 * n) // np.maximum(200 * n, 1)
    nobody = n == 0
    mean_hidden = hidden | nobody
    mean = np.where(mean_hidden, None, mean_value).astype(object)
    mean_status = np.where(hidden, SUPPRESSED, np.where(nobody, BELOW, "")).astype(object)
    mean_reasons = np.where(hidden, reasons, np.where(nobody, "nobody", "")).astype(object)
    return {magnitude.name: (total, np.where(hidden, SUPPRESSED, "").astype(object), reasons),
            magnitude.mean: (mean, mean_status, mean_reasons)}
