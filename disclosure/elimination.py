"""Exact elimination in the style of Statistics Norway's GaussSuppression.

Candidates are taken in order of descending value (so small cells become the secondaries); a
candidate is hidden when publishing it would make a protected cell a linear combination of
published cells. The algebra is exact, over the integers modulo the prime 2**31 - 1 (a false
"independent" needs the prime to divide a minor of a 0/1 matrix; the integer bounds of
:mod:`disclosure.solver` would still catch it).
"""

from __future__ import annotations

import itertools

import numpy as np

from disclosure.tables import Table

__all__ = ["Span", "gauss", "nullspace"]

PRIME = 2_147_483_647  # 2**31 - 1: the product of two residues fits in int64


def nullspace(table: Table) -> np.ndarray:
    """Basis (n x d, mod p) of the solutions of the equations: row j is cell j in free variables.

    Cells in one equation only (a complement N - n, a remainder) are pivoted first: their
    equation defines them and eliminates nothing else, so the dense work is over the other
    equations only (any basis of the solutions serves: :class:`Span` asks about linear spans).
    Then margins, so the free variables are inner cells where possible.
    """
    n = table.values.size
    matrix = table.matrix()
    alone = np.diff(matrix.tocsc().indptr) == 1
    order = np.argsort(np.where(alone, 0, np.where(table.inner, 2, 1)), kind="stable")
    m = (np.rint(matrix.toarray()[:, order]).astype(np.int64)) % PRIME
    pivots, r = [], 0
    for col in range(n):
        if r == m.shape[0]:
            break
        nz = np.flatnonzero(m[r:, col])
        if nz.size == 0:
            continue
        k = r + nz[0]
        m[[r, k]] = m[[k, r]]
        m[r] = m[r] * pow(int(m[r, col]), -1, PRIME) % PRIME
        f = m[:, col].copy()
        f[r] = 0
        idx = np.flatnonzero(f)
        m[idx] = (m[idx] - np.outer(f[idx], m[r])) % PRIME
        pivots.append(col)
        r += 1
    free = np.setdiff1d(np.arange(n), pivots)
    basis = np.zeros((n, free.size), dtype=np.int64)
    basis[free, np.arange(free.size)] = 1
    basis[pivots] = (-m[: len(pivots)][:, free]) % PRIME
    out = np.empty_like(basis)
    out[order] = basis
    return out


class Span:
    """Residuals of cell vectors modulo the span of the published cells, exact mod p."""

    def __init__(self, basis: np.ndarray) -> None:
        self.r = basis.copy()
        self.live = np.ones(basis.shape[0], dtype=bool)

    def pivot(self, c: int) -> tuple[int, np.ndarray] | None:
        nz = np.flatnonzero(self.r[c])
        if nz.size == 0:
            return None
        k = int(nz[0])
        return k, self.r[c] * pow(int(self.r[c, k]), -1, PRIME) % PRIME

    def determines(self, piv: tuple[int, np.ndarray], rows: np.ndarray) -> bool:
        """Would publishing the pivot's cell make one of ``rows`` a combination of published cells?"""
        k, r = piv
        q = self.r[rows]
        hit = q[:, k] != 0
        return bool((~((q[hit] - np.outer(q[hit, k], r)) % PRIME).any(axis=1)).any())

    def publish(self, c: int, piv: tuple[int, np.ndarray] | None) -> None:
        self.live[c] = False
        if piv is not None:
            k, r = piv
            idx = np.flatnonzero((self.r[:, k] != 0) & self.live)
            self.r[idx] = (self.r[idx] - np.outer(self.r[idx, k], r)) % PRIME


def gauss(basis: np.ndarray, values: np.ndarray, protected: np.ndarray, candidate: np.ndarray,
          unknown: np.ndarray | None = None) -> np.ndarray:
    """GaussSuppression: publish cells by descending value unless one would expose a protected cell.

    Args:
        basis: :func:`nullspace` of the table.
        values: cell values or costs (candidates are taken in descending order).
        protected: cells that must not become a combination of published cells.
        candidate: cells that may be published or hidden (the others are decided already).
        unknown: cells never published whatever happens (implicit cells such as complements,
            cells hidden by an earlier release); by default none.

    Returns:
        The hidden cells: the protected and unknown ones and the candidates kept back.
    """
    unknown = np.zeros(values.size, dtype=bool) if unknown is None else unknown
    span, hidden = Span(basis), ~candidate & (protected | unknown)
    rows = np.flatnonzero(protected)
    forced = np.flatnonzero(~candidate & ~protected & ~unknown)  # zeros, earlier published: published
    ordered = np.flatnonzero(candidate)[np.argsort(-values[candidate], kind="stable")]
    for c in itertools.chain(forced, ordered):
        piv = span.pivot(c)
        if candidate[c] and piv is not None and rows.size and span.determines(piv, rows):
            hidden[c] = True
            continue
        span.publish(c, piv)
    return hidden
