"""Who is counted: the persons behind every person count of a study (issue 11, item 3).

A release ledger that matches the quantities of two releases by *name* misses two cells that
count almost the same persons under different names (``diabetes`` and ``diabetes_95``: the
difference is a handful of persons aged 95+). So the study keeps, beside its tables, the set of
persons behind each count cell, and the release stage relates the cells of a new release to the
cells of every earlier one by these sets (``release.overlaps``), whatever their names.

**Person numbers.** A member is a *person number* of the linked layout (``p2`` of
``linkage.link``: an integer, the rank of a pseudonym, never the pseudonym). A base-population
record that is not linked (exclusion X1: no person number, or one shared by several records)
is numbered ``-(1 + the rank of its patient_id among all records of ehr/patients.parquet)``:
negative, so it never equals a person number, and the same in every study over the same data.

**Interface** (for whatever computes the tables; :mod:`cohort.study` today)::

    members = Members(strata)
    members.add("prevalence", "numerator", frame)   # frame: the count's key columns + "person"
    members.frames()   # table -> the members frame

``add`` takes a *person-level* frame holding the key columns the count depends on (for
``prevalence.denominator``: ``year`` and the strata; for ``prevalence.numerator``: ``year``,
``condition`` and the strata) and a ``person`` column (Int64), one row per person counted in the
cell of those keys (duplicates are dropped). The *members frame* of a table has the table's key
columns (:data:`KEYS`, strata after ``condition``/``discipline``; a key column the count does
not depend on is null), ``column`` (the count column: ``numerator``, ``n``, ...) and
``person``, sorted within each count added (the file is the same for every run). Strata
``Total`` rows are not written: the release unites the levels (and the bands of
``contact_bands`` into its ``Total`` band). ``costs.persons`` holds the persons with a cost > 0 in
the cell (:func:`cohort.costs.cost_cells`).
:func:`attrition` builds the attrition chain's members from a base population.

**Where it lives.** ``<study>/persons/<table>.parquet``, owner-only (0700/0600), named in the
study manifest as person-level and never releasable; the release stage never copies it into a
release (only the steward's ledger record keeps the sets, ``docs/release-format.md``, "Ledger").
Event counts (contacts, admissions) have no person sets: they are protected through their
persons (``release.overlaps``), whose sets, top-list groups and ACSC persons included, are related
across releases.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from cohort.population import RULES, Linked

__all__ = ["FOLDER", "KEYS", "Members", "StudyTables", "attrition", "by_number", "fallback_links", "person_numbers",
           "write_members"]

FOLDER = "persons"
ROW_GROUP_ROWS = 100_000
ORDER = "__order"  # a distinct part's row order (Members.add), dropped from the frames
# Key columns of each table's members frame (strata are inserted where "*" stands).
KEYS: dict[str, tuple[str, ...]] = {
    "prevalence": ("year", "condition", "*"),
    "incidence": ("year", "condition", "*"),
    "index_cohort": ("year", "condition", "*"),
    "care_use": ("year", "condition", "discipline", "*"),
    "referrals": ("year", "condition"),
    "attrition": ("year", "condition", "step"),
    "top": ("year", "discipline", "group"),
    "acsc": ("year",),
    "contact_bands": ("year", "condition", "discipline", "*", "band"),  # strata: null (no strata; Total)
    "costs": ("year", "condition", "sector", "*"),
    "fallback_links": ("year",),
}
# The person-count columns of each table (events columns have no members).
COLUMNS: dict[str, tuple[str, ...]] = {
    "prevalence": ("numerator", "denominator"), "incidence": ("numerator", "denominator"),
    "index_cohort": ("numerator", "denominator"), "care_use": ("n", "N"), "referrals": ("n", "N"),
    "attrition": ("before", "excluded", "after"), "top": ("persons",), "acsc": ("persons",),
    "contact_bands": ("persons",), "costs": ("persons",), "fallback_links": ("persons",),
}


def keys_of(table: str, strata: tuple[str, ...] | list[str]) -> list[str]:
    """The key columns of a table's members frame, strata in place of ``*``."""
    out: list[str] = []
    for k in KEYS[table]:
        out += list(strata) if k == "*" else [k]
    return out


class StudyTables(dict):
    """The study's tables (name -> frame), carrying their :class:`Members` as ``.members``.

    A plain ``dict`` to every caller; :func:`cohort.output.write_study` writes the members too.
    """

    members: Members | None = None


class Members:
    """The members frames of a study's tables, collected count by count."""

    def __init__(self, strata: tuple[str, ...] | list[str]) -> None:
        self.strata = tuple(strata)
        # A part is a frame in memory, or a scan of a file that a partitioned run united on disk
        # (cohort.unite): the persons of a large study are never all in memory at once.
        self._parts: dict[str, list[pl.DataFrame | pl.LazyFrame]] = {t: [] for t in KEYS}
        self.keep: object = None  # what keeps the united files (a temporary folder), if anything

    def add(self, table: str, column: str, frame: pl.DataFrame, *, distinct: bool = False,
            order: str | None = None) -> None:
        """Add the persons of ``table.column``: ``frame`` holds key columns and ``person``.

        ``distinct``: the caller knows each (keys, person) comes once and gives the rows sorted by
        its column ``order`` (an integer) then ``person`` (no deduplication, no sorting); otherwise
        rows are deduplicated and sorted by the keys and ``person``. Either order is one a
        partitioned run restores when it unites the partitions' parts (:meth:`merged`).
        """
        if column not in COLUMNS.get(table, ()):
            msg = f"members: {table}.{column} is not a person count of the study"
            raise ValueError(msg)
        if distinct and order is None:
            msg = f"members: {table}.{column}: a distinct part names the column of its order"
            raise ValueError(msg)
        keys = keys_of(table, self.strata)
        types = {k: (pl.Int64 if k == "year" else pl.String) for k in keys}
        rows = frame.select(
            *[(pl.col(k) if k in frame.columns else pl.lit(None)).cast(t).alias(k) for k, t in types.items()],
            pl.lit(column).alias("column"), pl.col("person").cast(pl.Int64),
            *([pl.col(order).cast(pl.Int64).alias(ORDER)] if distinct else []))
        if not distinct:
            # Deduplicated and sorted by the keys, then person: the persons of each cell sorted
            # within the cell, and the (few) cells sorted; about 8x faster than sorting every row
            # by all the keys (5 M rows: 0.6 s instead of 4.5 s).
            rows = (rows.group_by([*keys, "column"]).agg(pl.col("person").unique().sort(nulls_last=True))
                    .sort(keys, nulls_last=True).explode("person"))
        self._parts[table].append(rows)

    def add_chain(self, table: str, column: str, rows: pl.LazyFrame) -> None:
        """Add a distinct part already in the members' form (key columns, ``column``, ``person``,
        the order column), computed lazily when the members are collected or written
        (:func:`attrition`)."""
        if column not in COLUMNS.get(table, ()):
            msg = f"members: {table}.{column} is not a person count of the study"
            raise ValueError(msg)
        expected = [*keys_of(table, self.strata), "column", "person", ORDER]
        if rows.collect_schema().names() != expected:
            msg = f"members: a part of {table}.{column} has columns other than {expected}"
            raise ValueError(msg)
        self._parts[table].append(rows)

    def drop(self, table: str) -> None:
        """Forget the persons of ``table``: its counts are computed again (``cohort.prevalence_windows``)."""
        self._parts[table] = []

    def parts(self) -> dict[str, list[pl.DataFrame]]:
        """Table -> its parts in the order added (a distinct part keeps its order column)."""
        return {table: [p.collect() if isinstance(p, pl.LazyFrame) else p for p in parts]
                for table, parts in self._parts.items()}

    def lazy_parts(self) -> dict[str, list[pl.LazyFrame]]:
        """Table -> its parts in the order added, lazily (a distinct part keeps its order column):
        what a partition writes by one streaming pass (``cohort.partitioned``)."""
        return {table: [p.lazy() for p in parts] for table, parts in self._parts.items()}

    @classmethod
    def merged(cls, strata: tuple[str, ...] | list[str], partitions: list[dict[str, list[pl.DataFrame]]]) -> Members:
        """The members of a study run as partitions: part i of a table unites part i of every partition.

        Every partition adds the same parts in the same order (the study's code path depends on its
        settings, not its data); a person is in one partition only, so uniting the parts and
        restoring their order gives the frames of the unpartitioned run row for row.
        """
        out = cls(strata)
        for table in out._parts:
            counts = {len(p.get(table, [])) for p in partitions}
            if len(counts) > 1:
                msg = f"members: the partitions added different numbers of {table} parts"
                raise ValueError(msg)
            for i in range(counts.pop() if counts else 0):
                out.unite(table, pl.concat([p[table][i] for p in partitions]))
        return out

    def unite(self, table: str, rows: pl.DataFrame) -> None:
        """Add the next part of ``table``: the partitions' rows of that part, concatenated, put in the
        order :meth:`add` gives a part of an unpartitioned run (the caller's order or the keys')."""
        if ORDER in rows.columns:
            self._parts[table].append(rows.sort(ORDER, "person"))
        else:
            self._parts[table].append(rows.sort([*keys_of(table, self.strata), "person"], nulls_last=True))

    def unite_file(self, table: str, paths: list[Path]) -> None:
        """Add the next part of ``table``: files whose rows, in turn, are in the order :meth:`unite`
        gives (``cohort.unite``)."""
        self._parts[table].append(pl.scan_parquet(paths))

    def restrict(self, table: str, cells: pl.DataFrame) -> None:
        """Keep only the members of ``table`` in ``cells`` (a frame of key columns), in their order."""
        on = list(cells.columns)
        self._parts[table] = [part.join(cells.lazy() if isinstance(part, pl.LazyFrame) else cells, on=on, how="semi",
                                        maintain_order="left")
                              for part in self._parts[table]]

    def lazy_frames(self) -> dict[str, pl.LazyFrame]:
        """Table -> members frame (key columns, ``column``, ``person``), in the order added, lazily."""
        out = {}
        for table, parts in self._parts.items():
            keys = keys_of(table, self.strata)
            schema = {**{k: (pl.Int64 if k == "year" else pl.String) for k in keys},
                      "column": pl.String, "person": pl.Int64}
            out[table] = (pl.concat([p.lazy().drop(ORDER, strict=False) for p in parts]) if parts
                          else pl.LazyFrame(schema=schema))
        return out

    def frames(self) -> dict[str, pl.DataFrame]:
        """Table -> members frame (key columns, ``column``, ``person``), in the order added."""
        return {table: frame.collect() for table, frame in self.lazy_frames().items()}


def by_number(linked_root: Path, frame: pl.DataFrame, column: str = "p2") -> pl.DataFrame:
    """``frame`` with a ``person`` column: the person number in ``column`` (null where it is null).

    The linked layout keeps person numbers (Int64). A layout that keeps the labelled pseudonyms
    instead (hand-made test layouts) is numbered as ``linkage.link`` numbers them: the rank of the
    label among all labels of the layout, so that no pseudonym is ever written here.
    """
    if frame.schema[column].is_integer():
        return frame.with_columns(pl.col(column).cast(pl.Int64).alias("person"))
    root = Path(linked_root)
    labels = pl.concat([pl.scan_parquet(root / "ehr" / "patients.parquet").select(pl.col("p2").cast(pl.String)),
                        pl.scan_parquet(root / "claims" / "insured.parquet").select(pl.col("p2").cast(pl.String)),
                        pl.scan_parquet(root / "claims" / "claims.parquet").select(pl.col("p2").cast(pl.String))])
    numbers = (labels.drop_nulls().unique().sort("p2").with_row_index("person").collect()
               .select(pl.col("p2").alias(column), pl.col("person").cast(pl.Int64)))
    return frame.join(numbers, on=column, how="left")


def person_numbers(linked: Path | Linked, base: pl.DataFrame) -> pl.DataFrame:
    """``base`` with a ``person`` column: its person number, or ``-(1 + rank)`` of an unlinked record.

    ``linked``: the linked folder or a view of it (a partition, ``cohort.partitioned``)."""
    linked = linked if isinstance(linked, Linked) else Linked(Path(linked))
    # The rank of the record's id among all patient records: the same for every run of the linkage
    # on the same extracts (the rows of the linked files may come in another order).
    rows = linked.record_rows().join(base.lazy().select("patient_id").unique(), on="patient_id", how="semi").collect()
    return by_number(linked.root, base).join(rows, on="patient_id", how="left").with_columns(
        pl.coalesce(pl.col("person"), -1 - pl.col("row").cast(pl.Int64)).alias("person")).drop("row")


def attrition(members: Members, year: int, groups: list[tuple[str, pl.DataFrame]],
              rules: tuple[str, ...] = RULES) -> None:
    """Add the attrition chain's members: per group (``all`` or a condition) a frame of the
    group's base records with ``person`` and ``excluded_by`` (method.md 9.15).

    A record is in ``before`` of every step up to the one that excludes it: the chain of a large
    base population has about (steps x records) rows per group. Only each record's excluding step
    is kept, sorted by person; the chain is expanded lazily, step after step, when the members are
    written (in the order of :meth:`Members.add`'s distinct parts: step, then person).
    """
    names = ("base", *rules)
    order = {rule: i + 1 for i, rule in enumerate(rules)}
    for condition, frame in groups:
        # The step that excludes the record (len(rules) + 1: none); before step k: rule >= k.
        rule = frame.select(pl.col("person").cast(pl.Int64), pl.col("excluded_by").replace_strict(
            order, default=len(rules) + 1, return_dtype=pl.Int32).alias("r")).sort("person", "r").lazy()
        r = pl.col("r")
        # One row per base record, and one person number per record: distinct already.
        for column, keep in (("before", lambda k: (r >= k) if k else pl.lit(True)),
                             ("excluded", lambda k: (r == k) if k else pl.lit(False)),
                             ("after", lambda k: r > k)):
            members.add_chain("attrition", column, pl.concat([
                rule.filter(keep(k)).select(pl.lit(year, pl.Int64).alias("year"), pl.lit(condition).alias("condition"),
                                            pl.lit(step).alias("step"), pl.lit(column).alias("column"), "person",
                                            pl.lit(k, pl.Int64).alias(ORDER))
                for k, step in enumerate(names)]))


def fallback_links(members: Members, year: int, population: pl.DataFrame) -> pl.DataFrame:
    """``fallback_links`` of a year: the persons of the study population (``population``: after the
    criteria, the cohort table's denominator, with ``person`` and ``by_fallback``) whom the TTP
    linked without their BSN (issue 13, item 5). One row: year, persons. Informational, outside the
    attrition chain: a subset of the population (``docs/study-schema.md``, "Fallback links")."""
    linked = population.filter(pl.col("by_fallback").fill_null(False)).with_columns(pl.lit(year, pl.Int64).alias("year"))
    members.add("fallback_links", "persons", linked)
    return pl.DataFrame({"year": [year], "persons": [linked["person"].n_unique()]},
                        schema={"year": pl.Int64, "persons": pl.Int64})


def write_members(members: Members, folder: Path) -> list[str]:
    """Write ``<folder>/persons/<table>.parquet`` (owner-only); returns the tables written."""
    target = Path(folder) / FOLDER
    target.mkdir(mode=0o700)
    os.chmod(target, 0o700)
    written = []
    for table, frame in members.lazy_frames().items():
        path = target / f"{table}.parquet"
        # One streaming pass (the united parts of a partitioned run are files); a fixed row group
        # size: the same bytes however the rows reached the writer (in memory or K files).
        frame.sink_parquet(path, compression="zstd", statistics=False, row_group_size=ROW_GROUP_ROWS)
        os.chmod(path, 0o600)
        written.append(table)
    return written
