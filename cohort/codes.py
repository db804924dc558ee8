"""Ad-hoc code lists of study schema 2: ICPC base codes and claims codes per sector.

``{icpc: [T90], claims: {MSZ: ["0313:221"], DT: ["D01"]}}`` -- checked before any data is read:
at least one code, valid ICPC base codes, known claims sectors, MSZ codes as ``specialism:diagnosis``
pairs with a 4-digit specialism. Codes are normalised as the data are (method.md 9.8).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cohort.checks import fail, known_keys

__all__ = ["CLAIMS_SECTORS", "CodeList", "parse_codes"]

# Sectors of the claims extract (shared/spec/data-contract.md); all carry claimed costs.
CLAIMS_SECTORS = ("MSZ", "GGZ_B", "GGZ_S", "FT", "OT", "HT", "DT", "ET", "WV", "ELV", "SEH")
_ICPC_BASE = re.compile(r"^[ABDFHKLNPRSTUWXYZ]\d{2}$")


@dataclass(frozen=True, slots=True)
class CodeList:
    """ICPC base codes and (sector, code) claims pairs; an MSZ code is ``specialism:diagnosis``."""

    icpc: tuple[str, ...] = ()
    claims: tuple[tuple[str, str], ...] = ()


def parse_codes(raw: Any, key: str) -> CodeList:
    """A checked :class:`CodeList` (``key``: where it stands, for the message)."""
    if not isinstance(raw, Mapping):
        fail(key, "missing or not a mapping", "{icpc: [...], claims: {SECTOR: [...]}} with at least one code")
    known_keys(raw, ("icpc", "claims"), key)
    icpc_raw = raw.get("icpc") or []
    claims_raw = raw.get("claims") or {}
    if not isinstance(icpc_raw, (list, tuple)) or not isinstance(claims_raw, Mapping):
        fail(key, "not a code list", "icpc: a list of codes; claims: a mapping of sector to a list of codes")
    icpc = tuple(str(c).replace(" ", "").replace(".", "").upper() for c in icpc_raw)
    bad = [c for c in icpc if not _ICPC_BASE.match(c)]
    if bad:
        fail(f"{key}.icpc", f"{len(bad)} code(s) not an ICPC base code", "a letter and 2 digits, e.g. T90")
    claims: list[tuple[str, str]] = []
    for sector, codes in claims_raw.items():
        k = f"{key}.claims.{sector}"
        if sector not in CLAIMS_SECTORS:
            fail(k, f"unknown claims sector {sector!r}", f"one of {list(CLAIMS_SECTORS)}")
        if not isinstance(codes, (list, tuple)) or not codes:
            fail(k, "an empty code list", "a non-empty list of codes (or leave the sector out)")
        for code in codes:
            code = str(code).strip().upper()
            if sector == "MSZ":
                specialism, sep, diagnosis = code.partition(":")
                if not sep or not re.fullmatch(r"\d{4}", specialism) or not diagnosis:
                    fail(k, "not a DBC pair", "'specialism:diagnosis' pairs with a 4-digit specialism")
            elif not code:
                fail(k, "an empty code", "non-empty codes")
            claims.append((str(sector), code))
    if not icpc and not claims:
        fail(key, "an empty code list", "at least one ICPC or claims code")
    return CodeList(tuple(dict.fromkeys(icpc)), tuple(dict.fromkeys(claims)))
