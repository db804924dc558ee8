"""Building a release from a study folder: layout, model, protection, fail-closed withholding.

:func:`build_release` runs the steps of the release stage that decide what is published; it
writes nothing (:mod:`release.writer` does). When a component of cells has no safe
pattern, the last table involved in it (in :data:`release.layout.ORDER`) is withheld and
everything is protected again without it: its cells become implicit, so what the other tables
show can still not reveal them. A table whose shares come from a withheld table is withheld too.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from disclosure import Policy
from release.errors import LedgerRefusal, ReleaseError, StudyContractError, StudyFormatError
from release.layout import ORDER, TableLayout, layout, relations
from release.ledger import key_to_json, merge_earlier
from release.magnitudes import decide_magnitudes, nested_pairs
from release.model import Compiled, Model
from release.overlaps import Overlaps, Own, Sets, earlier_sets, own_sets, relate, study_sets
from release.protection import Decision, context, decide, ratio_status
from release.study_folder import StudyFolder

__all__ = ["ReleaseContent", "build_release"]

_DEPENDS = {"care_use_change": "care_use"}


@dataclass
class ReleaseContent:
    """Everything a release holds, decided; nothing written yet.

    Attributes:
        frames: each released table with values (null where hidden) and status columns.
        layouts: every table's layout (withheld ones included).
        withheld: table -> why it is not released.
        relations: the relations of the manifest.
        hidden_by_reason: table -> engine reason -> hidden values (steward's view, not published).
        cells_by_reason: engine reason -> hidden quantities (each counted once).
        record: the ledger record of this release (steward only).
        earlier_releases: how many earlier releases it was checked against.
        persons: the person numbers behind each person count of the record, as (``cell``: index
            into ``record["cells"]``, ``person``), lazily (read from the study's files as the
            ledger writes them): steward only, kept in the ledger.
        overlaps: the record-level relations found with earlier releases (steward only).
    """

    frames: dict[str, pl.DataFrame]
    layouts: dict[str, TableLayout]
    withheld: dict[str, str]
    relations: list[dict]
    hidden_by_reason: dict[str, dict[str, int]]
    cells_by_reason: dict[str, int]
    record: dict
    earlier_releases: int
    seconds: float = 0.0
    milps: int = 0
    status_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    persons: pl.LazyFrame | None = None
    overlaps: Overlaps | None = None


def _levels(layouts: dict[str, TableLayout]) -> dict[str, tuple[str, ...]]:
    cohort = next(name for name in ("prevalence", "incidence", "index_cohort") if name in layouts)
    bands = layouts["contact_bands"].dimensions if "contact_bands" in layouts else {}
    return {**layouts[cohort].dimensions, **bands}


def _model(layouts: dict[str, TableLayout], withheld: dict[str, str], rels: list[dict]) -> Model:
    model = Model()
    for name, lay in layouts.items():
        model.add_table(lay, shown=name not in withheld)
    model.apply(rels, layouts)
    if model.conflicts:
        shown = model.conflicts[:20] + ([f"... and {len(model.conflicts) - 20} more"] if len(model.conflicts) > 20 else [])
        raise StudyContractError(shown)
    return model


def build_release(study: StudyFolder, policy: Policy, *, earlier_records: list[dict] = (),
                  earlier_persons: list[pl.DataFrame | pl.LazyFrame | None] | None = None,
                  time_limit: float = 60.0) -> ReleaseContent:
    """Decide what a release of ``study`` shows under ``policy``, given the earlier releases.

    Earlier releases are related to this one by name (equal keys) and by who is counted
    (:mod:`release.overlaps`): ``earlier_persons`` gives each earlier record's person sets
    (:meth:`release.ledger.Ledger.person_sets`).

    Raises:
        StudyFormatError: the study folder has no readable person sets (exit 4).
        StudyContractError: the study's tables contradict each other (a quantity in two versions).
        LedgerRefusal: the release would publish a quantity in two versions across releases, or an
            earlier release keeps no person sets (a ledger of an older engine): fail closed.
    """
    began = time.perf_counter()
    if policy.rounding is not None:
        msg = "rounding of published counts is not implemented; a policy with rounding cannot be released"
        raise LedgerRefusal(msg)
    layouts = layout(study, threshold=policy.threshold)
    definitions = study.manifest.get("definitions")
    if not isinstance(definitions, dict):
        msg = (f"{study.path / 'manifest.json'}: no 'definitions' of the study's conditions (a folder of an older "
               "pfl-study?); without them the release cannot know what the definitions imply; run pfl-study again")
        raise StudyFormatError(msg)
    conditions = tuple(str(c) for c in study.manifest.get("conditions") or ())
    rels = relations(study.strata, _levels(layouts), definitions, conditions, steps=study.steps,
                     tables=tuple(layouts))
    records = list(earlier_records)
    persons = list(earlier_persons) if earlier_persons is not None else [None] * len(records)
    lacking = [str(r.get("release_id", "?")) for r, p in zip(records, persons, strict=True) if p is None]
    if lacking:
        msg = (f"the ledger refuses the release: {len(lacking)} earlier release(s) ({', '.join(lacking[:5])}) keep no "
               "person sets (recorded by an older engine), so this release cannot be checked against them by who is "
               "counted, only by name, which lets overlapping definitions be differenced; release into a new ledger "
               "of the population, or ask the data steward; nothing was written")
        raise LedgerRefusal(msg)
    withheld: dict[str, str] = {}
    if "costs" in layouts and _costs_released_before(earlier_records):
        # Two releases of magnitudes over one population could be differenced (another breakdown,
        # another set of conditions): claimed costs are released once per ledger (fail closed).
        withheld["costs"] = "claimed costs of this population were released before (one cost release per ledger)"
    milps = 0
    sets: Sets | None = None
    while True:
        model = _model(layouts, withheld, rels)
        if sets is None:  # after the tables' own contradictions, which are named first
            sets = study_sets(study, layouts)
        own_keys, own_equations = len(model.keys), len(model.equations)
        earlier = merge_earlier(model, records, threshold=policy.threshold)
        own, parts = _sets(model, sets, earlier.cell_ids, persons)
        overlaps = relate(model, [*parts, own.frame], threshold=policy.threshold)
        if policy.publish_zeros:
            model.merge_zero_identities()
        compiled = model.compile()
        ctx = context(model, compiled, relations=rels, earlier_published=earlier.published,
                      earlier_hidden=earlier.hidden, earlier_primary=earlier.primary)
        decision = decide(compiled, ctx, policy, time_limit=time_limit)
        milps += decision.milps
        if not decision.failures:
            break
        failure = decision.failures[0]
        involved = {occ.table for occ in model.occurrences
                    if occ.shown and np.isin(compiled.cell_of[occ.cells], failure.cells).any()}
        candidates = [t for t in reversed(ORDER) if t in involved and t not in withheld]
        if not candidates:
            if earlier.releases:
                msg = (f"the ledger refuses the release: cells of earlier releases admit no safe pattern together "
                       f"({failure.reason}); nothing was written")
                raise LedgerRefusal(msg)
            msg = f"no safe suppression pattern, even with every table withheld ({failure.reason}); nothing was written"
            raise ReleaseError(msg)
        withheld[candidates[0]] = f"no safe suppression pattern: {failure.reason}"
        for table, source in _DEPENDS.items():
            if source in withheld and table not in withheld:
                withheld[table] = f"its shares come from {source}, which is withheld"
    for table, source in _DEPENDS.items():
        if source in withheld and table not in withheld:
            withheld[table] = f"its shares come from {source}, which is withheld"
    frames, by_reason, status_counts = _frames(model, compiled, ctx.shown_now, decision, layouts, withheld, policy,
                                               rels)
    record, record_persons = _record(model, compiled, decision, ctx.shown_now, own_keys, own_equations, policy, own)
    # Hidden quantities the release shows, and the implied ones (complements, remainders) whose
    # protection drove suppression: each counted once, by the engine's reason.
    implied = decision.primary & ~ctx.shown_now & np.isin(compiled.kinds, ["complement", "remainder", "overlap"])
    cells = Counter(str(r) for r in decision.reasons[(decision.hidden & ctx.shown_now) | implied])
    return ReleaseContent(frames, layouts, withheld, rels, by_reason, dict(sorted(cells.items())), record,
                          earlier.releases, time.perf_counter() - began, milps, status_counts, record_persons,
                          overlaps)


def _sets(model: Model, sets: Sets, cell_ids: list[list[int]],
          persons: list[pl.DataFrame | pl.LazyFrame | None]) -> tuple[Own, list[pl.LazyFrame]]:
    """This release's and each earlier release's person sets, as (registered ``id``, ``person``)."""
    return own_sets(model, sets), [earlier_sets(model, frame, cell_ids[r]) for r, frame in enumerate(persons)]


def _costs_released_before(records: list[dict]) -> bool:
    """True when an earlier release's record holds a published or hidden cell of claimed costs."""
    for record in records:
        for cell in record.get("cells", []) if isinstance(record, dict) else []:
            keys = cell.get("keys", []) if isinstance(cell, dict) else []
            if cell.get("state") in ("published", "hidden") and any(
                    isinstance(k, list) and k and k[0] == "cost_persons" for k in keys):
                return True
    return False


def _magnitudes(model: Model, compiled: Compiled, decision: Decision, lay: TableLayout,
                rels: list[dict], policy: Policy) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The magnitude columns of a table and their means (release.magnitudes), row by row."""
    out: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    occurrences = {(o.table, o.column): o.cells for o in model.occurrences}
    for magnitude in lay.magnitudes:
        persons = compiled.cell_of[occurrences[(lay.name, magnitude.persons)]]
        count = next(c for c in lay.counts if c.name == magnitude.persons)
        pairs = nested_pairs(lay.frame, count.by, rels, count.quantity)
        out |= decide_magnitudes(lay.statistics, decision.hidden[persons], pairs, policy, magnitude)
    return out


def _frames(model: Model, compiled: Compiled, shown: np.ndarray, decision: Decision,
            layouts: dict[str, TableLayout], withheld: dict[str, str], policy: Policy, rels: list[dict],
            ) -> tuple[dict[str, pl.DataFrame], dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    values = compiled.table.values
    occurrences = {(o.table, o.column): o.cells for o in model.occurrences}
    frames, by_reason, statuses = {}, {}, {}
    for name, lay in layouts.items():
        if name in withheld:
            continue
        ratios = ratio_status(model, compiled, decision.hidden, shown, lay, policy.threshold)
        magnitudes = _magnitudes(model, compiled, decision, lay, rels, policy) if lay.magnitudes else {}
        columns = [pl.col(c) for c in lay.coordinates]
        reasons: Counter = Counter()
        status_count: Counter = Counter()
        for column in lay.values:
            if (name, column) in occurrences:
                cells = compiled.cell_of[occurrences[(name, column)]]
                hidden = decision.hidden[cells]
                value = pl.Series(column, values[cells], dtype=pl.Int64)
                value = value.scatter(np.flatnonzero(hidden), None) if hidden.any() else value
                status = np.where(hidden, "suppressed", "")
                reasons.update(str(r) for r in decision.reasons[cells][hidden])
            elif column in magnitudes:
                raw, status, why = magnitudes[column]
                value = pl.Series(column, raw.tolist(), dtype=pl.Int64)
                reasons.update(f"{column}:{r}" for r in why[status != ""].tolist())
            else:
                raw, status = ratios[column]
                value = pl.Series(column, raw, dtype=pl.Float64, nan_to_null=True)
                kind = "percentage" if column != "change_pp" else "change"
                reasons.update(np.where(status == "suppressed", kind, "below-threshold")[status != ""].tolist())
            status_count.update(("shown" if s == "" else s) for s in status.tolist())
            columns += [pl.lit(value), pl.lit(pl.Series(f"{column}_status", status, dtype=pl.String))]
        frames[name] = lay.frame.select(columns)
        by_reason[name] = dict(sorted(reasons.items()))
        statuses[name] = dict(sorted(status_count.items()))
    return frames, by_reason, statuses


def _record(model: Model, compiled: Compiled, decision: Decision, shown: np.ndarray, own_keys: int,
            own_equations: int, policy: Policy, own: Own) -> tuple[dict, pl.LazyFrame]:
    """The steward's record of this release: its own keys per cell, values, states, equations;
    and the persons behind its person counts, as (``cell``: index into the record's cells, ``person``)."""
    n = compiled.table.values.size
    keys_of: list[list] = [[] for _ in range(n)]
    for i in range(own_keys):
        keys_of[compiled.cell_of[i]].append(model.keys[i])
    cells = []
    position = np.full(n, -1, dtype=np.int64)
    for c in range(n):
        if not keys_of[c]:
            continue
        position[c] = len(cells)
        state = ("hidden" if decision.hidden[c] else "published") if shown[c] else "derived"
        cells.append({"keys": [key_to_json(k) for k in keys_of[c]], "value": int(compiled.table.values[c]),
                      "state": state, "kind": str(compiled.kinds[c]), "unit": str(compiled.units[c]),
                      "primary": bool(decision.primary[c]), "reason": str(decision.reasons[c])})
    representative = {c: keys_of[c][0] for c in range(n) if keys_of[c]}
    equations, seen = [], set()
    for total, children in model.equations[:own_equations]:
        t, ch = int(compiled.cell_of[total]), tuple(sorted(int(compiled.cell_of[c]) for c in children))
        if (t, ch) in seen or t in ch:
            continue
        seen.add((t, ch))
        equations.append([key_to_json(representative[t]), [key_to_json(representative[c]) for c in ch]])
    record = {"format": "pfl-ledger-record/1", "policy": policy.as_dict(), "cells": cells, "equations": equations}
    # One quantity's keys may have been merged since (equal sets, a total of one non-zero child):
    # the rows of one of them per cell.
    distinct = own.ids
    first = np.full(n, -1, dtype=np.int64)
    first[compiled.cell_of[distinct[::-1]]] = distinct[::-1]  # the smallest id of each cell
    cell = compiled.cell_of[distinct]
    kept = distinct[(first[cell] == distinct) & (position[cell] >= 0)]
    # Lazily, in the study files' order (count by count, cell by cell, persons sorted): written
    # to the ledger a batch at a time (release.transaction), never all in memory.
    persons = own.frame.join(pl.DataFrame({"id": kept, "cell": position[compiled.cell_of[kept]]},
                                          schema={"id": pl.Int64, "cell": pl.Int64}).lazy(),
                             on="id", maintain_order="left").select("cell", "person")
    return record, persons


