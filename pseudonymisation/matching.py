"""The TTP's matching cascade for records without a usable BSN (issue 13, item 4).

Order, each step on what the previous ones left:

1. ``bsn``: the stage-1 pseudonym (the TTP step as before; not here).
2. ``insurance_number``: the keyed token of insurer + insurance number equals the token of exactly
   one claims person, and no other query record carries it; several persons under one token, or
   several records on one person, stay unlinked (``ambiguous_insurance_number``).
3. ``probabilistic``: a Fellegi–Sunter model over the keyed fields (:mod:`pseudonymisation.comparison`).
   m-probabilities come from the records already linked by BSN (free labels: the same stage-1
   pseudonym on both sides), u-probabilities from random pairs; the match weight of a pair is
   ``Σ log2(m/u)`` over its fields (a missing field weighs 0), of a person the best over its rows.
   A record links to its best person when the weight reaches ``threshold`` (configuration, fixed
   before any data is seen) and beats the runner-up by ``margin`` bits; else it stays unlinked,
   ``below_threshold`` or ``ambiguous``. One-to-one: a person claimed by several records goes to
   the strongest only if it beats the next by ``margin`` (``ambiguous_shared_candidate`` otherwise).

Everything is counted, never listed: the TTP report holds counts and shares only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pseudonymisation.comparison import (FIELDS, MISSING, Encoded, candidate_pairs, compare, distinct, hits,
                                         pairs_sharing)
from pseudonymisation.encodings import TOKEN_FIELDS
from pseudonymisation.errors import PseudonymisationError
from pseudonymisation.stopping import checkpoint

__all__ = ["IMPLIED_BY_ADDRESS", "LEVELS", "METHODS", "CascadeResult", "FallbackSettings", "Model", "ADDRESS_PAIRS", "Whole", "address_sample",
           "estimate_model", "random_rows", "run_cascade", "u_probabilities", "unresolved_by_insurance"]

METHODS = ("bsn", "insurance_number", "probabilistic")
LEVELS = max(MISSING.values()) + 1
IMPLIED_BY_ADDRESS = ("bf_street", "bf_city")
"""Fields an agreeing keyed address may imply (a Dutch PC6 is one street in one place). Fellegi–Sunter
assumes independent fields: counted at their unconditional weights on top of an agreeing address,
they made household members, who share family name and address, score as one person. Where the
address agrees they weigh by m and u estimated *given* that agreement (:func:`estimate_model`: u
from different persons of the register who share the keyed address): about nothing where a PC6
implies them, their full weight where an address token does not (FEBRL4's postcode + number)."""
ADDRESS_PAIRS = 20_000  # register rows sampled for the u of street and city given an agreeing address
_ADDRESS = FIELDS.index("t_address")
_IMPLIED = np.array([f in IMPLIED_BY_ADDRESS for f in FIELDS])


@dataclass(frozen=True)
class FallbackSettings:
    """The TTP's fallback settings (``conf/ttp.yaml``, ``fallback``)."""

    enabled: bool = True
    threshold: float = 18.0
    margin: float = 5.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.threshold) and np.isfinite(self.margin) and self.margin >= 0):
            msg = "fallback.threshold and fallback.margin: expected finite numbers, margin >= 0"
            raise PseudonymisationError(msg)


@dataclass(frozen=True)
class Whole:
    """What a register read in part stands for (:mod:`pseudonymisation.ttp_register`): the figures of
    the whole file that the model takes, so that a part gives the model of the whole, exactly.

    ``rows``: the part's row numbers in the whole (ascending); ``size``: the whole's rows;
    ``present``: per token field, the rows holding it; ``value_counts``: per token field, the values
    the other side holds that the whole holds (ascending) and their rows; ``bloom_any``: per Bloom
    field, whether any row holds it.
    """

    rows: np.ndarray
    size: int
    present: dict[str, int]
    value_counts: dict[str, tuple[np.ndarray, np.ndarray]]
    bloom_any: dict[str, bool]

    def local(self, rows: np.ndarray) -> np.ndarray:
        """Rows of the whole (each held by the part) as rows of the part."""
        return np.searchsorted(self.rows, rows)


@dataclass(frozen=True)
class Model:
    """Match weights per field and level: ``weights[j, level] = log2(m / u)``; 0 for missing."""

    m: np.ndarray
    u: np.ndarray
    labelled_pairs: int
    random_pairs: int
    # m and u of the fields given that the keyed address agrees (street and city: IMPLIED_BY_ADDRESS);
    # None: not estimated, street and city weigh as everywhere (the EM route, FEBRL4).
    m_address: np.ndarray | None = None
    u_address: np.ndarray | None = None

    @property
    def weights(self) -> np.ndarray:
        w = np.log2(self.m / self.u)
        for j, f in enumerate(FIELDS):
            w[j, MISSING[f]] = 0.0
        return w

    def score(self, levels: np.ndarray) -> np.ndarray:
        """Match weight per pair: the weights of its levels, summed; where the keyed address agrees,
        street and city weigh by :attr:`address_weights` (:data:`IMPLIED_BY_ADDRESS`), if estimated."""
        if not len(levels):
            return np.zeros(0)
        per_field = self.weights[np.arange(len(FIELDS)), levels]
        if self.m_address is not None and self.u_address is not None:
            rows = np.flatnonzero(levels[:, _ADDRESS] == 1)
            cols = np.flatnonzero(_IMPLIED)
            per_field[rows[:, None], cols] = self.address_weights[cols, levels[rows[:, None], cols]]
        return per_field.sum(axis=1)

    @property
    def address_weights(self) -> np.ndarray:
        """Weights of street and city given that the keyed address agrees (0 for missing)."""
        w = np.log2(self.m_address / self.u_address)
        for j, f in enumerate(FIELDS):
            w[j, MISSING[f]] = 0.0
        return w

    def summary(self) -> dict:
        """Weights rounded to 0.1 bit: properties of the model, not of any record."""
        out = {"labelled_pairs": self.labelled_pairs, "random_pairs": self.random_pairs,
               "weights": {f: [round(float(x), 1) for x in self.weights[j, : MISSING[f] + 1]]
                           for j, f in enumerate(FIELDS)}}
        if self.m_address is not None and self.u_address is not None:
            out["weights_given_address_agrees"] = {
                f: [round(float(x), 1) for x in self.address_weights[FIELDS.index(f), : MISSING[f] + 1]]
                for f in IMPLIED_BY_ADDRESS}
        return out


def _frequencies(levels: np.ndarray) -> np.ndarray:
    counts = np.zeros((len(FIELDS), LEVELS))
    for j in range(len(FIELDS)):
        counts[j] = np.bincount(levels[:, j], minlength=LEVELS)[:LEVELS]
    return counts


def estimate_model(labelled: tuple[Encoded, Encoded], random: tuple[Encoded, Encoded], *,
                   random_pairs: int = 200_000, seed: int = 0, whole: Whole | None = None,
                   address_pairs: int = ADDRESS_PAIRS) -> Model:
    """m from labelled true pairs (row i of both), u from random pairs (+ exact token frequencies).

    For token fields u(agree) is the chance that two random records share the value, computed
    exactly from the value frequencies (random pairs would rarely see a shared birth date);
    everything gets add-one smoothing so that no weight is infinite. ``whole``: ``random[1]`` is the
    part of a register that the model reads (:class:`Whole`).
    """
    lq, lt = labelled
    if len(lq) == 0:
        msg = ("fallback: no records linked by BSN carry encodings, so the model's m-probabilities "
               "cannot be estimated (ask the suppliers for contract-v2 identifier columns)")
        raise PseudonymisationError(msg)
    idx = np.arange(len(lq))
    checkpoint()  # Ctrl-C: between the model's steps (pseudonymisation/stopping.py)
    levels = compare(lq, lt, idx, idx)
    m_counts = _frequencies(levels)
    m = (m_counts + 1) / (m_counts.sum(axis=1, keepdims=True) + LEVELS)
    m_address, u_address = _given_address(levels, random[1], seed=seed, whole=whole, pairs=address_pairs)
    checkpoint()
    return Model(m, u_probabilities(*random, random_pairs=random_pairs, seed=seed, whole=whole), len(lq), random_pairs,
                 m_address, u_address)


def _given_address(labelled_levels: np.ndarray, register: Encoded, *, seed: int, whole: Whole | None = None,
                   pairs: int = ADDRESS_PAIRS) -> tuple[np.ndarray | None, np.ndarray | None]:
    """m and u given an agreeing keyed address: m from the labelled pairs that agree on it, u from
    pairs of different register rows (persons) that share it (household members, neighbours).
    None, None where street and city are not delivered or no such pairs exist."""
    cols = [FIELDS.index(f) for f in IMPLIED_BY_ADDRESS]
    held = [whole.bloom_any[f] for f in IMPLIED_BY_ADDRESS] if whole else [register.present[f].any()
                                                                             for f in IMPLIED_BY_ADDRESS]
    if not any(held):
        return None, None
    agree = labelled_levels[labelled_levels[:, _ADDRESS] == 1]
    rows = address_sample(whole.size if whole else len(register), seed, pairs)
    # A part of the register holds these rows and every row sharing their address (ttp_register).
    sample = register.take(whole.local(rows) if whole else rows)
    qi, ti = pairs_sharing(sample, register, "t_address")
    other = sample.token[qi] != register.token[ti]
    if not len(agree) or not other.any():
        return None, None
    m_counts, u_counts = _frequencies(agree), _frequencies(compare(sample, register, qi[other], ti[other]))
    m = (m_counts + 1) / (m_counts.sum(axis=1, keepdims=True) + LEVELS)
    u = (u_counts + 1) / (u_counts.sum(axis=1, keepdims=True) + LEVELS)
    keep = np.zeros(len(FIELDS), dtype=bool)
    keep[cols] = True
    return np.where(keep[:, None], m, 1.0), np.where(keep[:, None], u, 1.0)


def random_rows(n_q: int, n_t: int, random_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows of the random pairs that give u (one side's, the other's)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_q, random_pairs), rng.integers(0, n_t, random_pairs)


def address_sample(size: int, seed: int, pairs: int = ADDRESS_PAIRS) -> np.ndarray:
    """The register rows (ascending) whose address-sharing pairs give u given an agreeing address."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(size, min(size, pairs), replace=False))


def u_probabilities(rq: Encoded, rt: Encoded, *, random_pairs: int, seed: int, whole: Whole | None = None,
                    ) -> np.ndarray:
    """u per field and level from random pairs; token agreement from exact value frequencies.

    ``whole``: ``rt`` is the part of a register holding the random rows (:class:`Whole`).
    """
    n_t = whole.size if whole else len(rt)
    qi, ti = random_rows(len(rq), n_t, random_pairs, seed)
    u_counts = _frequencies(compare(rq, rt, qi, whole.local(ti) if whole else ti))
    u = (u_counts + 1) / (u_counts.sum(axis=1, keepdims=True) + LEVELS)
    for j, f in enumerate(TOKEN_FIELDS):
        checkpoint()
        a = rq.tokens[f][rq.present[f]]
        if whole:  # the whole's share holding f (a count over rows: np.mean's value) and its values' counts
            both = rq.present[f].mean() * (whole.present[f] / whole.size)
            odds = _shared_value_odds(a, None, b_counts=whole.value_counts[f], b_rows=whole.present[f])
        else:
            both = rq.present[f].mean() * rt.present[f].mean()
            odds = _shared_value_odds(a, rt.tokens[f][rt.present[f]])
        agree = odds * both
        u[j, 1] = max(agree, 1.0 / (len(rq) * n_t + 1))
        u[j, 0] = max(both - u[j, 1], 1e-9)
        u[j, 2] = max(1 - both, 1e-9)
    return u


def _shared_value_odds(a: np.ndarray, b: np.ndarray | None, *,
                       b_counts: tuple[np.ndarray, np.ndarray] | None = None, b_rows: int = 0) -> float:
    """P(value of a random a-row == value of a random b-row), from value frequencies.

    ``b_counts`` and ``b_rows`` stand for ``b`` where it was counted in a pass (ttp_register): b's
    values that a holds, ascending, with their counts, and b's length.
    """
    n_b = b_rows if b is None else len(b)
    if not len(a) or not n_b:
        return 0.0
    va, ca = distinct(a, counts=True)
    # Values of b that a lacks add nothing: counted over b's rows of a's values only (a hash probe
    # first, then a sort of those), the same counts, in the same value order, as over all of b.
    vb, cb = b_counts if b is None else distinct(b[hits(b, va)], counts=True)
    if not len(vb):
        return 0.0
    pos = np.searchsorted(vb, va).clip(0, len(vb) - 1)
    hit = vb[pos] == va
    return float((ca[hit].astype(float) * cb[pos[hit]]).sum() / (len(a) * n_b))


@dataclass(frozen=True)
class CascadeResult:
    """Per query row: the linked target token (or 0), its method (or ''), why not linked (or '')."""

    target: np.ndarray
    method: np.ndarray
    reason: np.ndarray
    blocking: dict

    def counts(self) -> dict:
        methods, n = np.unique(self.method[self.method != ""], return_counts=True)
        reasons, r = np.unique(self.reason[self.reason != ""], return_counts=True)
        return {"records": len(self.target),
                "linked_by_method": {str(k): int(v) for k, v in zip(methods, n, strict=True)},
                "unlinked_by_reason": {str(k): int(v) for k, v in zip(reasons, r, strict=True)}}


def _insurance_step(q: Encoded, t: Encoded, rows: np.ndarray, target: np.ndarray, method: np.ndarray,
                    reason: np.ndarray) -> None:
    """Step 2 of the cascade on the rows ``rows`` of ``t``."""
    f = "t_insurance"
    q_rows = np.flatnonzero(q.present[f])
    t_value, t_present, t_token = t.tokens[f][rows], t.present[f][rows], t.token[rows]
    # Only register rows whose value a query holds can decide a query (a hash probe, then sorting
    # those few): every person of such a value is among them, so the counts per value are exact.
    keep = t_present & hits(t_value, q.tokens[f][q_rows])
    vals, toks = t_value[keep], t_token[keep]
    order = np.lexsort((toks, vals))
    vals, toks = vals[order], toks[order]
    keep = np.r_[True, (vals[1:] != vals[:-1]) | (toks[1:] != toks[:-1])] if len(vals) else np.zeros(0, bool)
    vals, toks = vals[keep], toks[keep]  # distinct (value, person)
    values, persons = distinct(vals, counts=True)
    if not len(values) or not len(q_rows):
        return
    qv = q.tokens[f][q_rows]
    q_values, q_counts = distinct(qv, counts=True)
    pos = np.searchsorted(values, qv).clip(0, len(values) - 1)
    found = values[pos] == qv
    rows, pos, qv = q_rows[found], pos[found], qv[found]
    shared_q = q_counts[np.searchsorted(q_values, qv)] > 1
    unique = (persons[pos] == 1) & ~shared_q
    person = np.zeros(len(rows), dtype=np.int64)
    person[unique] = toks[np.searchsorted(vals, values[pos[unique]])]
    # Several records on one person (a person who switched insurers has one value per insurer):
    # none of them is linked by the insurance number (one-to-one).
    claimed, claims = distinct(person[unique], counts=True)
    unique[unique] = claims[np.searchsorted(claimed, person[unique])] == 1
    target[rows[unique]] = person[unique]
    method[rows[unique]] = "insurance_number"
    reason[rows[~unique]] = "ambiguous_insurance_number"


def unresolved_by_insurance(q: Encoded, t: Encoded, rows: np.ndarray) -> np.ndarray:
    """Per query row: left by the insurance step (step 2) for the probabilistic step, against the
    rows ``rows`` of ``t`` (it reads only the rows whose insurance token a query holds)."""
    n = len(q)
    target, method, reason = np.zeros(n, dtype=np.int64), np.full(n, "", dtype=object), np.full(n, "", dtype=object)
    _insurance_step(q, t, rows, target, method, reason)
    return (method == "") & (reason == "")


def _assign(q_rows: np.ndarray, persons: np.ndarray, scores: np.ndarray, n_q: int,
            settings: FallbackSettings) -> tuple[np.ndarray, np.ndarray]:
    """Best person per query row, then one-to-one; returns (person or 0, reason) per query row."""
    best = np.zeros(n_q, dtype=np.int64)
    reason = np.full(n_q, "no_candidate", dtype=object)
    if not len(q_rows):
        return best, reason
    order = np.lexsort((-scores, q_rows))
    q_rows, persons, scores = q_rows[order], persons[order], scores[order]
    starts = np.flatnonzero(np.r_[True, q_rows[1:] != q_rows[:-1]])
    top_q, top_p, top_s = q_rows[starts], persons[starts], scores[starts]
    second = np.full(len(starts), -np.inf)
    has_second = np.r_[starts[1:], len(q_rows)] - starts > 1
    second[has_second] = scores[starts[has_second] + 1]
    ok = top_s >= settings.threshold
    clear = top_s - second >= settings.margin
    reason[top_q] = np.where(~ok, "below_threshold", np.where(~clear, "ambiguous", ""))
    chosen = ok & clear
    cq, cp, cs = top_q[chosen], top_p[chosen], top_s[chosen]
    # One-to-one: per person, the strongest record keeps it if it beats the next by the margin.
    order = np.lexsort((-cs, cp))
    cq, cp, cs = cq[order], cp[order], cs[order]
    first = np.r_[True, cp[1:] != cp[:-1]]
    runner = np.r_[cs[1:], -np.inf]
    runner[np.r_[cp[1:] != cp[:-1], True]] = -np.inf
    keep = first & (cs - runner >= settings.margin)
    best[cq[keep]] = cp[keep]
    reason[cq[~keep]] = "ambiguous_shared_candidate"
    return best, reason


def run_cascade(q: Encoded, t: Encoded, model: Model, settings: FallbackSettings, *,
                rows: np.ndarray | None = None, rows_total: int | None = None,
                skip_values: dict[str, np.ndarray] | None = None) -> CascadeResult:
    """Link query rows ``q`` (records without a usable BSN) to the persons (tokens) of ``t``.

    ``rows``: the rows of ``t`` that are candidates (default: all): a register is indexed, not copied.
    ``rows_total`` and ``skip_values``: ``t`` is the part of a register that can pair with ``q``
    (:mod:`pseudonymisation.ttp_register`; it holds every row of a person an insurance token may
    take): the register's candidate rows, and per blocking key the values of blocks too large in it.
    """
    n = len(q)
    target = np.zeros(n, dtype=np.int64)
    method = np.full(n, "", dtype=object)
    reason = np.full(n, "", dtype=object)
    rows = np.arange(len(t)) if rows is None else rows
    checkpoint()  # Ctrl-C: between the cascade's steps (pseudonymisation/stopping.py)
    _insurance_step(q, t, rows, target, method, reason)
    checkpoint()
    taken = hits(t.token[rows], target[method == "insurance_number"])
    rest = np.flatnonzero((method == "") & (reason == ""))
    t_rows = rows[~taken]
    # Blocked and compared in place: the register's rows are indexed, never copied.
    sub_q, t_token = q.take(rest), t.token[t_rows]
    t_total = None if rows_total is None else rows_total - (len(rows) - len(t_rows))
    qi, ti, blocking = candidate_pairs(sub_q, t, t_rows=t_rows, t_total=t_total, skip_values=skip_values)
    scores = model.score(compare(sub_q, t, qi, t_rows[ti]))
    # A person's weight is the best over their rows (one per year and identifier set).
    checkpoint()
    persons = distinct(t_token)
    n_p = max(len(persons), 1)
    key = qi * n_p + np.searchsorted(persons, t_token[ti])
    order = np.argsort(key, kind="stable")
    key, scores = key[order], scores[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, np.int64)
    best_score = np.maximum.reduceat(scores, starts) if len(starts) else np.zeros(0)
    person, why = _assign(key[starts] // n_p, persons[key[starts] % n_p] if len(starts) else key[starts],
                          best_score, len(rest), settings)
    linked = why == ""
    target[rest[linked]] = person[linked]
    method[rest[linked]] = "probabilistic"
    reason[rest[~linked]] = why[~linked]
    blocking["comparisons"] = int(len(qi))
    return CascadeResult(target, method, reason, blocking)
