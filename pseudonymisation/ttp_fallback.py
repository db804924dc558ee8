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
from pseudonymisation.matching import ADDRESS_PAIRS, FallbackSettings, Whole, estimate_model, run_cascade
from pseudonymisation.stopping import checkpoint

__all__ = ["FallbackLinks", "Plan", "Register", "plan_fallback", "run_fallback"]

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


def _estimate_precision(ehr: Encoded, register: Register, half_b: np.ndarray, truth_b: np.ndarray, model,
                        settings: FallbackSettings) -> dict:
    claims, candidates = register.encoded, register.candidate
    targets = np.flatnonzero(candidates | hits(claims.token, truth_b))
    # A part of the register holds every row of B's persons: the whole's targets are its candidates
    # and those rows.
    total = register.candidates_total + len(targets) - int(candidates.sum()) if register.whole is not None else None
    result = run_cascade(ehr.take(half_b), claims, model, settings, rows=targets, rows_total=total,
                         skip_values=register.skip_values)
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


@dataclass(frozen=True)
class Plan:
    """What the fallback links and learns from, fixed before it reads the claims register.

    ``labelled``: EHR encodings rows linked by BSN (``row``, ``token``, ``claims_token``), in the
    claims identifiers' row order (the order a hash join on the register gave; ``b.head`` depends
    on it); ``a``, ``b``: its halves; ``query_rows``: EHR rows without a P1; ``model_seed``, and the
    sizes of the model's samples.
    """

    labelled: pl.DataFrame
    a: pl.DataFrame
    b: pl.DataFrame
    query_rows: np.ndarray
    model_seed: int
    random_pairs: int = 200_000  # the model's random pairs (u) and rows sampled for u given the address
    address_pairs: int = ADDRESS_PAIRS


@dataclass(frozen=True)
class Register:
    """The claims side as the fallback reads it: the whole register in memory (``whole`` None), or
    the part of it that can pair (:mod:`pseudonymisation.ttp_register`), with the whole's figures.

    ``candidate``: per row, a candidate (its person not linked by BSN to an EHR record);
    ``candidates_total``: the candidate rows of the whole; ``skip_values``: per blocking key, the
    values whose blocks are too large in the whole (their rows left out of the part).
    """

    encoded: Encoded
    candidate: np.ndarray
    candidates_total: int
    whole: Whole | None = None
    skip_values: dict[str, np.ndarray] | None = None


def plan_fallback(ehr: Encoded, labelled: pl.DataFrame, query_rows: np.ndarray, *, seed: int = 0) -> Plan:
    """Split the labelled records in halves (see the module docstring) and fix the model's seed."""
    rng = np.random.default_rng(seed)
    # The halves follow the tokens (random, fresh per supplier run): the same inputs give the same
    # output, as every stage of the engine (tests/robustness/test_determinism.py).
    half = (labelled["token"].hash(seed) & 1).cast(pl.Boolean).to_numpy()
    a, b = labelled.filter(pl.Series(half)), labelled.filter(pl.Series(~half)).head(_ESTIMATE_RECORDS)
    if b.height == 0 or a.height == 0:  # too few to split: estimate on all, no precision estimate
        a, b = labelled, labelled.clear()  # (never one on the records the model learnt from)
    return Plan(labelled, a, b, query_rows, int(rng.integers(1 << 31)))


def run_fallback(ehr: Encoded, register: Register, plan: Plan, settings: FallbackSettings) -> FallbackLinks:
    """The fallback's links and report, from the plan (:func:`plan_fallback`) and the register."""
    claims, a, b = register.encoded, plan.a, plan.b
    checkpoint()
    model = estimate_model(
        _labelled_pairs(ehr, claims, a["row"].to_numpy(), a["claims_token"].to_numpy()),
        (ehr, claims), seed=plan.model_seed, whole=register.whole, random_pairs=plan.random_pairs,
        address_pairs=plan.address_pairs,
    )
    checkpoint()  # Ctrl-C: stop between the fallback's steps (pseudonymisation/stopping.py)
    part = register.whole is not None
    candidates, query_rows = register.candidate, plan.query_rows
    result = run_cascade(ehr.take(query_rows), claims, model, settings, rows=np.flatnonzero(candidates),
                         rows_total=register.candidates_total if part else None, skip_values=register.skip_values)
    linked = result.method != ""
    links = pl.DataFrame({
        "token": ehr.token[query_rows][linked],
        "claims_token": result.target[linked],
        "link_method": result.method[linked].astype(str),
    })
    checkpoint()
    estimate = _estimate_precision(ehr, register, b["row"].to_numpy(), b["claims_token"].to_numpy(), model, settings)
    report = {
        "settings": {"threshold": settings.threshold, "margin": settings.margin},
        **result.counts(),
        "blocking": result.blocking,
        "model": model.summary(),
        "estimated_on_bsn_linked_records": estimate,
    }  # no timings: the same inputs give a byte-identical report (tests/robustness/test_determinism.py)
    return FallbackLinks(links, report)
