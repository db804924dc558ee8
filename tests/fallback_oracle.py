"""The TTP fallback over a claims register held whole in memory (the tests' oracle).

The TTP step reads only the part of the register that can pair (:mod:`pseudonymisation.ttp_register`);
the tests check that it finds the same links as this plain version, which joins the identifiers in
memory and hands the whole register to the same :func:`pseudonymisation.ttp_fallback.run_fallback`.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pseudonymisation.comparison import Encoded, hits
from pseudonymisation.matching import FallbackSettings
from pseudonymisation.ttp_fallback import FallbackLinks, Register, plan_fallback, run_fallback


def link_fallback(ehr: Encoded, claims: Encoded, ehr_p1: pl.DataFrame, claims_p1: pl.DataFrame,
                  settings: FallbackSettings, *, seed: int = 0) -> FallbackLinks:
    """The fallback on a register held whole in memory: the oracle the TTP's streaming register
    (:mod:`pseudonymisation.ttp_register`, what the TTP step runs) must agree with.

    Args:
        ehr, claims: the suppliers' encodings.
        ehr_p1, claims_p1: each supplier's identifiers (``token``, ``p1``).
        settings: threshold and margin from the TTP's configuration.
        seed: of the split of the labelled records and of the random pairs.
    """
    by_p1 = ehr_p1.select("token", "p1").with_row_index("epos").join(
        claims_p1.select(pl.col("token").alias("claims_token"), "p1").with_row_index("cpos"), on="p1", how="inner")
    query_rows = np.flatnonzero(~hits(ehr.token, ehr_p1["token"].to_numpy()))
    # In the claims identifiers' row order (Plan): as pseudonymisation.ttp_register reads them.
    labelled = (pl.DataFrame({"token": ehr.token}).with_row_index("row").join(by_p1, on="token", how="inner")
                .sort("cpos", "epos", "row").select("row", "token", "claims_token"))
    # Hash probes (polars is_in), not np.isin: that sorts the register's tokens for each lookup.
    candidates = ~hits(claims.token, by_p1["claims_token"].to_numpy())
    register = Register(claims, candidates, int(candidates.sum()))
    return run_fallback(ehr, register, plan_fallback(ehr, labelled, query_rows, seed=seed), settings)
