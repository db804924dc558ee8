"""Small, valid supplier extracts for tests, and a writer to Parquet or CSV.

Rows are given positionally in the contract's column order (``extracts/contract.py``), so the
column names live only in the contract. Every table has a few rows; the extracts pass
:func:`extracts.validation.validate_extract` with nothing quarantined. The builders give v1
extracts (without the optional contract v2 identifier columns); :func:`with_identifiers` adds them.

Import from a test with ``from extract_builders import ...`` (pytest puts ``tests/`` on
``sys.path``: ``pythonpath`` in pyproject.toml).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import polars as pl

from extracts.contract import CLAIMS, EHR, Supplier

__all__ = [
    "PLANTED_BSNS",
    "claims_extract",
    "ehr_extract",
    "set_value",
    "with_identifiers",
    "write_extract",
]

D = dt.date
PLANTED_BSNS = ("111222333", "123456782", "999999990")
"""Valid BSNs used by both extracts (each passes the 11-test)."""


def _frames(supplier: Supplier, rows: dict[str, list[tuple[Any, ...]]]) -> dict[str, pl.DataFrame]:
    """v1 frames: the required columns only (optional v2 columns are absent, as in a v1 file)."""
    return {
        t.name: pl.DataFrame(
            rows[t.name], schema={c.name: c.dtype for c in t.required_columns}, orient="row"
        )
        for t in supplier.tables
    }


# Contract v2 identifiers of the three planted persons (one household: persons 1 and 3).
_IDENTIFIERS = {
    "postcode6": ("1011AB", "3511CD", "1011AB"),
    "house_number": ("12", "7-2", "12"),
    "insurer": ("3311", "0101", "3311"),
    "insurance_number": ("123456789", "004455667", "223344556"),
    "family_name": ("van der Berg", "de Vries", "van der Berg"),
    "initials": ("JP", "M", "A"),
    "given_name": ("Jan Pieter", "Marieke", "Anne-Sophie"),
    "street": ("Dorpsstraat", "1e Jan Steenstraat", "Dorpsstraat"),
    "city": ("Utrecht", "'s-Hertogenbosch", "Utrecht"),
}


def with_identifiers(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """The extract with the contract v2 identifier columns filled for the planted persons.

    ``patients`` rows are persons 1, 2, 3; ``insured`` rows are persons 1, 1, 2, 2, 3, 3 (one per
    year). The insured's identifiers omit ``insurer``: that table's v1 column holds it.
    """
    out = dict(tables)
    if "patients" in out:
        out["patients"] = out["patients"].with_columns(
            pl.Series(name, values, dtype=pl.String) for name, values in _IDENTIFIERS.items()
        )
    if "insured" in out:
        per_row = out["insured"].with_row_index("__i")["__i"].to_numpy() // 2
        out["insured"] = out["insured"].with_columns(
            pl.Series(name, [values[i] for i in per_row], dtype=pl.String)
            for name, values in _IDENTIFIERS.items()
            if name != "insurer"
        )
    return out


def ehr_extract() -> dict[str, pl.DataFrame]:
    """A valid EHR extract: 3 patients at 2 practices, with a few rows in every table."""
    b1, b2, b3 = PLANTED_BSNS
    return _frames(
        EHR,
        {
            "patients": [
                ("P001", b1, D(1950, 3, 1), "F", None, "1011"),
                ("P002", b2, D(1980, 7, 15), "M", D(2021, 5, 2), "3511"),
                ("P003", b3, D(2001, 12, 31), "X", None, "9711"),
            ],
            "registrations": [
                ("P001", "PR01", D(2015, 1, 1), None),
                ("P002", "PR01", D(2010, 1, 1), D(2014, 12, 31)),
                ("P002", "PR01", D(2015, 1, 1), D(2021, 5, 2)),
                ("P003", "PR02", D(2005, 6, 1), None),
            ],
            "practices": [("PR01", "R01"), ("PR02", "R14")],
            "practice_years": [
                ("PR01", 2020, True),
                ("PR01", 2021, True),
                ("PR02", 2020, False),
                ("PR02", 2021, False),
            ],
            "episodes": [
                ("P001", "T90", D(2012, 4, 1), None),
                ("P002", "K86.01", D(2016, 1, 10), None),
                ("P003", "R96", D(2019, 2, 2), D(2019, 3, 1)),
            ],
            "contacts": [
                ("P001", "PR01", D(2020, 2, 3), "HA", "consult", "T90"),
                ("P001", "PR01", D(2020, 5, 6), "POH-S", "telefonisch", None),
                ("P002", "PR01", D(2020, 9, 9), "POH-GGZ", "consult", "P76"),
                ("P003", "PR02", D(2021, 1, 4), "HA", "visite", "R96"),
            ],
            "referrals": [
                ("P001", "PR01", D(2020, 3, 1), "0313", "T90"),
                ("P002", "PR01", D(2020, 10, 1), "GGZ", "P76"),
            ],
            "ooh_contacts": [
                ("P002", D(2020, 12, 25), "telefonisch", "R74"),
                ("P003", D(2021, 2, 14), "consult", None),
            ],
        },
    )


def claims_extract() -> dict[str, pl.DataFrame]:
    """A valid claims extract: the same 3 persons insured in 2020 and 2021, a few claims."""
    b1, b2, b3 = PLANTED_BSNS
    insured = [
        (b, year, ins, birth, sex, death, False)
        for b, ins, birth, sex, death in (
            (b1, "3311", D(1950, 3, 1), "F", None),
            (b2, "0101", D(1980, 7, 15), "M", D(2021, 5, 2)),
            (b3, "3311", D(2001, 12, 31), "X", None),
        )
        for year in (2020, 2021)
    ]
    return _frames(
        CLAIMS,
        {
            "insured": insured,
            "claims": [
                # a claim and its credit (correction) line
                ("C0001", b1, "3311", D(2020, 4, 1), "MSZ", "poli", "0313", "401", Decimal(125)),
                ("C0002", b1, "3311", D(2020, 4, 1), "MSZ", "poli", "0313", "401", Decimal(-125)),
                ("C0003", b2, "0101", D(2020, 6, 7), "FT", None, None, "1801", Decimal("32.00")),
                ("C0004", b3, "3311", D(2021, 1, 20), "GGZ_B", None, None, "04", Decimal("410.10")),
                ("C0005", b2, "0101", D(2020, 8, 8), "SEH", None, None, "S52", Decimal("250.00")),
            ],
            "insurer_years": [
                ("3311", 2020, True),
                ("3311", 2021, True),
                ("0101", 2020, True),
                ("0101", 2021, False),
            ],
        },
    )


def set_value(df: pl.DataFrame, row: int, column: str, value: Any) -> pl.DataFrame:
    """``df`` with one cell replaced; a string into a non-string column makes it a string column.

    Use the string form to plant values a typed column cannot hold (``"not a date"``), then write
    the extract as CSV.
    """
    if isinstance(value, str) and df.schema[column] != pl.String:
        df = df.with_columns(pl.col(column).cast(pl.String))
    values = df[column].to_list()
    values[row] = value
    return df.with_columns(pl.Series(column, values, dtype=df.schema[column]))


def write_extract(
    folder: Path,
    tables: dict[str, pl.DataFrame],
    *,
    fmt: Literal["parquet", "csv"] = "parquet",
) -> Path:
    """Write each table as ``<folder>/<table>.<fmt>`` (folder created) and return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        if fmt == "csv":
            df.write_csv(folder / f"{name}.csv")
        else:
            df.write_parquet(folder / f"{name}.parquet")
    return folder
