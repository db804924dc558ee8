"""The TTP's fallback step: link EHR records without a usable BSN to claims persons (issue 13, item 4).

Inputs: both suppliers' ``encodings.parquet`` and identifier files (token -> P1). The EHR rows
whose token has no P1 are the *queries*; those whose token has a P1 found on the claims side are
*labelled* (linked by BSN). The claims persons already linked by BSN to an EHR record are no
candidates (one-to-one with the BSN links). The labelled records are split in two random halves:

- half A gives the model's m-probabilities (:func:`pseudonymisation.matching.estimate_model`);
- half B (at most ``_ESTIMATE_RECORDS`` records) is linked again by the fallback as if its BSN
  were missing, against the candidates plus B's own persons: the share of wrong links estimates the fallback's precision on real data,
  where there is no truth (the ONS practice of measuring on the deterministically linked).

Returns, per linked query token, the claims token whose P1 gives its project pseudonym, the
method, and a report of counts only (no token, no score of a record).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from pseudonymisation.comparison import Encoded, hits
from pseudonymisation.matching import FallbackSettings, estimate_model, run_cascade
from pseudonymisation.stopping import checkpoint

__all__ = ["FallbackLinks", "link_fallback"]

_ESTIMATE_RECORDS = 5_000
"""Records of half B linked again: one wrong link moves the estimate by 0.0002, a fifth of the
error a precision of 0.999 allows; more would cost the TTP time without changing the verdict."""


@dataclass(frozen=True)
class FallbackLinks:
    """Query token -> claims token and method (``links``), and the report (counts only)."""

    links: pl.DataFrame
    report: dict


def _rows_of(tokens: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    return np.flatnonzero(hits(tokens, wanted))


def _labelled_pairs(ehr: Encoded, claims: Encoded, rows: np.ndarray, claims_token: np.ndarray):
    """Every (EHR row, claims row of the same person) for the labelled EHR rows ``rows``."""
    order = np.argsort(claims.token, kind="stable")
    sorted_tokens = claims.token[order]
    lo = np.searchsorted(sorted_tokens, claims_token, side="left")
    hi = np.searchsorted(sorted_tokens, claims_token, side="right")
    sizes = hi - lo
    e_rows = np.repeat(rows, sizes)
    offsets = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return ehr.take(e_rows), claims.take(order[np.repeat(lo, sizes) + offsets])


def _estimate_precision(ehr: Encoded, claims: Encoded, half_b: np.ndarray, truth_b: np.ndarray,
                        candidates: np.ndarray, model, settings: FallbackSettings) -> dict:
    targets = np.flatnonzero(candidates | hits(claims.token, truth_b))
    result = run_cascade(ehr.take(half_b), claims, model, settings, rows=targets)
    linked = result.method != ""
    correct = linked & (result.target == truth_b)
    n_linked = int(linked.sum())
    return {
        "records": len(half_b),
        "linked": n_linked,
        "wrong_links": n_linked - int(correct.sum()),
        "precision": round(float(correct.sum()) / n_linked, 6) if n_linked else None,
        "recall": round(float(correct.sum()) / len(half_b), 6) if len(half_b) else None,
        "by_method": {m: {"linked": int((result.method == m).sum()),
                          "wrong": int(((result.method == m) & ~correct).sum())}
                      for m in ("insurance_number", "probabilistic")},
    }


def link_fallback(ehr: Encoded, claims: Encoded, ehr_p1: pl.DataFrame, claims_p1: pl.DataFrame,
                  settings: FallbackSettings, *, seed: int = 0) -> FallbackLinks:
    """Run the cascade's fallback steps (see the module docstring).

    Args:
        ehr, claims: the suppliers' encodings.
        ehr_p1, claims_p1: each supplier's identifiers (``token``, ``p1``).
        settings: threshold and margin from the TTP's configuration.
        seed: of the split of the labelled records and of the random pairs.
    """
    by_p1 = ehr_p1.select("token", "p1").join(claims_p1.select(pl.col("token").alias("claims_token"), "p1"),
                                              on="p1", how="inner")
    bsn_linked_claims = by_p1["claims_token"].to_numpy()
    query_rows = np.flatnonzero(~hits(ehr.token, ehr_p1["token"].to_numpy()))
    checkpoint()
    labelled = pl.DataFrame({"token": ehr.token}).with_row_index("row").join(by_p1, on="token", how="inner")
    # The halves follow the tokens (random, fresh per supplier run): the same inputs give the same
    # output, as every stage of the engine (tests/robustness/test_determinism.py).
    rng = np.random.default_rng(seed)
    half = (labelled["token"].hash(seed) & 1).cast(pl.Boolean).to_numpy()
    a, b = labelled.filter(pl.Series(half)), labelled.filter(pl.Series(~half)).head(_ESTIMATE_RECORDS)
    if b.height == 0 or a.height == 0:  # too few to split: estimate on all, no precision estimate
        a, b = labelled, labelled.clear()  # (never one on the records the model learnt from)
    checkpoint()
    model = estimate_model(
        _labelled_pairs(ehr, claims, a["row"].to_numpy(), a["claims_token"].to_numpy()),
        (ehr, claims), seed=int(rng.integers(1 << 31)),
    )
    checkpoint()  # Ctrl-C: stop between the fallback's steps (pseudonymisation/stopping.py)
    # Hash probes (polars is_in), not np.isin: that sorts the register's tokens for each lookup.
    candidates = ~hits(claims.token, bsn_linked_claims)
    result = run_cascade(ehr.take(query_rows), claims, model, settings, rows=np.flatnonzero(candidates))
    linked = result.method != ""
    links = pl.DataFrame({
        "token": ehr.token[query_rows][linked],
        "claims_token": result.target[linked],
        "link_method": result.method[linked].astype(str),
    })
    checkpoint()
    estimate = _estimate_precision(ehr, claims, b["row"].to_numpy(), b["claims_token"].to_numpy(),
                                   candidates, model, settings)
    report = {
        "settings": {"threshold": settings.threshold, "margin": settings.margin},
        **result.counts(),
        "blocking": result.blocking,
        "model": model.summary(),
        "estimated_on_bsn_linked_records": estimate,
    }  # no timings: the same inputs give a byte-identical report (tests/robustness/test_determinism.py)
    return FallbackLinks(links, report)
