"""A5 by who is counted: record-level relations between releases, rebuilt from the steward's person sets.

Two releases over one population whose definitions overlap (``diabetes`` and ``diabetes_95``, a
code list widened by one code, a shifted age limit, another year or stratum) can be differenced:
a cell of one holds all persons of a cell of the other but a few. The manifests do not say so
(the names differ), but the steward's ledger keeps, per release, the persons behind each person
count (``records/<release_id>.persons.parquet``, cells indexed as in the record). With the ledger
(verification mode) the auditor rebuilds these relations with its own code, independently of the
engine:

- the sets of every person count of every release, and the sets of the implied complements
  ``N - n`` (a record's equation ``whole = part + complement``: the whole's persons not in the
  part's);
- every pair of cells of the same quantity (prevalent with prevalent, a top-list group's persons
  with a top-list group's, ACSC persons with ACSC persons, ``not:care_use`` with ``not:care_use``,
  ...) in two releases, that no one release shows together, whose sets are equal or differ by
  1..T-1 persons: ``A = B``; ``B = A + D`` when ``A ⊂ B``; ``A = I + A'`` and ``B = I + B'``
  otherwise. ``D``, ``A'``, ``B'`` and ``I`` are unknowns with their true sizes.

:mod:`audit.verdict` adds these equations to A5's region: a hidden cell they determine fails A1,
an implied cell of 1..T-1 persons that is exactly determined or narrower than the margin fails.
One name counting other persons in two releases (two versions) fails too. Intersections are
counted on Venn atoms (persons grouped by the cells they are in), restricted to the cells whose
size is within T of a cell of the same quantity in another release, a bucket of persons at a
time; a complement's intersections are its whole's less its part's (the part within the whole,
checked), never spread person by person.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from scipy.sparse import csr_array

from audit.cells import label
from audit.checks import Finding, Policy
from audit.intervals import Equation, FeasibleRegion
from audit.release import Key

__all__ = ["RELATED", "PersonRelations", "implied_margins", "person_relations"]

# Person counts related by who is counted, each with cells of its own quantity; complements of
# them (``not:<quantity>``, ``others:<quantity>``) with complements of the same quantity.
RELATED = frozenset({"population", "prevalent", "care_use", "referral_base", "referred", "attrition_before",
                     "attrition_excluded", "attrition_after", "band_persons", "cost_persons", "fallback_persons",
                     "contact_persons", "acsc_persons"})
IMPLIED = "by-persons"  # the quantity of an implied cell (auditor's own, never in a release)
BUCKET_ROWS = 25_000_000  # rows of person sets worked in memory at once (:func:`_bucketed`)


@dataclass
class PersonRelations:
    """What :func:`person_relations` found: equations, implied unknowns with their truth, findings."""

    equations: list[Equation] = field(default_factory=list)
    implied: dict[Key, int] = field(default_factory=dict)
    truth: dict[Key, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    pairs: int = 0


def _key(raw: list) -> Key:
    return str(raw[0]), tuple(sorted((str(c), str(v)) for c, v in raw[1].items()))


def _related(quantity: str) -> bool:
    base = quantity.split(":", 1)[1] if quantity.startswith(("not:", "others:")) else quantity
    return base in RELATED


def _read(ledger: Path, release_id: str) -> tuple[dict, pl.LazyFrame, int] | None:
    """The record of a release, its person sets (``cell``, ``person``, lazily) and their rows; None without sets."""
    records = Path(ledger) / "records"
    try:
        record = json.loads((records / f"{release_id}.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    entry = record.get("persons") if isinstance(record, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or "/" in entry["file"]:
        return None
    path = records / entry["file"]
    try:
        digest = hashlib.sha256()
        with path.open("rb") as fh:  # a country's sets are gigabytes: a megabyte at a time
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != entry.get("sha256"):
            return None
        if not {"cell", "person"} <= set(pl.read_parquet_schema(path)):
            return None
        rows = pl.scan_parquet(path).select(pl.len()).collect().item()
    except (OSError, pl.exceptions.PolarsError):
        return None
    frame = pl.scan_parquet(path).select(pl.col("cell").cast(pl.Int64), pl.col("person").cast(pl.Int64))
    return record, frame, rows


@contextmanager
def _bucketed(frame: pl.LazyFrame, rows: int) -> Iterator[Callable[[Callable[[pl.DataFrame], pl.DataFrame]],
                                                                   list[pl.DataFrame]]]:
    """Work on the rows of ``frame`` a bucket of persons at a time (all rows of a person in one
    bucket, so a count per cell, an intersection or a membership pattern is a sum over buckets).

    Up to :data:`BUCKET_ROWS` rows are one bucket, in memory; above, one streaming pass splits them
    into an owner-only temporary folder (``pfl-audit-*``), removed after (a killed audit leaves it,
    owner-only, in the system's temporary folder: the audit imports nothing of the engine, whose
    runs remove their own).
    """
    n = max(1, -(-rows // BUCKET_ROWS))
    if n == 1:
        whole = frame.collect()
        yield lambda work: [work(whole)]
        return
    with tempfile.TemporaryDirectory(prefix="pfl-audit-") as tmp:  # owner-only (0700), removed after
        frame.with_columns((pl.col("person").hash(13) % n).alias("__bucket")).sink_parquet(
            pl.PartitionBy(tmp, key="__bucket", include_key=False), mkdir=True, compression="lz4")
        empty = frame.clear().collect()

        def each(work: Callable[[pl.DataFrame], pl.DataFrame]) -> list[pl.DataFrame]:
            out = []
            for b in range(n):
                files = sorted((Path(tmp) / f"__bucket={b}").glob("*.parquet"))
                out.append(work(pl.read_parquet(files).select(empty.columns) if files else empty))
            return out

        yield each


def person_relations(ledger: Path, release_ids: list[str], *, threshold: int) -> PersonRelations:
    """The record-level relations between the releases ``release_ids`` (the audited one last).

    A release whose record or person sets cannot be read (or were altered) is a finding: the
    relations cannot be rebuilt, so A5 fails closed. The sets are worked a bucket of persons at a
    time (:func:`_bucketed`), never all in memory.
    """
    out = PersonRelations()
    read: dict[int, tuple[dict, pl.LazyFrame]] = {}
    rows = 0
    for r, rid in enumerate(release_ids):
        got = _read(ledger, rid)
        if got is None:
            out.findings.append(Finding("release", "A5", (rid,), "the steward's record or person sets of this "
                                        "release cannot be read: the releases cannot be related by who is counted"))
            continue
        record, frame, n = got
        cells = record.get("cells", [])
        read[r] = (record, frame.filter(pl.col("cell").is_between(0, len(cells) - 1))
                   .select(pl.lit(r, pl.Int64).alias("release"), "cell", "person"))
        rows += n
    if not read:
        return out
    try:
        with _bucketed(pl.concat([f for _, f in read.values()]), rows) as each:
            _relations(out, release_ids, read, each, threshold)
    except (OSError, pl.exceptions.PolarsError):
        out.findings.append(Finding("release", "A5", tuple(release_ids), "the steward's person sets cannot be "
                                    "read: the releases cannot be related by who is counted"))
    return out


def _sum(parts: list[pl.DataFrame], by: list[str]) -> pl.DataFrame:
    frame = pl.concat(parts)
    return frame.group_by(by).agg(pl.exclude(by).sum()) if frame.height else frame


def _relations(out: PersonRelations, release_ids: list[str], read: dict[int, tuple[dict, pl.LazyFrame]],
               each: Callable, threshold: int) -> None:
    cols: list[dict] = []  # per column: release, representative key, every key, quantity
    # Per (release, cell): its persons and how many of them are written twice (summed over buckets).
    stats = _sum(each(lambda f: f.group_by("release", "cell").agg(
        pl.len().cast(pl.Int64).alias("n"), (pl.len() - pl.col("person").n_unique()).cast(pl.Int64).alias("twice"))),
        ["release", "cell"])
    complements: list[tuple[int, int, int, int]] = []  # release, whole, part, complement (each tried in order)
    index: list[tuple[int, int, int]] = []  # release, cell, col
    for r, (record, _) in read.items():
        cells = record.get("cells", [])
        by_key: dict[Key, int] = {}
        for c, cell in enumerate(cells):
            for k in cell.get("keys", []):
                by_key[_key(k)] = c
                out.truth[_key(k)] = int(cell["value"])
        mine = stats.filter(pl.col("release") == r)
        sizes = dict(mine.select("cell", "n").iter_rows())
        # A set is its distinct persons: a person written twice (another missing) is no set of its count.
        repeated = mine.filter(pl.col("twice") > 0).height
        # The engine writes each (cell, person) once: a set whose size is not its cell's count
        # (repeated or missing persons) cannot be related; fail closed.
        wrong = sum(int(cells[c]["value"]) != n for c, n in sizes.items()) + repeated
        # A count of related persons whose set is absent altogether does not add up either (its
        # relations would be missed, not refused).
        wrong += sum(1 for c, cell in enumerate(cells) if c not in sizes and cell.get("kind") == "count"
                     and int(cell.get("value", 0)) > 0 and cell.get("keys") and _related(_key(cell["keys"][0])[0]))
        if wrong:
            out.findings.append(Finding("release", "A5", (release_ids[r],), f"the persons of {wrong} cells of the "
                                        "steward's record do not add up to their counts"))
            continue
        # Implied complements: whole = part + complement, the whole's persons not in the part's.
        for total, children in record.get("equations", []):
            if len(children) != 2:
                continue
            t, a, b = (by_key.get(_key(k)) for k in (total, *children))
            complements += [(r, t, part, rest) for part, rest in ((a, b), (b, a))
                            if t in sizes and part in sizes and rest is not None and rest not in sizes
                            and cells[rest].get("kind") == "complement"
                            and _related(_key(cells[rest]["keys"][0])[0])]
        index += [(r, c, -1) for c in sorted(sizes)]
    # The complements' sizes |W \\ P| = |W| - |W & P|, the intersections counted per bucket with
    # the part's rows only (a whole, the population say, is the whole of many complements), and
    # the first of each complement's equations whose difference is its count.
    chosen: dict[tuple[int, int], tuple[int, int]] = {}
    sizes = {(r, c): n for r, c, n in stats.select("release", "cell", "n").iter_rows()}
    if complements:
        tried = pl.DataFrame(complements, schema={"release": pl.Int64, "t": pl.Int64, "part": pl.Int64,
                                                  "rest": pl.Int64}, orient="row").with_row_index("try")
        found = _sum(each(lambda f: _within(f, tried)), ["try"])
        found = dict(found.iter_rows()) if found.height else {}
        for i, (r, t, part, rest) in enumerate(complements):
            value = int(read[r][0]["cells"][rest]["value"])
            if (r, rest) not in chosen and sizes[(r, t)] - found.get(i, 0) == value:
                if found.get(i, 0) != sizes[(r, part)]:  # W \ P has the count, but P is not within W
                    out.findings.append(Finding("release", "A5", (release_ids[r],), "a complement of the steward's "
                                                "record is not its whole's persons less its part's"))
                    return
                chosen[(r, rest)] = (t, part)
                index.append((r, rest, -1))
    column: list[tuple[int, int, int]] = []
    for r, c, _ in sorted(index):
        cells = read[r][0]["cells"]
        keys = [_key(k) for k in cells[c].get("keys", [])]
        if keys and _related(keys[0][0]):
            column.append((r, c, len(cols)))
            cols.append({"release": r, "key": keys[0], "keys": frozenset(keys), "quantity": keys[0][0],
                         "size": int(sizes.get((r, c), cells[c]["value"]))})
    if not cols:
        return
    meta = pl.DataFrame({"col": range(len(cols)), "release": [c["release"] for c in cols],
                         "quantity": [c["quantity"] for c in cols], "size": [c["size"] for c in cols]},
                        schema={"col": pl.Int64, "release": pl.Int64, "quantity": pl.String, "size": pl.Int64})
    # Candidates: a cell of the same quantity in another release within T persons of its size.
    near = (meta.join(meta, on="quantity", suffix="_b")
            .filter((pl.col("release") != pl.col("release_b")) & ((pl.col("size") - pl.col("size_b")).abs() < threshold)))
    wanted = sorted(set(near["col"].to_list()))
    if not wanted:
        return
    # Each wanted column as a combination of the sets read: a cell itself, or a complement's whole
    # less its part (within it, checked above).
    parts_of: dict[int, list[tuple[tuple[int, int], int]]] = {}
    for r, c, col in column:
        if col in wanted:
            t_part = chosen.get((r, c))
            parts_of[col] = [((r, c), 1)] if t_part is None else [((r, t_part[0]), 1), ((r, t_part[1]), -1)]
    read_cells = sorted({cell for terms in parts_of.values() for cell, _ in terms})
    at = {cell: i for i, cell in enumerate(read_cells)}
    combine = np.zeros((len(read_cells), len(wanted)), dtype=np.int64)
    for j, col in enumerate(wanted):
        for cell, sign in parts_of[col]:
            combine[at[cell], j] += sign
    # Venn atoms of the cells read (persons grouped by the cells they are in), a bucket at a time.
    numbers = pl.DataFrame({"release": [r for r, _ in read_cells], "cell": [c for _, c in read_cells],
                            "i": range(len(read_cells))}, schema={"release": pl.Int64, "cell": pl.Int64,
                                                                  "i": pl.Int32})
    atoms = _sum(each(lambda f: f.join(numbers, on=["release", "cell"]).group_by("person")
                      .agg(pl.col("i").sort()).group_by("i").agg(pl.len().cast(pl.Int64).alias("w"))), ["i"])
    lengths = atoms["i"].list.len().to_numpy()
    members = atoms["i"].explode().drop_nulls().to_numpy().astype(np.int64)
    m = csr_array((np.ones(members.size, dtype=np.int64), members, np.concatenate([[0], np.cumsum(lengths)])),
                  shape=(atoms.height, len(read_cells)))
    # |A & B| of every two cells read (M^T diag(w) M, in integers), then of every two wanted columns.
    weighted = csr_array(m.multiply(atoms["w"].to_numpy().astype(np.int64)[:, None]))
    both_cells = (m.T @ weighted).toarray()
    gram = combine.T @ both_cells @ combine
    index_of = {col: j for j, col in enumerate(wanted)}
    pairs = near.filter(pl.col("col") < pl.col("col_b")).select("col", "col_b", "size", "size_b")
    pairs = pairs.with_columns(pl.Series("g", [int(gram[index_of[a], index_of[b]])
                                               for a, b in pairs.select("col", "col_b").iter_rows()], dtype=pl.Int64))
    # Equal sets are one quantity (whatever the names): united first, so that a pair one release
    # shows together through an equal cell of another release is that release's own relation.
    parent = list(range(len(cols)))

    def find(c: int) -> int:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    rows = list(pairs.iter_rows())
    by_key: dict[Key, int] = {}
    for c, col in enumerate(cols):
        for k in col["keys"]:
            parent[find(c)] = find(by_key.setdefault(k, c))
    for a, b, sa, sb, g in rows:
        if sa == sb == g:
            parent[find(a)] = find(b)
    shown: list[set[int]] = [set() for _ in release_ids]
    for c, col in enumerate(cols):
        shown[col["release"]].add(find(c))
    for a, b, sa, sb, g in rows:
        da, db = sa - g, sb - g
        ca, cb = cols[a], cols[b]
        if ca["keys"] & cb["keys"]:  # one quantity by name: it must count the same persons
            if da or db:
                out.findings.append(Finding("release", "A5", (label(ca["key"]),),
                                            "one quantity counts other persons in two releases (two versions)"))
            continue
        ra, rb = find(a), find(b)
        if da + db >= threshold or (ra != rb and any(ra in s and rb in s for s in shown)):
            continue  # no small difference, or one release shows both (its own relation)
        out.pairs += 1
        _relate(out, ca["key"], cb["key"], da, db, g)


def _within(f: pl.DataFrame, tried: pl.DataFrame) -> pl.DataFrame:
    """Per ``try`` (``release``, whole ``t``, ``part``): how many of the part's persons (in ``f``) are in the whole."""
    part = f.join(tried.select("try", "release", pl.col("part").alias("cell"), "t"), on=["release", "cell"])
    whole = f.select("release", pl.col("cell").alias("t"), "person")
    return (part.join(whole, on=["release", "t", "person"], how="semi").group_by("try")
            .agg(pl.len().cast(pl.Int64).alias("n")))


def _relate(out: PersonRelations, a: Key, b: Key, da: int, db: int, g: int) -> None:
    def implied(what: str, value: int) -> Key:
        key = (IMPLIED, ((what, f"{label(a)} | {label(b)}"),))
        out.implied[key] = value
        return key

    if da == 0 and db == 0:
        out.equations.append(Equation(a, (b,)))
    elif da == 0:
        out.equations.append(Equation(b, (a, implied("second only", db))))
    elif db == 0:
        out.equations.append(Equation(a, (b, implied("first only", da))))
    else:
        common = implied("both", g)
        out.equations.append(Equation(a, (common, implied("first only", da))))
        out.equations.append(Equation(b, (common, implied("second only", db))))


def implied_margins(region: FeasibleRegion, persons: PersonRelations, hidden: set[Key],
                    policy: Policy) -> list[Finding]:
    """Implied cells of 1..T-1 persons (by who is counted), and hidden cells of 1..T-1 persons
    in a relation, must keep the margin in the region of all releases together."""
    cells = dict(persons.implied)
    related = {k for e in persons.equations for k in e.cells}
    cells |= {k: persons.truth[k] for k in hidden & related if k in persons.truth}
    out = []
    for key, value in sorted(cells.items(), key=lambda kv: label(kv[0])):
        if not policy.is_small(value) or key not in region.hidden:
            continue
        p = policy.protection(value)
        # exactly determined: A1 (a hidden cell) or derived-count (an implied one) says so already
        if region.fixed((key,)) is None and not region.reaches(key, max(0, value - p), value + p):
            out.append(Finding("release", "A5", (label(key),), "by who is counted with earlier releases: a cell of "
                               f"1..{policy.threshold - 1} persons is narrower than the {policy.margin_percent} % margin"))
    return out
