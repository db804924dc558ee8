"""Data contract v2: the supplier extracts the engine reads (``shared/spec/data-contract.md``).

The schemas here are the single source of truth for table and column names, types, nullability,
unique keys and code domains. The reader, the validator, the generator and every later stage
import them from here; nothing else spells a column name of a raw extract.

Contract v2 (``docs/data-contract.md``) adds *optional* columns to the EHR ``patients`` and the
claims ``insured`` tables: supplier-side identifiers for linking records without a usable BSN
(postcode6, house_number, insurer, insurance_number, family_name, initials, given_name, street,
city). An optional column
may be absent from the file (a v1 extract): the reader then gives it as nulls. Every one of them
is *identifying*: like the BSN it never leaves the supplier's step in the clear
(:data:`IDENTIFYING_COLUMNS`; ``pseudonymisation/supplier.py`` leaves them out of the content files).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

__all__ = [
    "CARE_TYPES",
    "CLAIMS",
    "CONTACT_TYPES",
    "EHR",
    "IDENTIFYING_COLUMNS",
    "OOH_CONTACT_TYPES",
    "PROVIDERS",
    "SECTORS",
    "SEXES",
    "SUPPLIERS",
    "Column",
    "Supplier",
    "Table",
]


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a contract table."""

    name: str
    dtype: pl.DataType
    nullable: bool = False
    meaning: str = ""
    optional: bool = False  # contract v2: the file may lack the column (read as nulls)
    identifying: bool = False  # never leaves the supplier's step in the clear (like the BSN)


@dataclass(frozen=True, slots=True)
class Table:
    """One table of a supplier extract, with the key whose values must be unique."""

    name: str
    columns: tuple[Column, ...]
    unique_key: tuple[str, ...] = ()

    @property
    def schema(self) -> dict[str, pl.DataType]:
        """The polars schema of the table, in contract column order."""
        return {c.name: c.dtype for c in self.columns}

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required_columns(self) -> tuple[Column, ...]:
        """The columns every delivery has (the v1 contract); optional ones left out."""
        return tuple(c for c in self.columns if not c.optional)

    @property
    def identifying_columns(self) -> tuple[str, ...]:
        """Names of the identifier columns that stay at the supplier (see the module docstring)."""
        return tuple(c.name for c in self.columns if c.identifying)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        msg = f"table {self.name!r} has no column {name!r}"
        raise KeyError(msg)


@dataclass(frozen=True, slots=True)
class Supplier:
    """A supplier's extract: a folder holding one file per table."""

    name: str
    tables: tuple[Table, ...]

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        msg = f"supplier {self.name!r} has no table {name!r}"
        raise KeyError(msg)

    @property
    def table_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tables)


STR = pl.String()
DATE = pl.Date()
BOOL = pl.Boolean()
YEAR = pl.Int32()
MONEY = pl.Decimal(12, 2)

# Code domains, after normalisation (method.md section 9.8: provider and sector upper-case,
# contact and care type lower-case).
SEXES = frozenset({"M", "F", "X"})
PROVIDERS = frozenset({"HA", "POH-GGZ", "POH-S", "OTHER"})
CONTACT_TYPES = frozenset(
    {"consult", "visite", "telefonisch", "email", "vaccinatie", "groepsconsult", "overig"}
)
OOH_CONTACT_TYPES = frozenset({"consult", "visite", "telefonisch"})
SECTORS = frozenset(
    {"MSZ", "GGZ_B", "GGZ_S", "FT", "OT", "HT", "DT", "ET", "WV", "ELV", "SEH"}
)
CARE_TYPES = frozenset({"poli", "opname", "overig"})


def _identifiers(*, with_insurer: bool) -> tuple[Column, ...]:
    """The optional identifier columns of contract v2 (formats: ``extracts/identifiers.py``)."""
    insurer = (
        (Column("insurer", STR, nullable=True, meaning="4-digit UZOVI code", optional=True,
                identifying=True),)
        if with_insurer
        else ()
    )
    return (
        Column("postcode6", STR, nullable=True, meaning="PC6: 4 digits + 2 letters, 1234AB",
               optional=True, identifying=True),
        Column("house_number", STR, nullable=True, meaning="number with addition: 12, 12-A",
               optional=True, identifying=True),
        *insurer,
        Column("insurance_number", STR, nullable=True, meaning="verzekerdennummer: 4-15 digits",
               optional=True, identifying=True),
        Column("family_name", STR, nullable=True, meaning="with prefix: van der Berg",
               optional=True, identifying=True),
        Column("initials", STR, nullable=True, meaning="letters without dots: JP",
               optional=True, identifying=True),
        Column("given_name", STR, nullable=True, meaning="given name(s): Jan Pieter",
               optional=True, identifying=True),
        Column("street", STR, nullable=True, meaning="street name, without the number: Dorpsstraat",
               optional=True, identifying=True),
        Column("city", STR, nullable=True, meaning="place of residence (woonplaats): Utrecht",
               optional=True, identifying=True),
    )


EHR = Supplier(
    "ehr",
    (
        Table(
            "patients",
            (
                Column("patient_id", STR, meaning="unique per extract"),
                Column("bsn", STR, nullable=True, meaning="citizen service number"),
                Column("birth_date", DATE, nullable=True),
                Column("sex", STR, nullable=True, meaning="M, F, X"),
                Column("death_date", DATE, nullable=True),
                Column("postcode4", STR, nullable=True),
                *_identifiers(with_insurer=True),
            ),
            unique_key=("patient_id",),
        ),
        Table(
            "registrations",
            (
                Column("patient_id", STR),
                Column("practice_id", STR),
                Column("start_date", DATE),
                Column("end_date", DATE, nullable=True),
            ),
        ),
        Table(
            "practices",
            (Column("practice_id", STR), Column("region", STR)),
            unique_key=("practice_id",),
        ),
        Table(
            "practice_years",
            (
                Column("practice_id", STR),
                Column("year", YEAR),
                Column("referrals_delivered", BOOL),
            ),
            unique_key=("practice_id", "year"),
        ),
        Table(
            "episodes",
            (
                Column("patient_id", STR),
                Column("icpc", STR),
                Column("start_date", DATE),
                Column("end_date", DATE, nullable=True),
            ),
        ),
        Table(
            "contacts",
            (
                Column("patient_id", STR),
                Column("practice_id", STR),
                Column("contact_date", DATE),
                Column("provider", STR),
                Column("contact_type", STR),
                Column("icpc", STR, nullable=True),
            ),
        ),
        Table(
            "referrals",
            (
                Column("patient_id", STR),
                Column("practice_id", STR),
                Column("referral_date", DATE),
                Column("specialism", STR),
                Column("icpc", STR, nullable=True),
            ),
        ),
        Table(
            "ooh_contacts",
            (
                Column("patient_id", STR),
                Column("contact_date", DATE),
                Column("contact_type", STR),
                Column("icpc", STR, nullable=True),
            ),
        ),
    ),
)

CLAIMS = Supplier(
    "claims",
    (
        Table(
            "insured",
            (
                Column("bsn", STR, nullable=True),
                Column("year", YEAR),
                Column("insurer", STR, meaning="4-digit UZOVI code"),
                Column("birth_date", DATE, nullable=True),
                Column("sex", STR, nullable=True),
                Column("death_date", DATE, nullable=True),
                Column("wlz_institution", BOOL),
                # The insured's v1 column `insurer` names the insurer of the insurance number.
                *_identifiers(with_insurer=False),
            ),
            # "one row per insured person and calendar year": over normalised BSNs, rows
            # without a BSN excluded (extracts/validation.py, rule duplicate_key).
            unique_key=("bsn", "year"),
        ),
        Table(
            "claims",
            (
                Column("claim_id", STR),
                Column("bsn", STR, nullable=True),
                Column("insurer", STR),
                Column("service_date", DATE),
                Column("sector", STR),
                Column("care_type", STR, nullable=True),
                Column("specialism", STR, nullable=True),
                Column("diagnosis_code", STR, nullable=True),
                Column("cost_eur", MONEY),
            ),
            unique_key=("claim_id",),
        ),
        Table(
            "insurer_years",
            (Column("insurer", STR), Column("year", YEAR), Column("complete", BOOL)),
            unique_key=("insurer", "year"),
        ),
    ),
)

SUPPLIERS: dict[str, Supplier] = {s.name: s for s in (EHR, CLAIMS)}

IDENTIFYING_COLUMNS: dict[tuple[str, str], tuple[str, ...]] = {
    (s.name, t.name): t.identifying_columns
    for s in SUPPLIERS.values()
    for t in s.tables
    if t.identifying_columns
}
"""(supplier, table) -> the identifier columns that never reach a content file."""
