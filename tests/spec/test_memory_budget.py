"""``memory_gb`` -> K (execution/memory.py; issue 14, item 4), as a table of budgets.

The tables use a fixed model (a floor of 0.5 GB per process and 1,000 bytes per row) so that each
K can be checked by hand: peak(K) = 0.5 * processes + workers * 1000 * rows / K / 1e9, with
processes = 1 in process and workers + 1 with a pool.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from execution.memory import (
    STAGES,
    MemoryBudgetError,
    StageMemory,
    choose_partitions,
    generator_in_flight,
    input_rows,
    partitions_for,
    peak_gb,
)

MODEL = StageMemory(floor_gb=0.5, bytes_per_row=1_000.0)

#  rows           memory_gb  workers  K     why
BUDGETS = """
   1_000_000      4          1        1     1 GB of rows fits in 3.5 GB of room
   10_000_000     4          1        3     10 GB of rows / 3.5 GB of room -> 2.86 -> 3
   10_000_000     10.5       1        1     10 GB of rows fit in 10 GB of room exactly
   10_000_000     10.4       1        2     0.1 GB short of K = 1
   100_000_000    16         1        7     100 / 15.5 = 6.45 -> 7
   100_000_000    16         2        14    2 workers: floors 1.5 GB, 2 x 100 / 14.5 = 13.8 -> 14
   1_000_000_000  8          1        134   1000 / 7.5 = 133.3 -> 134
   0              1          1        1     an empty input is one partition
"""


def _rows() -> list[tuple[int, float, int, int]]:
    table = []
    for line in BUDGETS.strip().splitlines():
        rows, memory_gb, workers, k = line.split()[:4]
        table.append((int(rows.replace("_", "")), float(memory_gb), int(workers), int(k)))
    return table


@pytest.mark.parametrize(("rows", "memory_gb", "workers", "k"), _rows())
def test_memory_budget_gives_the_smallest_k_that_fits(rows: int, memory_gb: float, workers: int, k: int) -> None:
    assert choose_partitions("study", rows=rows, memory_gb=memory_gb, workers=workers, model=MODEL) == k
    assert peak_gb("study", rows=rows, partitions=k, workers=workers, model=MODEL) <= memory_gb
    if k > 1:
        assert peak_gb("study", rows=rows, partitions=k - 1, workers=workers, model=MODEL) > memory_gb


@pytest.mark.parametrize(("memory_gb", "workers"), [(0.5, 1), (0.4, 1), (1.5, 2), (1.0, 4)])
def test_memory_budget_below_the_floors_is_refused(memory_gb: float, workers: int) -> None:
    with pytest.raises(MemoryBudgetError, match=f"memory_gb={memory_gb} is below"):
        choose_partitions("study", rows=1000, memory_gb=memory_gb, workers=workers, model=MODEL)


WHOLE = StageMemory(floor_gb=0.5, bytes_per_row=1_000.0, whole_bytes_per_row=100.0)


@pytest.mark.parametrize(("rows", "memory_gb", "k", "peak"), [
    (10_000_000, 4, 3, 0.5 + 10 / 3),  # the partitions dominate: K as without whole passes
    (10_000_000, 1.6, 10, 1.5),  # whole passes 1 GB: K = 10 holds 1 GB a partition, the peak stays 1.5
    (30_000_000, 3.6, 10, 3.5),  # whole passes 3 GB at any K; the partitions fit at K = 10
])
def test_memory_budget_counts_the_passes_over_the_whole_input(rows: int, memory_gb: float, k: int,
                                                              peak: float) -> None:
    assert choose_partitions("study", rows=rows, memory_gb=memory_gb, model=WHOLE) == k
    assert peak_gb("study", rows=rows, partitions=k, model=WHOLE) == pytest.approx(peak)
    assert peak_gb("study", rows=rows, partitions=4096, model=WHOLE) >= 0.5 + WHOLE.whole_bytes_per_row * rows / 1e9


def test_memory_budget_below_the_whole_input_passes_is_refused() -> None:
    # 30 M rows: 3 GB of whole-input passes over a floor of 0.5 GB; no K brings that under 3.4 GB.
    with pytest.raises(MemoryBudgetError, match=r"memory_gb=3.4 is below the 3.50 GB .* whole input"):
        choose_partitions("study", rows=30_000_000, memory_gb=3.4, model=WHOLE)


@pytest.mark.parametrize("bad", [0, -1, True, "4", None])
def test_memory_budget_must_be_a_positive_number(bad: object) -> None:
    with pytest.raises(MemoryBudgetError, match="memory_gb must be a positive number"):
        choose_partitions("study", rows=1000, memory_gb=bad, model=MODEL)  # type: ignore[arg-type]


def test_memory_budget_that_needs_more_than_4096_partitions_is_refused() -> None:
    with pytest.raises(MemoryBudgetError, match="more than 4096 partitions"):
        choose_partitions("study", rows=10**13, memory_gb=1.0, model=MODEL)


def test_memory_budget_knows_every_partitioned_stage_and_no_other() -> None:
    assert set(STAGES) == {"generate", "supplier_ehr", "supplier_claims", "ttp", "link", "study"}
    with pytest.raises(ValueError, match="stage must be one of"):
        choose_partitions("release", rows=10, memory_gb=4)


#  chunk_persons  memory_gb  workers  blocks at once
IN_FLIGHT = [
    (200_000, None, 4, 4),  # no budget: the executor's workers
    (200_000, 1.0, 1, 1),  # in process: 0.5 + 0.2 GB
    (200_000, 4.0, 4, 4),  # pool: 0.5 + 4 * 0.7 = 3.3 GB
    (200_000, 2.0, 4, 2),  # (2.0 - 0.5) // 0.7 = 2
    (1_000_000, 3.0, 8, 1),  # (3.0 - 0.5) // 1.5 = 1
]


@pytest.mark.parametrize(("chunk", "memory_gb", "workers", "blocks"), IN_FLIGHT)
def test_generator_budget_caps_the_blocks_drawn_at_once(chunk: int, memory_gb: float | None, workers: int,
                                                       blocks: int) -> None:
    assert generator_in_flight(chunk_persons=chunk, memory_gb=memory_gb, workers=workers, model=MODEL) == blocks


@pytest.mark.parametrize(("memory_gb", "workers"), [(0.6, 1), (1.1, 2)])
def test_generator_budget_below_one_block_is_refused(memory_gb: float, workers: int) -> None:
    with pytest.raises(MemoryBudgetError, match="one generator block of 200000 persons"):
        generator_in_flight(chunk_persons=200_000, memory_gb=memory_gb, workers=workers, model=MODEL)


def test_partitions_auto_takes_k_from_memory_gb_and_a_number_wins() -> None:
    rows = 10**9
    chosen = choose_partitions("study", rows=rows, memory_gb=8)
    assert partitions_for({"partitions": "auto", "memory_gb": 8}, stage="study", rows=rows) == chosen
    assert partitions_for({"partitions": None, "memory_gb": 8}, stage="study", rows=rows) == chosen
    assert partitions_for({"partitions": 3, "memory_gb": 8}, stage="study", rows=rows) == 3
    with pytest.raises(MemoryBudgetError, match="partitions=auto needs memory_gb"):
        partitions_for({"partitions": "auto", "memory_gb": None}, stage="study", rows=rows)
    with pytest.raises(ValueError, match="partitions must be a whole number >= 1 or auto"):
        partitions_for({"partitions": 0}, stage="study", rows=rows)


def test_input_rows_counts_parquet_footers_and_csv_lines(tmp_path: Path) -> None:
    pl.DataFrame({"a": range(7)}).write_parquet(tmp_path / "t.parquet")
    (tmp_path / "sub").mkdir()
    pl.DataFrame({"a": range(5), "b": ["x"] * 5}).write_csv(tmp_path / "sub" / "u.csv")
    (tmp_path / "notes.json").write_text("{}")
    assert input_rows(tmp_path) == 12


# Input rows of the claims supplier step (insured, claims, insurer_years), counted by input_rows
# on the generated presets (docs/guide-data-steward.md section 11).
NIVEL_CLAIMS_ROWS = 143_000_000
NATIONAL_CLAIMS_ROWS = 371_000_000


@pytest.mark.parametrize(("rows", "memory_gb"), [(NATIONAL_CLAIMS_ROWS, 4), (NIVEL_CLAIMS_ROWS, 2)])
def test_claims_supplier_step_fits_national_in_4_gb_and_nivel_in_2(rows: int, memory_gb: float) -> None:
    """Issue 14, item 4: the supplier step's passes over the whole input are bounded by K (hash
    buckets, per-partition BSN lists, a token range at a time), so the measured model sizes K
    for national claims at memory_gb=4 instead of refusing it (it needed 7.3 GB whatever K)."""
    k = choose_partitions("supplier_claims", rows=rows, memory_gb=memory_gb)
    assert peak_gb("supplier_claims", rows=rows, partitions=k) <= memory_gb
    assert k == 1 or peak_gb("supplier_claims", rows=rows, partitions=k - 1) > memory_gb  # the smallest K
    print(f"supplier_claims, {rows:,} rows, memory_gb={memory_gb}: K = {k}")


COUNTRY_CONTENT_ROWS = 1_140_000_000  # for_research rows of the country preset (linkage's input rows)


NATIONAL_CONTENT_ROWS = 443_000_000


def test_linkage_fits_national_in_4_gb_now_that_nothing_of_it_is_person_sized() -> None:
    """Issue 14, item 4: the person numbers hold a range of labels, the reduce a chunk of rows and
    the report a pass of persons (one per partition), so national's linkage is sized by K at
    memory_gb=4 instead of refused (its person-sized passes were modelled at 4.75 GB)."""
    k = choose_partitions("link", rows=NATIONAL_CONTENT_ROWS, memory_gb=4)
    assert peak_gb("link", rows=NATIONAL_CONTENT_ROWS, partitions=k) <= 4
    assert k == 1 or peak_gb("link", rows=NATIONAL_CONTENT_ROWS, partitions=k - 1) > 4
    assert STAGES["link"].whole_bytes_per_row == 0  # no pass over the whole input grows with it


def test_linkage_fits_country_in_12_gb_in_partitions_and_counts_its_person_sized_passes() -> None:
    """Issue 14, item 4: linkage's partitions no longer carry the content nor sort it in the reduce,
    and what no K divides is bounded, so the measured 20.6 GB of country at K = 2 is now modelled
    under 12 GB and K = 1 does not fit it."""
    k = choose_partitions("link", rows=COUNTRY_CONTENT_ROWS, memory_gb=12)
    assert k > 1 and peak_gb("link", rows=COUNTRY_CONTENT_ROWS, partitions=k) <= 12
    assert peak_gb("link", rows=COUNTRY_CONTENT_ROWS, partitions=k - 1) > 12
    whole = STAGES["link"].whole_gb + STAGES["link"].whole_bytes_per_row * COUNTRY_CONTENT_ROWS / 1e9
    assert peak_gb("link", rows=COUNTRY_CONTENT_ROWS, partitions=4096) >= whole  # no K goes below them


PERSONS = StageMemory(floor_gb=0.5, bytes_per_row=0.0, bytes_per_person=1_000.0)


@pytest.mark.parametrize(("rows", "persons", "memory_gb", "k"), [
    (10**9, 1_000_000, 4, 1),  # a billion rows of a million persons: 1 GB a partition at K = 1
    (10**6, 10_000_000, 4, 3),  # few rows, many persons: 10 GB of persons / 3.5 GB of room -> 3
    (10**9, 21_400_000, 12.25, 2),  # 21.4 GB of persons / 11.75 GB -> 1.8 -> 2
])
def test_memory_budget_counts_the_persons_of_a_partition(rows: int, persons: int, memory_gb: float, k: int) -> None:
    """A stage whose partitions hold per-person tables (the study: ~2.9 kB a GP patient on country,
    whatever their rows) is sized by its persons too: the rows alone undercount where persons have
    few rows each."""
    assert choose_partitions("study", rows=rows, persons=persons, memory_gb=memory_gb, model=PERSONS) == k
    assert peak_gb("study", rows=rows, persons=persons, partitions=k, model=PERSONS) <= memory_gb
    if k > 1:
        assert peak_gb("study", rows=rows, persons=persons, partitions=k - 1, model=PERSONS) > memory_gb


# (layout, rows, GP patient records, K, measured peak GB): the seed study in process, issue 14 item 4.
STUDY_MEASURED = [
    ("nivel", 223_200_000, 2_263_789, 2, 3.37),
    ("national", 461_640_000, 2_263_789, 2, 6.08),  # nivel's EHR beside 17.8 M insured
    ("country", 1_136_338_122, 21_207_958, 3, 20.7),
    ("country", 1_136_338_122, 21_207_958, 6, 10.51),
]


@pytest.mark.parametrize(("layout", "rows", "persons", "k", "measured"), STUDY_MEASURED)
def test_the_study_model_promises_no_less_than_was_measured(layout: str, rows: int, persons: int, k: int,
                                                            measured: float) -> None:
    """country's seed study at K = 3 peaked at 20.7 GB where a per-row model said about 12, and
    national's at K = 2 at 6.08 GB where a per-record model said 3.6 (its claims of persons outside
    the EHR): the model must not promise less than any measured run."""
    assert peak_gb("study", rows=rows, persons=persons, partitions=k) >= measured, layout


def test_the_study_model_sizes_national_in_4_gb_and_country_in_12() -> None:
    k = choose_partitions("study", rows=461_640_000, persons=2_263_789, memory_gb=4)
    assert k == 4 and peak_gb("study", rows=461_640_000, persons=2_263_789, partitions=k) <= 4
    k = choose_partitions("study", rows=1_136_338_122, persons=21_207_958, memory_gb=12)
    assert k == 7 and peak_gb("study", rows=1_136_338_122, persons=21_207_958, partitions=k) <= 12
