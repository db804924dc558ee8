"""Who is counted: record-level relations between a release and every earlier one (issue 11, item 3).

Matching the quantities of two releases by name misses cells that count almost the same persons
under other names: ``diabetes_95`` (the diabetes definition plus everyone aged 95+) released
beside ``diabetes`` gives the persons aged 95+ without diabetes by subtraction. So every person
count of a release comes with the set of persons behind it (the study's ``persons/``,
:mod:`cohort.members`), the ledger keeps the sets of every release it recorded (steward only,
``records/<release_id>.persons.parquet``), and a new release is protected together with the
earlier ones through the relations their sets have, whatever the names. Cells are related to
cells of the same quantity (:data:`RELATED`: prevalent with prevalent, care use with care use,
each attrition count with itself, ...), whatever their condition, year or stratum, when no one
release shows both (a relation between two cells one release shows is that release's own):

- **equal sets**: one quantity (merged, as equal keys are); the merged cell is shown by both;
- **subsets** ``A ⊂ B`` with ``|B| - |A|`` of 1..T-1: ``B = A + D``, ``D`` an implied cell;
- **near-equal sets**, neither a subset of the other, whose symmetric difference holds 1..T-1
  persons: ``A = I + A'`` and ``B = I + B'`` with ``I = A ∩ B`` and the implied ``A'``, ``B'``.

An implied cell of 1..T-1 persons is a primary like any other (``primary:overlap``,
:mod:`release.protection`); an implied set equal to a cell's set, or to another implied set, is
that cell (no two unknowns for one quantity). A subset whose difference is T or more is not
modelled: its difference is no small cell. The implied complements ``N - n`` of each release are
related too (:func:`_complements`: their persons are the whole's not in the part's), and so are
top-list groups' persons and ACSC persons, each with cells of its own quantity. Event counts
(contacts, admissions) have no sets: their small differences are protected through their persons
(an events cell follows its persons cell; a top-list row is never a secondary).

The work is done on *Venn atoms*, never person by person: persons are grouped by the set of
cells they are counted in (their membership pattern), and the intersection sizes of all cells at
once are ``M^T diag(w) M`` for the atoms x cells incidence ``M`` and the atoms' sizes ``w``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TypeVar
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from scipy import sparse

from cohort.members import FOLDER
from execution.engine_folder import EngineFolder
from execution.split import PART, row_group_for, scan_partition, split
from release.errors import LedgerRefusal, StudyContractError, StudyFormatError
from release.layout import TableLayout
from release.model import Key, Model, make_key
from release.study_folder import TOTAL, StudyFolder

R = TypeVar("R")

__all__ = ["Overlaps", "Own", "Sets", "earlier_sets", "own_sets", "relate", "study_sets"]

IMPLIED = "ledger_overlap"  # the quantity of an implied cell (never recorded, never published)
# The quantities whose cells are related by who is counted, each with cells of its own quantity:
# where overlapping definitions (a condition, its age rule, its codes, a year, a stratum) meet.
# A chance overlap of two different counts (a top-list group and a care-use cell) is no
# definition an attacker can know: a top-list group's persons are related with top-list groups'
# (another cohort, year or window), ACSC persons with ACSC persons. The implied complements of a
# release (N - n: :func:`_complements`) with complements of the same quantity.
RELATED = frozenset({"population", "prevalent", "care_use", "referral_base", "referred",
                     "attrition_before", "attrition_excluded", "attrition_after", "band_persons", "cost_persons",
                     "fallback_persons", "contact_persons", "acsc_persons"})


BUCKET_ROWS = 25_000_000
"""Rows of person sets (cell, person) held in memory at once (about 1.5 GB with the work on them):
above it, the sets are split by a hash of the person into buckets on disk, each person's rows in
one bucket, and worked a bucket at a time (issue 14: ``country``'s seed study counts about 2
billion (cell, person) rows; held whole, the release was killed at 24.2 GB)."""
BUCKET_SEED = 29  # the hash that puts a person in a bucket (any fixed seed: a person's bucket is where its rows meet)
DIGEST_SEED = 7  # the hash whose sum per cell compares two keys' sets


@dataclass(frozen=True)
class Sets:
    """Person sets of cells: ``sources`` yield (``k``: index into ``keys``, ``person``) lazily,
    count by count (nothing is held); ``stats`` holds per ``k`` with rows its size ``n``, its
    distinct persons and the sum of their hashes ``h``."""

    keys: list[Key]
    sources: list[pl.LazyFrame]
    stats: pl.DataFrame


_EMPTY_SETS = pl.DataFrame(schema={"k": pl.Int64, "person": pl.Int64})


def by_bucket(frame: pl.LazyFrame, rows: int, work: Callable[[pl.DataFrame], R]) -> list[R]:
    """``work`` applied to the rows of ``frame`` a bucket of persons at a time (all of one person's
    rows in one bucket); one bucket, in memory, up to :data:`BUCKET_ROWS` rows.

    Above it, one streaming pass splits the rows into owner-only scratch files (removed after,
    and by the next run after a kill: :class:`execution.engine_folder.EngineFolder`).
    """
    buckets = max(1, -(-rows // BUCKET_ROWS))
    if buckets == 1:
        return [work(frame.collect(engine="streaming"))]
    scratch = EngineFolder("pfl-release-")
    try:
        folder = Path(scratch.path) / "sets"
        split(frame.with_columns((pl.col("person").hash(BUCKET_SEED) % buckets).alias(PART)), folder,
              row_group_size=row_group_for(buckets))
        return [work(scan_partition(folder, b).drop(PART).collect()) for b in range(buckets)]
    finally:
        scratch.remove()


def _stats(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.group_by("k").agg(pl.len().alias("n"), pl.col("person").n_unique().alias("distinct"),
                                   pl.col("person").hash(DIGEST_SEED).sum().alias("h"))


@dataclass
class Overlaps:
    """What :func:`relate` found: relations by type, implied cells, the new release's sets by id."""

    relations: dict[str, int] = field(default_factory=lambda: {"equal": 0, "subset": 0, "near-equal": 0})
    implied: int = 0
    implied_small: int = 0


def study_sets(study: StudyFolder, layouts: dict[str, TableLayout]) -> Sets:
    """The persons of every person count the release shows (strata Totals: the levels united).

    The sets are read count by count from the study's files, lazily; their sizes are checked in
    one pass a bucket of persons at a time (:func:`by_bucket`), never all in memory at once.

    Raises:
        StudyFormatError: the study folder has no readable person sets (exit 4).
        StudyContractError: a cell's persons do not add up to its count (exit 5).
    """
    folder = study.path / FOLDER
    if not folder.is_dir():
        msg = (f"{study.path}: the study folder has no person sets ({FOLDER}/; made by an older pfl-study?): the "
               "release ledger matches releases by who is counted and cannot record this release; rerun pfl-study; "
               "nothing was released")
        raise StudyFormatError(msg)
    keys: list[Key] = []
    sources: list[pl.LazyFrame] = []
    expected: list[tuple[str, str, pl.DataFrame]] = []  # per count: table, count, its cells (k, count)
    rows = 0
    for name, lay in layouts.items():
        counts = [c for c in lay.counts if c.unit == "persons"]
        if not counts:
            continue
        path = folder / f"{name}.parquet"
        try:
            schema = pl.read_parquet_schema(path)
            height = pl.scan_parquet(path).select(pl.len()).collect().item()
        except (pl.exceptions.PolarsError, OSError):
            msg = f"{path}: the person sets of table {name} cannot be read; rerun pfl-study; nothing was released"
            raise StudyFormatError(msg) from None
        for count in counts:
            by = list(count.by)
            missing = [c for c in [*by, "column", "person"] if c not in schema]
            if missing:
                msg = f"{path}: expected columns {[*by, 'column', 'person']}; missing {missing}"
                raise StudyFormatError(msg)
            types = lay.frame.select(by).schema
            members = pl.scan_parquet(path).filter(pl.col("column") == count.name).select(
                *[pl.col(c).cast(types[c]) for c in by], pl.col("person").cast(pl.Int64))
            # The strata and the table's other dimensions (the bands of contact_bands) whose Total
            # the release shows.
            strata = [s for s in study.strata if s in by] + [d for d in lay.dimensions if d in by
                                                             and d not in study.strata]
            # The levels of a stratum (or bands) hold distinct persons: a Total unites them without repeats
            # (a repeated row makes its cell's size differ from its count, which is refused below).
            combos = [total for r in range(len(strata) + 1) for total in itertools.combinations(strata, r)]
            cells = lay.frame.select(*by, count.name).unique(subset=by, maintain_order=True)
            cells = cells.with_columns(pl.int_range(len(keys), len(keys) + cells.height, dtype=pl.Int64).alias("k"))
            keys += [make_key(count.quantity, dict(zip(by, row, strict=True))) for row in cells.select(by).rows()]
            expected.append((name, count.name, cells.select("k", pl.col(count.name).alias("count"))))
            index = cells.select(*by, "k").lazy()
            sources += [members.with_columns(pl.lit(TOTAL).alias(s) for s in total)
                        .join(index, on=by, maintain_order="left").select("k", "person") for total in combos]
            rows += height * len(combos)  # a bound: the file holds the table's other counts too
    stats = _sum_stats(by_bucket(pl.concat(sources) if sources else _EMPTY_SETS.lazy(), rows, _stats))
    problems: list[str] = []
    for name, column, cells in expected:
        # A set is its distinct persons: a person twice (another missing) is no set of its count.
        bad = cells.join(stats, on="k", how="left").filter(
            (pl.col("n").fill_null(0) != pl.col("count")) | (pl.col("distinct") != pl.col("n"))).height
        if bad:
            problems.append(f"{FOLDER}/{name}.parquet: the persons of {bad} cells of '{column}' do not add "
                            "up to their counts")
    if problems:
        raise StudyContractError(problems)
    return Sets(keys, sources, stats)


def _sum_stats(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """Per ``k``, the buckets' sizes, distinct persons and hash sums added (a person is in one bucket)."""
    return (pl.concat(parts).group_by("k").agg(pl.col("n").cast(pl.Int64).sum(),
                                               pl.col("distinct").cast(pl.Int64).sum(), pl.col("h").sum())
            .sort("k"))


def relate(model: Model, parts: list[pl.DataFrame], *, threshold: int) -> Overlaps:
    """Add the record-level relations between releases to ``model``.

    Args:
        model: the release's cells and the earlier releases' (merged by name already).
        parts: per release (the earlier ones, then this one) its sets as (``id``: registered id
            of the model, ``person``).
        threshold: T.

    Raises:
        LedgerRefusal: a quantity counts other persons here than in an earlier release under
            the same name (two versions: the definitions or the data changed).
    """
    out = Overlaps()
    if len(parts) < 2:  # no earlier release: nothing to relate
        return out
    roots = _roots(model)
    frame = pl.concat([p.lazy().select(pl.lit(r, pl.Int64).alias("release"), pl.col("id").cast(pl.Int64),
                                       pl.col("person").cast(pl.Int64)) for r, p in enumerate(parts)])
    try:
        counts = frame.group_by("release", "id").agg(pl.len().cast(pl.Int64).alias("n")).collect(engine="streaming")
    except (pl.exceptions.PolarsError, OSError):
        msg = "the person sets of an earlier release cannot be read; nothing was released"
        raise LedgerRefusal(msg) from None
    if counts.height == 0:
        return out
    counts = counts.with_columns(pl.Series("root", roots[counts["id"].to_numpy()]))
    columns = (counts.group_by("release", "root").agg(pl.col("n").sum()).sort("release", "root")
               .with_row_index("col").with_columns(pl.col("col").cast(pl.Int64)))
    # Keys merged into one quantity (by the tables' relations, or by name with an earlier
    # release) must count the same persons: their union is then exactly the quantity's value.
    values = np.array([model.values[int(r)] for r in columns["root"].to_numpy()], dtype=np.int64)
    wrong = columns["n"].to_numpy() != values
    if wrong.any():
        last = columns["release"].to_numpy() == len(parts) - 1
        if (wrong & last).any():
            msg = (f"{FOLDER}/: the persons of {int((wrong & last).sum())} quantities do not add up to their counts "
                   "(keys the tables' relations make one quantity count other persons)")
            raise StudyContractError([msg])
        msg = "an earlier release's person sets do not add up to its counts; nothing was released"
        raise LedgerRefusal(msg)
    complements = _complement_columns(model, columns)
    needed = _needed(columns, complements, threshold, model)
    frame = frame.join(counts.join(columns.select("release", "root", "col"), on=["release", "root"])
                       .select("release", "id", "col").lazy(), on=["release", "id"]).select("col", "person")
    try:
        venn = _atoms(frame, int(columns["n"].sum()), columns, complements, needed, model)
    except (pl.exceptions.PolarsError, OSError):
        msg = "the person sets of an earlier release cannot be read; nothing was released"
        raise LedgerRefusal(msg) from None
    gram, columns = venn.gram, venn.columns
    size = gram.diagonal().round().astype(np.int64)
    col_root = columns["root"].to_numpy()
    _same_name(gram, size, columns, model)
    coo = sparse.triu(gram, k=1).tocoo()
    i, j, g = coo.row, coo.col, coo.data.round().astype(np.int64)
    da, db = size[i] - g, size[j] - g
    keep = (da + db < threshold) & (col_root[i] != col_root[j])
    i, j, da, db = i[keep], j[keep], da[keep], db[keep]
    # Only cells of one quantity are related (prevalent with prevalent, a complement with a
    # complement of the same quantity, ...): where overlapping definitions meet.
    family = _families(model)
    keep = np.array([bool(family.get(int(col_root[a]), set()) & family.get(int(col_root[b]), set()))
                     for a, b in zip(i, j, strict=True)], dtype=bool)
    i, j, da, db = i[keep], j[keep], da[keep], db[keep]
    # A pair is related only if no release shows both (a relation between cells one release
    # shows together is that release's own business): equal sets first, whose releases unite.
    releases: dict[int, set[int]] = {}
    for root, release in columns.select("root", "release").iter_rows():
        releases.setdefault(int(root), set()).add(int(release))

    def apart(a: int, b: int) -> bool:
        ra, rb = model.find(int(col_root[a])), model.find(int(col_root[b]))
        return ra != rb and not shown[ra] & shown[rb]

    shown = _united(model, releases)
    equal = (da == 0) & (db == 0)
    for a, b in zip(i[equal], j[equal], strict=True):
        if apart(a, b):
            model.merge(int(col_root[a]), int(col_root[b]), "the same persons in another release")
            shown = _united(model, releases)  # the merged quantity is shown by both releases
            out.relations["equal"] += 1
    if out.relations["equal"]:
        _merge_complements(model)
    rest = np.array([not e and apart(a, b) for a, b, e in zip(i, j, equal, strict=True)], dtype=bool)
    if rest.any():
        _implied(model, venn, col_root, i[rest], j[rest], da[rest], db[rest], threshold, out)
    return out


def _complement_columns(model: Model, columns: pl.DataFrame) -> pl.DataFrame:
    """The implied complements ``N - n`` of each release whose ``N`` and ``n`` have sets: (``release``,
    ``root`` of the complement, ``whole`` and ``part``: their columns), one per release and root.

    A complement's persons are the whole's not in the part's (:func:`_atoms` checks that the part
    is within the whole and the difference is the complement's value; otherwise it has no set).
    Two releases' complements that count almost the same persons are related like any cells
    (``(N1 - n1) - (N2 - n2)`` is then a small count).
    """
    col = {(int(r), int(c)): i for i, (r, c) in enumerate(columns.select("release", "root").iter_rows())}
    releases = sorted({r for r, _ in col})
    rows: list[tuple[int, int, int, int]] = []
    seen: set[tuple[int, int]] = set(col)
    for total, children in model.equations:
        if len(children) != 2:
            continue
        for part, rest in (children, children[::-1]):
            root = model.find(rest)
            if model.kinds[root] != "complement" or not _related(model.keys[root][0]):
                continue
            t, p = model.find(total), model.find(part)
            for r in releases:
                if (r, root) in seen or (r, t) not in col or (r, p) not in col:
                    continue
                seen.add((r, root))
                rows.append((r, root, col[(r, t)], col[(r, p)]))
    return pl.DataFrame(rows, schema={"release": pl.Int64, "root": pl.Int64, "whole": pl.Int64, "part": pl.Int64},
                        orient="row")


def _needed(columns: pl.DataFrame, complements: pl.DataFrame, threshold: int, model: Model) -> np.ndarray:
    """Which columns (the direct ones, then the complements) can be in a relation, by their sizes.

    Two sets whose sizes differ by T or more are never related (``da + db >= |a - b|``), so only
    a column within T persons of a column of another quantity, a column of fewer than T persons
    (an implied set of 1..T-1 persons may equal it) and a quantity with a set in two releases
    (one name, one set: :func:`_same_name`) need their persons: the Venn atoms are of those
    columns only (on nivel, all columns' complements held 24 GB). An implied intersection of
    ``g`` persons is within T of both its cells, so a cell with the same set is among them.
    """
    roots = np.concatenate([columns["root"].to_numpy(), complements["root"].to_numpy()])
    sizes = np.concatenate([columns["n"].to_numpy(), np.array([model.values[int(r)] for r in complements["root"]],
                                                              dtype=np.int64)]).astype(np.int64)
    order = np.argsort(sizes, kind="stable")
    needed = sizes < threshold
    distinct, count = np.unique(roots, return_counts=True)
    needed |= np.isin(roots, distinct[count > 1])
    ordered, root = sizes[order], roots[order]
    lo = np.searchsorted(ordered, ordered - threshold, side="right")
    hi = np.searchsorted(ordered, ordered + threshold, side="left")
    for n, (a, b) in enumerate(zip(lo, hi, strict=True)):  # windows of sizes within T (few cells each)
        if not needed[order[n]] and (root[a:b] != root[n]).any():
            needed[order[n]] = True
    return needed


@dataclass
class _Venn:
    """The Venn atoms of the related columns, and what :func:`relate` needs of them.

    ``m``: atoms x direct columns (the sets read); ``combine``: direct columns x related columns
    (a direct column itself, or a complement: its whole minus its part); ``gram``: the related
    columns' intersection sizes ``combine^T m^T diag(w) m combine``, so a complement's column is
    never expanded over the atoms (on nivel, the atoms x complements incidence took 24 GB);
    ``signature``: per related column, two random sums over its atoms (with its size, what
    identifies two equal sets: an implied set equal to a cell's set is that cell).
    """

    m: sparse.csc_array
    w: np.ndarray
    combine: sparse.csc_array
    gram: sparse.csr_array
    columns: pl.DataFrame
    weights: np.ndarray
    signature: np.ndarray

    def atoms(self, c: int) -> np.ndarray:
        """The atoms of related column ``c`` (sorted)."""
        lo, hi = self.combine.indptr[c], self.combine.indptr[c + 1]  # column c of the csc array, not a copy
        rows, signs = self.combine.indices[lo:hi], self.combine.data[lo:hi]
        total = np.zeros(self.m.shape[0], dtype=np.int64)
        for r, sign in zip(rows, signs, strict=True):
            total[self.m.indices[self.m.indptr[r]:self.m.indptr[r + 1]]] += int(sign)
        return np.flatnonzero(total > 0)

    def key(self, atoms: np.ndarray) -> tuple[int, int, int]:
        """What identifies a set of atoms: its size and two random sums (collisions ~ 2^-60)."""
        return (int(round(self.w[atoms].sum())), *(int(v) for v in self.weights[atoms].sum(axis=0)))


def _atoms(frame: pl.LazyFrame, rows: int, columns: pl.DataFrame, complements: pl.DataFrame, needed: np.ndarray,
           model: Model) -> _Venn:
    """The Venn atoms of the columns that can be related and of the sets their complements need.

    One pass a bucket of persons at a time (each bucket's persons grouped by the columns they are
    in, the patterns counted); a complement is a combination of its whole and its part, valid
    when the part is within the whole and the difference is its value.
    """
    direct = needed[:columns.height]
    comps = complements.filter(pl.Series(needed[columns.height:], dtype=pl.Boolean))
    read = np.unique(np.concatenate([columns["col"].to_numpy()[direct], comps["whole"].to_numpy(),
                                     comps["part"].to_numpy()])).astype(np.int64)
    index = np.full(columns.height, -1, dtype=np.int64)
    index[read] = np.arange(read.size)
    # Patterns over the read columns numbered 0..read-1 (32-bit: the atoms' lists are most of the memory).
    renumber = pl.DataFrame({"col": read, "i": np.arange(read.size, dtype=np.int32)})
    found = by_bucket(frame.join(renumber.lazy(), on="col").select("i", "person"), rows,
                      lambda f: f.group_by("person").agg(pl.col("i").sort())
                      .group_by("i").agg(pl.len().cast(pl.Int64).alias("w")))
    atoms = pl.concat(found).group_by("i").agg(pl.col("w").sum()).sort("i")
    del found
    lengths = atoms["i"].list.len().to_numpy()
    w = atoms["w"].to_numpy().astype(np.float64)
    indices = atoms["i"].explode().to_numpy().astype(np.int32)
    n_atoms = atoms.height
    del atoms
    m = sparse.csr_array((np.ones(indices.size), indices, np.concatenate([[0], np.cumsum(lengths)])),
                         shape=(n_atoms, read.size)).tocsc()
    del indices
    base = (m.T @ sparse.csc_array(m.multiply(w[:, None]))).toarray().round().astype(np.int64)  # read x read
    # A complement is valid when its part is within its whole (|P & W| = |P|) and |W| - |P| is its value.
    whole, part = index[comps["whole"].to_numpy()], index[comps["part"].to_numpy()]
    values = np.array([model.values[int(r)] for r in comps["root"].to_numpy()], dtype=np.int64)
    valid = (base[part, whole] == base[part, part]) & (base[whole, whole] - base[part, part] == values)
    kept = columns.filter(pl.Series(direct)).select("release", "root")
    out = pl.concat([kept, comps.filter(pl.Series(valid)).select("release", "root")])
    n_direct, n_comp = kept.height, int(valid.sum())
    rows_, cols_, data = list(index[columns["col"].to_numpy()[direct]]), list(range(n_direct)), [1.0] * n_direct
    for k, (wh, pa) in enumerate(zip(whole[valid], part[valid], strict=True)):
        rows_ += [int(wh), int(pa)]
        cols_ += [n_direct + k, n_direct + k]
        data += [1.0, -1.0]
    combine = sparse.csc_array((data, (rows_, cols_)), shape=(read.size, n_direct + n_comp))
    dense = sparse.csr_array(base.astype(np.float64))
    gram = (combine.T @ dense @ combine).tocsr()
    rng = np.random.default_rng(0x5eed)  # fixed: the same release whatever run
    weights = rng.integers(0, 2**31, size=(n_atoms, 2), dtype=np.int64)
    # In integers: float sums of a million atoms' 31-bit weights would round.
    signature = combine.astype(np.int64).T @ (m.astype(np.int64).T @ weights)
    out = out.select("release", "root", pl.int_range(pl.len(), dtype=pl.Int64).alias("col"))
    return _Venn(m, w, combine, gram, out, weights, signature)


def _related(quantity: str) -> bool:
    """A quantity related by who is counted: one of :data:`RELATED`, or a complement of one."""
    base = quantity.split(":", 1)[1] if quantity.startswith(("not:", "others:")) else quantity
    return base in RELATED


def _merge_complements(model: Model) -> None:
    """Complements of one part in one whole are one quantity (no two unknowns for one set).

    Cells merged by equal sets can make two releases' ``whole = part + complement`` equations
    the same but for the complement (``not:prevalent`` of a renamed condition, say).
    """
    seen: dict[tuple[int, int, str], int] = {}
    for total, children in model.equations:
        if len(children) != 2:
            continue
        for part, rest in (children, children[::-1]):
            kind = model.kinds[model.find(rest)]
            if kind in ("complement", "slack") and model.kinds[model.find(part)] == "count":
                key = (model.find(total), model.find(part), kind)
                if key in seen:
                    model.merge(seen[key], rest, "the complement of one part in one whole")
                else:
                    seen[key] = rest


def _united(model: Model, releases: dict[int, set[int]]) -> dict[int, set[int]]:
    """Current root -> every release that shows one of its keys."""
    out: dict[int, set[int]] = {}
    for root, seen in releases.items():
        out.setdefault(model.find(root), set()).update(seen)
    return out


def _families(model: Model) -> dict[int, set[str]]:
    """Root id -> the quantities of its keys that are related by who is counted."""
    out: dict[int, set[str]] = {}
    for i, key in enumerate(model.keys):
        if _related(key[0]):
            out.setdefault(model.find(i), set()).add(key[0])
    return out


def _roots(model: Model) -> np.ndarray:
    return np.array([model.find(i) for i in range(len(model.keys))], dtype=np.int64)


@dataclass(frozen=True)
class Own:
    """This release's sets as (registered ``id``, ``person``), lazily, and the ids that have rows."""

    frame: pl.LazyFrame
    ids: np.ndarray


def own_sets(model: Model, sets: Sets) -> Own:
    """This release's sets as (registered ``id``, ``person``), one key per quantity, lazily.

    Keys the tables' relations make one quantity (``attrition_after`` of the last step and
    ``prevalent``; ``prevalent`` in two tables) must count the same persons: compared by size
    and a sum of hashed person numbers (:attr:`Sets.stats`), then one key's rows are kept.

    Raises:
        StudyContractError: two keys of one quantity count other persons.
    """
    ids = np.array([model.index[k] for k in sets.keys], dtype=np.int64)
    root = _roots(model)[ids] if ids.size else ids
    digest = sets.stats.select("k", "n", "h").join(
        pl.DataFrame({"k": np.arange(ids.size, dtype=np.int64), "root": root}), on="k")
    differ = digest.group_by("root").agg(pl.col("n").n_unique().alias("a"), pl.col("h").n_unique().alias("b"))
    bad = differ.filter((pl.col("a") > 1) | (pl.col("b") > 1)).height
    if bad:
        msg = (f"{FOLDER}/: {bad} quantities are counted in two places with other persons (keys the tables' "
               "relations make one quantity)")
        raise StudyContractError([msg])
    _, first = np.unique(root, return_index=True)
    frame = pl.concat(sets.sources) if sets.sources else _EMPTY_SETS.lazy()
    # A join, not replace_strict, which polars' streaming engine runs in memory (nivel: 3.2 GB, 0.6 with a join).
    frame = frame.join(pl.DataFrame({"k": first, "id": ids[first]}, schema={"k": pl.Int64, "id": pl.Int64}).lazy(),
                       on="k", maintain_order="left").select("id", "person")
    return Own(frame, np.unique(ids[np.intersect1d(first, sets.stats["k"].to_numpy())]))


def earlier_sets(model: Model, frame: pl.DataFrame | pl.LazyFrame, cell_ids: list[int]) -> pl.LazyFrame:
    """An earlier record's sets (``cell``, ``person``) as (registered ``id``, ``person``), one cell
    per quantity, lazily."""
    known = np.array(cell_ids, dtype=np.int64)
    try:
        present_cells = (frame.lazy().select(pl.col("cell").cast(pl.Int64).unique())
                         .collect(engine="streaming")["cell"].to_numpy())
    except (pl.exceptions.PolarsError, OSError):
        msg = "the person sets of an earlier release cannot be read; nothing was released"
        raise LedgerRefusal(msg) from None
    if present_cells.size and (present_cells.min() < 0 or present_cells.max() >= known.size):
        msg = "an earlier release's person sets name cells its record does not hold; nothing was released"
        raise LedgerRefusal(msg)
    # A related count of persons whose set is absent altogether does not add up either: its
    # relations to this release would be missed, not refused.
    present = np.zeros(known.size, dtype=bool)
    present[present_cells] = True
    lacking = [int(i) for c, i in enumerate(known) if not present[c] and model.kinds[int(i)] == "count"
               and model.values[model.find(int(i))] > 0 and _related(model.keys[int(i)][0])]
    if lacking:
        msg = (f"an earlier release's person sets lack the persons of {len(lacking)} counts (they do not add up to "
               "their counts); nothing was released")
        raise LedgerRefusal(msg)
    root = _roots(model)[known] if known.size else known
    _, first = np.unique(root, return_index=True)
    return frame.lazy().select(pl.col("cell").cast(pl.Int64), pl.col("person").cast(pl.Int64)).join(
        pl.DataFrame({"cell": first, "id": known[first]}, schema={"cell": pl.Int64, "id": pl.Int64}).lazy(),
        on="cell", maintain_order="left").select("id", "person")


def _same_name(gram: sparse.csr_array, size: np.ndarray, columns: pl.DataFrame, model: Model) -> None:
    """One quantity under one name counts the same persons in every release, or it is refused."""
    repeated = columns.group_by("root").agg(pl.col("col")).filter(pl.col("col").list.len() > 1)
    if repeated.height == 0:
        return
    pairs = repeated.select("root", pl.col("col").list.first().alias("a"), pl.col("col")).explode("col")
    a, b = pairs["a"].to_numpy(), pairs["col"].to_numpy()
    both = np.asarray(gram[a, b]).ravel().round().astype(np.int64)
    differ = (both != size[a]) | (both != size[b])
    if differ.any():
        labels = sorted({model.keys[int(r)][0] for r in pairs["root"].to_numpy()[differ]})
        msg = (f"the ledger refuses the release: {int(np.unique(pairs['root'].to_numpy()[differ]).size)} quantities "
               f"count other persons than under the same name in an earlier release over the same population "
               f"(two versions of one quantity let the difference be derived; were the definitions changed?): "
               f"{', '.join(labels[:8])}. Nothing was written.")
        raise LedgerRefusal(msg)


def _implied(model: Model, venn: _Venn, col_root: np.ndarray, i: np.ndarray, j: np.ndarray,
             da: np.ndarray, db: np.ndarray, threshold: int, out: Overlaps) -> None:
    """Subsets and near-equal pairs: equations over implied cells (one unknown per distinct set)."""
    cache: dict[int, np.ndarray] = {}

    def atoms(c: int) -> np.ndarray:
        if c not in cache:
            cache[c] = venn.atoms(c)
        return cache[c]

    sizes = venn.gram.diagonal().round().astype(np.int64)
    known = {(int(sizes[c]), int(a), int(b)): int(col_root[c]) for c, (a, b) in enumerate(venn.signature)}

    def cell(part: np.ndarray) -> int:
        sig = venn.key(part)
        if sig not in known:
            value = sig[0]
            known[sig] = model.add((IMPLIED, (("n", str(out.implied)),)), value, kind="overlap")
            out.implied += 1
            out.implied_small += int(1 <= value < threshold)
        return known[sig]

    for a, b, x, y in zip(i, j, da, db, strict=True):
        if x == 0 or y == 0:  # one holds the other: whole = part + difference
            part, whole = (a, b) if x == 0 else (b, a)
            rest = cell(np.setdiff1d(atoms(whole), atoms(part), assume_unique=True))
            model.equations.append((int(col_root[whole]), (int(col_root[part]), rest)))
            out.relations["subset"] += 1
        else:
            both = cell(np.intersect1d(atoms(a), atoms(b), assume_unique=True))
            only_a = cell(np.setdiff1d(atoms(a), atoms(b), assume_unique=True))
            only_b = cell(np.setdiff1d(atoms(b), atoms(a), assume_unique=True))
            model.equations.append((int(col_root[a]), (both, only_a)))
            model.equations.append((int(col_root[b]), (both, only_b)))
            out.relations["near-equal"] += 1
