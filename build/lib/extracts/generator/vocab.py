"""Code vocabularies of the generator.

Events carry small integer codes (an index into a vocabulary) rather than Python strings, so that
tens of millions of rows are drawn and written without per-row Python objects; strings are made
once per column by a gather in polars.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from extracts.codelists import ConditionCatalogue

__all__ = [
    "CARE_TYPES", "CLAIMS_NOISE", "CONTACT_TYPES", "ICPC_NOISE", "PROVIDERS", "SECTORS",
    "claims_vocabulary", "decode", "icpc_vocabulary",
]

PROVIDERS = np.array(["HA", "POH-S", "POH-GGZ", "OTHER"])
CONTACT_TYPES = np.array(["consult", "telefonisch", "visite", "email", "vaccinatie", "overig", "groepsconsult"])
SECTORS = np.array(["MSZ", "FT", "OT", "HT", "DT", "ET", "GGZ_B", "GGZ_S", "WV", "ELV", "SEH"])
CARE_TYPES = np.array(["poli", "opname", "overig"])
# Common ICPC codes of problems that belong to none of the study's conditions.
ICPC_NOISE = tuple(
    "A03 A04 A97 D01 D06 D12 D73 F70 F92 H71 H81 K86 K87 K95 L04 L08 L15 L17 L81 L87 L92 L99 "
    "N01 N17 N89 P01 P06 R05 R07 R74 R75 R78 R80 S03 S06 S18 S74 S87 S88 T82 T93 U71 W11 X37 "
    "Y85 Z29".split()
)
# Claims codes of care unrelated to the study's conditions (illustrative).
CLAIMS_NOISE = {
    "MSZ": ("0301:11", "0302:31", "0303:61", "0305:1001", "0306:501", "0307:M21", "0310:31",
            "0313:501", "0316:101", "0318:601", "0320:101", "0322:301", "0330:901"),
    "FT": ("3420", "4120", "4520", "6540", "7120", "7520", "8720"),
    "OT": ("3420", "4120", "7120"),
    "DT": ("OV01", "OV02", "GI01"),
    "GGZ_B": ("06", "07", "10", "23"),
    "GGZ_S": ("01", "06", "07", "10", "15", "23"),
    "SEH": ("S52.5", "S82.6", "R07.4", "I21.9", "J18.9", "K35.8", "T14.0", "S06.0", "R10.4",
            "N39.0", "S61.0", "S93.4", "J44.1", "R55", "I48.9", "S72.0", "T78.4", "G40.9"),
}


def icpc_vocabulary(catalogue: ConditionCatalogue) -> np.ndarray:
    codes = [c for cond in catalogue.conditions for c in cond.icpc]
    with_sub = [f"{c}{suffix}" for c in codes for suffix in ("", ".01", ".02")]
    noise = [c for c in ICPC_NOISE if c not in set(codes)]
    return np.array(list(dict.fromkeys(with_sub + noise)))


def claims_code(code) -> str:  # type: ignore[no-untyped-def]
    return f"{code.specialism}:{code.code}" if code.specialism else code.code


def claims_vocabulary(catalogue: ConditionCatalogue) -> np.ndarray:
    coded = [claims_code(c) for cond in catalogue.conditions for c in cond.claims]
    noise = [c for codes in CLAIMS_NOISE.values() for c in codes]
    return np.array(list(dict.fromkeys(coded + noise)))


def decode(vocab: np.ndarray, index: np.ndarray) -> pl.Series:
    """Strings of vocabulary indices; -1 is null."""
    idx = pl.Series(index.astype(np.int64))
    idx = pl.select(pl.when(idx < 0).then(None).otherwise(idx)).to_series()
    return pl.Series(vocab.astype(str)).gather(idx)
