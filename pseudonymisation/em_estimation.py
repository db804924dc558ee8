"""m-probabilities without labels: expectation-maximisation on blocked pairs (issue 13, item 7).

At the TTP the model's m-probabilities come from the records already linked by BSN
(:func:`pseudonymisation.matching.estimate_model`). Two files with no such labels (FEBRL4, the
public benchmark; a project whose suppliers send no labelled sample) need another route: EM.

Pairs blocked on one token field (records sharing the keyed birth date, or the keyed address) are
a mixture of matches and non-matches; within each class the *other* fields are taken as
independent (Fellegi and Sunter 1969; Winkler 1988). The non-matches of such a block are random
pairs in every other field, so their level probabilities are u, estimated from random pairs and
held fixed; EM fits the matches' level probabilities and the match share (a free non-match class
would split the matches in two where blocks hold few non-matches, as an address block does).
The blocking field itself is left out of its own session (it agrees on every pair) and gets its
m from the other sessions; each field's m is the mean over the sessions that estimated it (the
route Splink takes, one EM session per blocking rule). Blocking on one field, not on the
cascade's union of keys, matters: a non-match in the union must agree on *some* key, which ties
its fields together and biases EM's m upwards (0.85 for a planted 0.80 in
``tests/unit/test_fallback_em.py``).

The weights take the same u, as the labelled route does. EM starts from "matches mostly agree",
so the classes cannot swap. No labels are read anywhere here.
"""

from __future__ import annotations

import numpy as np

from pseudonymisation.comparison import FIELDS, MISSING, Encoded, compare, distinct, pairs_sharing
from pseudonymisation.encodings import TOKEN_FIELDS
from pseudonymisation.errors import PseudonymisationError
from pseudonymisation.matching import LEVELS, Model, u_probabilities

__all__ = ["estimate_model_em"]

_MIN_PAIRS = 100
"""Sessions with fewer blocked pairs are skipped: too few to separate two classes."""


def estimate_model_em(q: Encoded, t: Encoded, *, random_pairs: int = 200_000, seed: int = 0,
                      iterations: int = 200, tolerance: float = 1e-7) -> Model:
    """m by EM, one session per token field (see the module docstring); u from random pairs."""
    if not len(q) or not len(t):
        msg = "fallback: too few pairs to estimate the m-probabilities by EM (a file is empty)"
        raise PseudonymisationError(msg)
    u = u_probabilities(q, t, random_pairs=random_pairs, seed=seed)
    total, sessions = np.zeros((len(FIELDS), LEVELS)), np.zeros(len(FIELDS))
    for blocked in TOKEN_FIELDS:
        qi, ti = pairs_sharing(q, t, blocked)
        if len(qi) < _MIN_PAIRS:
            continue
        others = np.array([j for j, f in enumerate(FIELDS) if f != blocked])
        levels = compare(q, t, qi, ti).astype(np.int64)[:, others]
        total[others] += _em(levels, u[others], iterations=iterations, tolerance=tolerance,
                             fields=[FIELDS[j] for j in others])
        sessions[others] += 1
    if not (sessions > 0).all():
        missing = [f for f, n in zip(FIELDS, sessions, strict=True) if n == 0]
        msg = (f"fallback: too few pairs share a birth date, address or insurance token to estimate the "
               f"m-probabilities of {', '.join(missing)} by EM")
        raise PseudonymisationError(msg)
    m = total / sessions[:, None]
    return Model(m, u, 0, random_pairs)


def _em(levels: np.ndarray, u: np.ndarray, *, iterations: int, tolerance: float, fields: list[str]) -> np.ndarray:
    """The match class's level probabilities (len(fields), LEVELS) of a two-class mixture whose
    non-match class has the level probabilities ``u`` (fixed)."""
    n_fields = levels.shape[1]
    # Distinct agreement patterns with their counts: EM over thousands of patterns, not millions of pairs.
    powers = LEVELS ** np.arange(n_fields)
    patterns, counts = distinct((levels * powers).sum(axis=1), counts=True)
    pattern_levels = (patterns[:, None] // powers) % LEVELS
    counts = counts.astype(float)
    m = np.full((n_fields, LEVELS), 1e-3)
    for j, f in enumerate(fields):
        m[j, MISSING[f] - 1] = 0.9  # the highest agreement level (token: agree; Bloom: Dice >= 0.95)
        m[j, MISSING[f]] = 0.05
    m /= m.sum(axis=1, keepdims=True)
    share, rows = 0.1, np.arange(n_fields)
    for _ in range(iterations):
        log_m = np.log(m[rows, pattern_levels]).sum(axis=1) + np.log(share)
        log_u = np.log(u[rows, pattern_levels]).sum(axis=1) + np.log(1 - share)
        posterior = 1 / (1 + np.exp(np.clip(log_u - log_m, -700, 700)))
        new_m = _weighted_frequencies(pattern_levels, counts * posterior)
        share = float(np.clip((counts * posterior).sum() / counts.sum(), 1e-9, 1 - 1e-9))
        converged = np.abs(new_m - m).max() < tolerance
        m = new_m
        if converged:
            break
    return m


def _weighted_frequencies(pattern_levels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per field, the weighted share of each level (smoothed: no level has probability 0)."""
    out = np.empty((pattern_levels.shape[1], LEVELS))
    for j in range(pattern_levels.shape[1]):
        out[j] = np.bincount(pattern_levels[:, j], weights=weights, minlength=LEVELS)[:LEVELS]
    out += 1e-6 * max(weights.sum(), 1.0)
    return out / out.sum(axis=1, keepdims=True)
