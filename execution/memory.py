"""How many partitions fit a memory budget (``memory_gb=``; issue 14, item 4).

The model, per stage, from two measured figures (:data:`STAGES`; ``benchmarks/partitioned_pipeline.py``
measures them, K = 1 on the local executor, docs/guide-data-steward.md):

- ``floor_gb``: what a process of the stage holds before it reads data (interpreter, polars,
  pyarrow, the stage's code; for the generator also its plan);
- ``bytes_per_row``: the stage's peak above its floor divided by its input rows (rows of every
  table of its input folder: the extract for the supplier step, ``for_ttp`` for the TTP step,
  ``for_research`` for linkage, the linked folder for the study).

- ``bytes_per_person`` (0 where the rows say enough): what its partitions hold per person, for a
  stage whose partitions hold per-person tables (the study: per GP patient record, whatever their
  rows; ``cohort.partitioned.layout_persons``).

- ``whole_bytes_per_row`` and ``whole_gb`` (0 where none was measured): what the stage's passes
  over its whole input hold, whatever K: per input row (a pass that keeps something of every row
  or person), and in all (streaming passes, whose buffers do not grow with the input) -- the
  supplier step's validation and split, with their buffers bounded since issue 14's item 4
  (unique keys checked in K hash buckets, no list of every BSN, the reduce a token range at a
  time): ``whole_gb`` only.

A stage run as K partitions, ``workers`` at once, holds ``rows / K`` rows in each running
partition, and before and after them its whole-input passes, so its peak is about::

    peak(K) = floor_gb * processes + max(whole_gb + whole_bytes_per_row * rows,
                                         workers * (bytes_per_row * rows + bytes_per_person * persons) / K)

where ``processes`` is 1 in process and ``workers + 1`` with a pool (each worker and the caller
have a floor). The chooser returns the smallest K whose peak fits the budget: more partitions
than that only add per-partition overhead; a budget below the whole-input passes is refused,
as no K fits it. The figures are estimates, not limits: leave room
for the operating system and the page cache.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

__all__ = ["STAGES", "MemoryBudgetError", "StageMemory", "checked_partitions", "choose_partitions", "generator_in_flight",
           "input_rows", "partitions_for", "peak_gb"]

GB = 1e9
MAX_PARTITIONS = 4096


class MemoryBudgetError(ValueError):
    """``memory_gb`` is below what one partition of the stage needs (or not a positive number)."""


@dataclass(frozen=True)
class StageMemory:
    """Measured memory figures of one stage (see the module docstring)."""

    floor_gb: float
    bytes_per_row: float
    whole_bytes_per_row: float = 0.0
    whole_gb: float = 0.0
    bytes_per_person: float = 0.0


# floor_gb: a stage's process before data (imports, Hydra): 0.25 GB (the audit, which reads almost
# nothing, peaks at 0.24-0.25 GB on demo). bytes_per_row: (peak - floor) / input rows at the largest
# measured sizes, where the part that grows with the data dominates (README: nivel and national on
# the 2-core machine; input rows scaled from demo's, measured by input_rows, per generated person:
# supplier EHR 71.6 M rows at nivel and national, claims 143 M / 371 M, TTP 20.7 M / 47 M, link
# 215 M / 443 M, study 221 M / 457 M), the larger of the two. The generator's row is a person of a
# block: 1.80 GB for demo's one block of 180,723 persons, 2.43 GB per worker for the country
# preset's blocks of 250,000 (benchmarks/partitioned_pipeline.py, docs/guide-data-steward.md).
# Measured again on nivel with polars 2.1 at K = 1 (2026-12-05, issue 14 item 4): the supplier
# step on the EHR peaked at 1.84 GB; on the claims it was killed by the kernel's OOM killer at
# 17.5 GB resident (a lower bound: 120 bytes per row, not 23). The other stages' figures are
# from before polars 2.1; measure them again with benchmarks/partitioned_pipeline.py --extracts.
# whole_gb of the claims supplier step: its passes over the whole extract (validation, the split)
# since they hold no person-sized table (issue 14, item 4), measured on nivel380k (28.6 M rows,
# K = 5, 2026-12-05): 1.16 GB validating, 1.33 GB splitting, 1.08 GB above the floor, with the
# Parquet prefetch that pfl-supplier sets under a budget. Before, 19 bytes per input row (nivel:
# 2.89 GB), which refused memory_gb=4 on national whatever K.
FLOOR_GB = 0.25
STAGES: dict[str, StageMemory] = {
    "generate": StageMemory(floor_gb=FLOOR_GB, bytes_per_row=8_700.0),
    "supplier_ehr": StageMemory(floor_gb=FLOOR_GB, bytes_per_row=22.0),  # nivel 1.84 GB (was 1.03)
    # nivel, memory_gb=4 (K = 5): 3.89 GB; its whole-input passes 1.33 GB on nivel380k, not growing with the rows
    "supplier_claims": StageMemory(floor_gb=FLOOR_GB, bytes_per_row=120.0, whole_gb=1.1),
    # TTP (2026-12-05, issue 14 item 4): nivel, 19.97 M input rows (identifiers and encodings of both
    # for_ttp folders), byte-identical outputs at every K: K = 4 peaked at 1.80 GB (311 B/row over the
    # floor at K = 4); the whole-input passes (the largest supplier's token map, sorted and written as one
    # file, beside the fallback's labels and its part of the claims register) at K = 8 at 1.78 GB (77 B/row).
    # national (48.1 M rows, 2026-12-06), the token maps then sorted a token range at a time
    # (pseudonymisation/ttp_partitioned.py::write_token_map; before: 4.60 GB at K = 4): K = 4 3.18 and
    # 3.20 GB, K = 8 2.56 GB, where the partitions hold 1.2 GB by 311 B/row: the passes over the whole
    # input (the fallback's labels and its part of the register, the checks) at most 2.31 GB: 48 B/row.
    "ttp": StageMemory(floor_gb=FLOOR_GB, bytes_per_row=311.0, whole_bytes_per_row=48.0),
    # Linkage (2026-12-05, issue 14 item 4, after its split carried only row numbers and tokens and its
    # reduce stopped sorting the whole table): nivel's for_research folders, 225.5 M input rows, in
    # process, peak resident memory sampled per phase (load 5-12 on the 2 cores): K = 4 peaked at
    # 2.89 and 2.98 GB (before: killed by the OOM killer at 14.49 GB, in its reduce; K = 1, whose
    # path is unchanged, 3.11-3.12 GB), the partitions at 0.86 GB
    # ((0.86 - floor) x 4 / rows: 10.8 B/row, rounded up to 11). The passes over the whole input:
    # the reduce, a chunk of a million content rows at a time, 1.21 GB whatever the rows (whole_gb:
    # 0.96 above the floor); the person-sized ones, the person numbers 1.64 GB, the split of the
    # token maps with their person numbers 2.93 GB, the linkage report 2.72 GB: (2.93 - 1.21) / rows
    # = 7.6 B/row, rounded up to 8 (per input row, hence on the safe side where a person has more
    # rows than in nivel, as in country). Before item 4 (nivel, K = 1): 12 B/row, national 5.46 GB.
    # country (1.136 G rows, 2026-12-06): K = 2 in process 10.40 GB (modelled 10.3); K = 3 on Dask's
    # two workers, the person numbers made a range of labels at a time (linkage/persons.py), the
    # driver 10.51 GB: what decided the peak there was the linkage report, alone 12.05 GB on country's
    # linked layout (nivel 2.80 GB). Counted in K passes of persons since (linkage/report.py; nivel
    # 2.31 GB at K = 1, 0.70 at K = 4: 9 B/row / K, under the partitions' 11), so nothing of linkage
    # is person-sized whatever K: the person numbers hold a range of BUCKET_ROWS labels, the reduce a
    # chunk of rows (whole_gb). Before, 8 B/row of whole-input passes refused memory_gb=4 on national.
    "link": StageMemory(floor_gb=FLOOR_GB, bytes_per_row=11.0, whole_gb=0.96),
    # nivel's linked folder (223.2 M rows), in process (2026-12-05, issue 14 item 4, after a partition
    # stopped collecting the persons behind its counts): K = 2 3.37 GB, K = 4 1.91 GB; its passes over
    # the whole layout (the split, X6, the reduce of the persons, the writing) peaked at 1.22 GB
    # (splitting the claims). K = 1 runs another path (no partitions): 5.9-6.4 GB on nivel.
    # A partition holds per-person tables (the population, its attrition chain, its outcomes per
    # year) of its GP patients: country at K = 3 (1.136 G rows, 21.2 M patient records) peaked at
    # 20.7 GB, where 30 B per row said 12. Fitted to both, the partitions hold about 2.9 kB per GP
    # patient record ((3.37 - 0.25) x 2 / 2.26 M = 2.76 kB on nivel at K = 2, 2.94 kB at K = 4;
    # (20.7 - 0.25) x 3 / 21.2 M = 2.89 kB on country) and nothing measurable per claims row (a fit
    # with a term per EHR row and one per claims row gives the claims a negative one): 3,000 B per
    # patient record (cohort.partitioned.layout_persons), none per row.
    # national (2026-12-06: nivel's EHR, 2.26 M patient records, with 17.8 M insured: 461.6 M rows)
    # at K = 2 peaked at 6.08 GB, in its partitions (sampled: the split 1.1 GB, the reduce 0.6):
    # (6.08 - 0.25) x 2 = 11.7 GB for the partitions, where nivel's same EHR with 6.9 M insured
    # (223.2 M rows) took 6.2: the claims of persons outside the EHR cost too (about 24 B a row
    # of the claims side from nivel to national), which the three layouts do not fit with one
    # linear model (country's partitions hold more per record). The model is the envelope of all
    # three: 3,000 B per patient record and 13 B per input row (nivel 9.7 GB modelled against
    # 6.2 measured, national 12.8 against 11.7, country 78.4 against 61.6).
    "study": StageMemory(floor_gb=FLOOR_GB, bytes_per_row=13.0, whole_bytes_per_row=4.4, bytes_per_person=3_000.0),
}


def _model(stage: str, model: StageMemory | None = None) -> StageMemory:
    if model is not None:
        return model
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {sorted(STAGES)}, not {stage!r}")
    return STAGES[stage]


def _budget(memory_gb: object) -> float:
    if (isinstance(memory_gb, bool) or not isinstance(memory_gb, int | float) or not memory_gb > 0
            or not math.isfinite(memory_gb)):
        raise MemoryBudgetError(f"memory_gb must be a positive number of gigabytes, not {memory_gb!r}")
    return float(memory_gb)


def _floors(model: StageMemory, workers: int) -> float:
    return model.floor_gb * (1 if workers <= 1 else workers + 1)


def peak_gb(stage: str, *, rows: int, partitions: int, workers: int = 1, persons: int = 0,
            model: StageMemory | None = None) -> float:
    """The model's peak memory (GB) of ``stage`` on ``rows`` input rows of ``persons`` persons in ``partitions`` parts."""
    model = _model(stage, model)
    running = min(workers, partitions)
    return _floors(model, running) + max(_whole_gb(model, rows),
                                         running * _partitioned_bytes(model, rows, persons) / partitions / GB)


def _partitioned_bytes(model: StageMemory, rows: int, persons: int) -> float:
    """What all partitions together hold: per input row and per person."""
    return model.bytes_per_row * rows + model.bytes_per_person * persons


def _whole_gb(model: StageMemory, rows: int) -> float:
    """What the stage's passes over its whole input hold, whatever K."""
    return model.whole_gb + model.whole_bytes_per_row * rows / GB


def choose_partitions(stage: str, *, rows: int, memory_gb: float, workers: int = 1, persons: int = 0,
                      model: StageMemory | None = None) -> int:
    """The smallest K (1..4096) whose modelled peak fits ``memory_gb``.

    ``model`` replaces the stage's measured figures (:data:`STAGES`), e.g. figures measured on
    another machine.

    Raises:
        MemoryBudgetError: the budget does not hold the stage's floors, or not even K = 4096 fits.
    """
    budget = _budget(memory_gb)
    model = _model(stage, model)
    workers = max(1, int(workers))
    room = budget - _floors(model, workers)
    if room <= 0:
        raise MemoryBudgetError(
            f"memory_gb={memory_gb} is below the {_floors(model, workers):.2f} GB that {workers} worker(s) "
            f"of stage {stage} need before any data; give more memory or fewer workers")
    whole = _whole_gb(model, rows)
    if whole > room:
        raise MemoryBudgetError(
            f"memory_gb={memory_gb} is below the {_floors(model, workers) + whole:.2f} GB that stage {stage}'s "
            f"passes over its whole input ({rows:,} rows) need, whatever the partitions; give more memory")
    k = max(1, math.ceil(workers * _partitioned_bytes(model, rows, persons) / (room * GB)))
    if k > MAX_PARTITIONS:
        raise MemoryBudgetError(f"memory_gb={memory_gb} would need more than {MAX_PARTITIONS} partitions "
                                f"of stage {stage}; give more memory or fewer workers")
    return k


def generator_in_flight(*, chunk_persons: int, memory_gb: float | None, workers: int,
                        model: StageMemory | None = None) -> int:
    """How many generator blocks to draw at once: the workers, fewer if ``memory_gb`` says so.

    The generator's blocks are fixed (``chunk_persons`` persons; part of the seed's meaning), so a
    budget bounds the blocks in flight, not their size: in process one block over one floor; in a
    pool, the caller's floor plus a floor and a block per worker.
    """
    workers = max(1, int(workers))
    if memory_gb is None:
        return workers
    budget = _budget(memory_gb)
    model = _model("generate", model)
    block = model.bytes_per_row * chunk_persons / GB
    if workers == 1:
        fits = 1 if budget >= model.floor_gb + block else 0
    else:
        fits = int((budget - model.floor_gb) // (model.floor_gb + block))
    if fits < 1:
        need = model.floor_gb + block if workers == 1 else 2 * model.floor_gb + block
        raise MemoryBudgetError(
            f"memory_gb={memory_gb} is below the {need:.2f} GB that one generator block of {chunk_persons} "
            f"persons needs; give more memory, or draw blocks in process (executor=local)")
    return min(workers, fits)


def input_rows(folder: Path) -> int:
    """Rows of every table in ``folder`` and below: Parquet from its footers, CSV by lines."""
    rows = 0
    for path in sorted(Path(folder).rglob("*")):
        if path.suffix == ".parquet":
            rows += pq.ParquetFile(path).metadata.num_rows
        elif path.suffix == ".csv":
            with path.open("rb") as fh:
                rows += max(0, sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 24), b"")) - 1)
    return rows


def partitions_for(cfg: Mapping[str, Any], *, stage: str, rows: int, workers: int = 1, persons: int = 0) -> int:
    """``cfg.partitions`` when it is a number; when it is ``auto`` or null, K from ``cfg.memory_gb``.

    ``partitions: auto`` without ``memory_gb`` is refused: there is nothing to size K by.
    """
    k = cfg.get("partitions", 1)
    if k is None or k == "auto":
        memory_gb = cfg.get("memory_gb")
        if memory_gb is None:
            raise MemoryBudgetError("partitions=auto needs memory_gb=<gigabytes> to choose the partitions by")
        return choose_partitions(stage, rows=rows, memory_gb=memory_gb, workers=workers, persons=persons)
    return checked_partitions(k, auto=True)


def checked_partitions(k: object, *, auto: bool = False) -> int:
    """``k`` when it is a whole number from 1 to 4096: more would only hold the tasks' arguments (and
    a scheduler's graph) in memory, never a useful partition size (``auto`` stops at the same limit)."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_PARTITIONS:
        also = " or auto" if auto else ""
        raise ValueError(f"partitions must be a whole number >= 1{also}, at most {MAX_PARTITIONS}, not {k!r}")
    return k
