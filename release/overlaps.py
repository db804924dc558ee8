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
    distinct persons and the sum of their hashes ``h``; ``rows`` is their number."""

    keys: list[Key]
    sources: list[pl.LazyFrame]
    stats: pl.DataFrame
    rows: int

    @property
    def frame(self) -> pl.DataFrame:
        """Every (``k``, ``person``) in memory: for small studies and tests only."""
        return pl.concat(self.sources).collect() if self.sources else _EMPTY_SETS.clone()


_EMPTY_SETS = pl.DataFrame(schema={"k": pl.Int64, "person": pl.Int64})


def by_bucket(frame: pl.LazyFrame, rows: int, work: Callable[[pl.DataFrame], pl.DataFrame]) -> list[pl.DataFrame]:
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
    return Sets(keys, sources, stats, int(stats["n"].sum()))


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
        ids = frame.select("release", "id").unique().collect(engine="streaming")
        if ids.height == 0:
            return out
        ids = ids.with_columns(pl.Series("root", roots[ids["id"].to_numpy()]))
        columns = (ids.select("release", "root").unique().sort("release", "root").with_row_index("col")
                   .with_columns(pl.col("col").cast(pl.Int64)))
        of = ids.join(columns, on=["release", "root"]).select("release", "id", "col")
        frame = frame.join(of.lazy(), on=["release", "id"]).select("col", "person")
        rows = frame.select(pl.len()).collect(engine="streaming").item()
        # Venn atoms: persons with the same membership pattern, counted once with their number,
        # a bucket of persons at a time (a person's rows are all in one bucket).
        found = by_bucket(frame, rows, lambda f: f.group_by("person").agg(pl.col("col").sort())
                          .group_by("col").agg(pl.len().cast(pl.Int64).alias("w")))
    except (pl.exceptions.PolarsError, OSError):
        msg = "the person sets of an earlier release cannot be read; nothing was released"
        raise LedgerRefusal(msg) from None
    atoms = (pl.concat(found).group_by("col").agg(pl.col("w").sum()).sort("col")
             .with_row_index("atom").with_columns(pl.col("atom").cast(pl.Int64)))
    incidence = atoms.select("atom", "col").explode("col")
    n_atoms, n_cols = atoms.height, columns.height
    m = sparse.csr_array((np.ones(incidence.height), (incidence["atom"].to_numpy(), incidence["col"].to_numpy())),
                         shape=(n_atoms, n_cols))
    w = atoms["w"].to_numpy().astype(np.float64)
    m, columns = _complements(model, m, w, columns)
    gram = (m.T @ sparse.diags_array(w) @ m).tocsr()
    size = gram.diagonal().round().astype(np.int64)
    col_root = columns["root"].to_numpy()
    # Keys merged into one quantity (by the tables' relations, or by name with an earlier
    # release) must count the same persons: their union is then exactly the quantity's value.
    values = np.array([model.values[int(r)] for r in col_root], dtype=np.int64)
    wrong = size != values
    if wrong.any():
        last = columns["release"].to_numpy() == len(parts) - 1
        if (wrong & last).any():
            msg = (f"{FOLDER}/: the persons of {int((wrong & last).sum())} quantities do not add up to their counts "
                   "(keys the tables' relations make one quantity count other persons)")
            raise StudyContractError([msg])
        msg = "an earlier release's person sets do not add up to its counts; nothing was released"
        raise LedgerRefusal(msg)
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
        _implied(model, m.tocsc(), w, col_root, i[rest], j[rest], da[rest], db[rest], threshold, out)
    return out


def _complements(model: Model, m: sparse.csr_array, w: np.ndarray, columns: pl.DataFrame,
                 ) -> tuple[sparse.csr_array, pl.DataFrame]:
    """Add a column per implied complement ``N - n`` of a release whose ``N`` and ``n`` have sets.

    Its persons are the whole's not in the part's: a difference of two columns of the atoms x
    cells incidence (never person by person). Two releases' complements that count almost the
    same persons are related like any cells (``(N1 - n1) - (N2 - n2)`` is then a small count).
    """
    col = {(int(r), int(c)): i for i, (r, c) in enumerate(columns.select("release", "root").iter_rows())}
    releases = sorted({r for r, _ in col})
    csc = m.tocsc()
    added: list[sparse.csc_array] = []
    rows: list[tuple[int, int]] = []
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
                vector = (csc[:, [col[(r, t)]]] - csc[:, [col[(r, p)]]]).tocsc()
                vector.eliminate_zeros()
                if (vector.data < 0).any() or round(float(w[vector.indices].sum())) != model.values[root]:
                    continue  # the part is not within the whole here: no complement set
                seen.add((r, root))
                added.append(vector)
                rows.append((r, root))
    if not added:
        return m, columns
    extra = sparse.hstack(added, format="csr")
    more = pl.DataFrame({"release": [r for r, _ in rows], "root": [c for _, c in rows]},
                        schema={"release": columns.schema["release"], "root": columns.schema["root"]})
    more = more.with_columns(pl.int_range(columns.height, columns.height + more.height, dtype=pl.Int64).alias("col"))
    return sparse.hstack([m, extra], format="csr"), pl.concat([columns, more.select(columns.columns)])


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
    """An earlier record's sets (``cell``, ``person``) as (registered ``id``, ``person``), one cell per quantity, lazily."""
    known = np.array(cell_ids, dtype=np.int64)
    try:
        present_cells = frame.lazy().select(pl.col("cell").cast(pl.Int64).unique()).collect(engine="streaming")["cell"].to_numpy()
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


def _implied(model: Model, m: sparse.csc_array, w: np.ndarray, col_root: np.ndarray, i: np.ndarray, j: np.ndarray,
             da: np.ndarray, db: np.ndarray, threshold: int, out: Overlaps) -> None:
    """Subsets and near-equal pairs: equations over implied cells (one unknown per distinct set)."""
    m.sort_indices()

    def atoms(c: int) -> np.ndarray:
        return m.indices[m.indptr[c]:m.indptr[c + 1]]

    known = {atoms(c).tobytes(): int(col_root[c]) for c in range(m.shape[1])}

    def cell(part: np.ndarray) -> int:
        sig = part.tobytes()
        if sig not in known:
            value = int(round(w[part].sum()))
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
