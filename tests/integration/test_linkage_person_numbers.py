"""Person numbers of a linkage, a range of labels at a time (``linkage.persons``; issue 14, item 4).

The numbers are the rank of each labelled pseudonym among all of the project's token maps, in
label order: the same numbers and the same ``persons.parquet`` bytes whether the labels are
numbered at once or range by range, and a range at a time holds a fraction of the memory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage import persons as numbering
from linkage.persons import number_persons, numbered_tokens

QUIET = {"POLARS_MAX_THREADS": "1", "POLARS_IDEAL_MORSEL_SIZE": "5000", "POLARS_ROW_GROUP_PREFETCH_SIZE": "1",
         "POLARS_MAX_CONCURRENT_SCANS": "1", "_RJEM_MALLOC_CONF": "dirty_decay_ms:0,muzzy_decay_ms:0"}


def _maps(root: Path, persons: int, seed: int, *, head: str = "P2v1.68ac950b.") -> dict[str, Path]:
    """Two token maps (EHR, claims) over ``persons`` pseudonyms (``head`` + 32 random hex digits, as
    the TTP labels them), most in both, with link methods."""
    rng = np.random.default_rng(seed)
    raw = np.frombuffer(rng.bytes(16 * persons), dtype="S16")
    labels = head + pl.Series(raw, dtype=pl.Binary).bin.encode("hex")
    root.mkdir(parents=True, exist_ok=True)
    maps = {}
    for i, supplier in enumerate(("ehr", "claims")):
        keep = rng.random(persons) < (0.6 if i == 0 else 0.9)
        n = int(keep.sum())
        frame = pl.DataFrame({"token": rng.integers(-2**62, 2**62, n, dtype=np.int64), "p2": labels.filter(keep),
                              "link_method": rng.choice(["bsn", "insurance_number"], n)})
        frame.write_parquet(root / f"{supplier}.parquet")
        maps[supplier] = root / f"{supplier}.parquet"
    return maps


def _expected(maps: dict[str, Path]) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """The numbers made at once: every distinct label in label order, and each map's tokens numbered."""
    labels = pl.concat([pl.read_parquet(p).select(pl.col("p2").alias("p2_label")) for p in maps.values()])
    numbers = labels.unique().sort("p2_label").with_row_index("p2").with_columns(pl.col("p2").cast(pl.Int64))
    tokens = {s: pl.read_parquet(p).join(numbers, left_on="p2", right_on="p2_label").select("token", "p2_right")
              .rename({"p2_right": "p2"}).sort("token") for s, p in maps.items()}
    return numbers, tokens


@settings(max_examples=15, deadline=None)
@given(persons=st.integers(1, 400), bucket=st.integers(1, 120), seed=st.integers(0, 2**16))
def test_numbers_by_range_are_the_numbers_at_once(persons: int, bucket: int, seed: int, tmp_path_factory) -> None:
    root = tmp_path_factory.mktemp("numbers")
    maps = _maps(root / "in", persons, seed)
    numbers, tokens = _expected(maps)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(numbering, "BUCKET_ROWS", bucket)
        count = number_persons(maps, root / "persons.parquet", root / "work")
    assert count == numbers.height
    assert pl.read_parquet(root / "persons.parquet").equals(numbers.select("p2", "p2_label"))
    for supplier, expected in tokens.items():
        got = numbered_tokens(root / "work", supplier).collect()
        assert got.select("token", "p2").sort("token").equals(expected)
        both = pl.read_parquet(maps[supplier]).join(got, on="token")
        assert both.height == got.height
        assert both["link_method"].to_list() == both["link_method_right"].cast(pl.String).to_list()
    whole = root / "whole"
    number_persons(maps, whole.with_suffix(".parquet"), whole)  # at once (BUCKET_ROWS above the rows)
    assert (root / "persons.parquet").read_bytes() == whole.with_suffix(".parquet").read_bytes()


def test_ranges_are_used_for_many_rows_and_labels_of_another_shape_at_once(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(numbering, "BUCKET_ROWS", 50)
    maps = _maps(tmp_path / "in", 3000, 1)
    number_persons(maps, tmp_path / "persons.parquet", tmp_path / "work")
    assert (tmp_path / "work" / "ranges").is_dir()  # 16^2 ranges of about 20 rows
    assert len(list((tmp_path / "work" / "numbered").glob("*.parquet"))) == 256
    odd = _maps(tmp_path / "odd", 3000, 1, head="P2-")  # no dot: numbered at once
    count = number_persons(odd, tmp_path / "odd.parquet", tmp_path / "odd-work")
    assert not (tmp_path / "odd-work" / "ranges").exists()
    assert count == _expected(odd)[0].height
    assert pl.read_parquet(tmp_path / "odd.parquet").equals(_expected(odd)[0].select("p2", "p2_label"))


NUMBER = """
import sys
from pathlib import Path
from linkage import persons
persons.BUCKET_ROWS = int(sys.argv[3])
root = Path(sys.argv[1])
def peak():
    return int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
before = peak()
persons.number_persons({"ehr": root / "ehr.parquet", "claims": root / "claims.parquet"}, Path(sys.argv[2]),
                       Path(sys.argv[2]).with_suffix(".work"))
print(before, peak())
"""


def _grown_mb(root: Path, bucket_rows: int, name: str) -> float:
    """What numbering the token maps under ``root`` adds to a fresh process's peak, in MB."""
    out = root / f"{name}.parquet"
    done = subprocess.run([sys.executable, "-c", NUMBER, str(root), str(out), str(bucket_rows)],
                          capture_output=True, text=True, env={**os.environ, **QUIET})
    assert done.returncode == 0, done.stderr[-3000:]
    before, after = map(int, done.stdout.split()[-2:])
    return (after - before) / 1024


def test_numbering_a_range_at_a_time_holds_a_fraction_of_numbering_at_once(tmp_path: Path) -> None:
    """1.2 M pseudonyms (1.8 M rows of token maps): numbered at once, their sort and join hold
    hundreds of MB above the interpreter (464 MB at 1.5 M persons); a range at a time (256 ranges
    here), the split's buffers and one range: a quarter of that (112 MB), and the same bytes."""
    maps = _maps(tmp_path, 1_200_000, 3)
    at_once = _grown_mb(tmp_path, 10**12, "once")
    ranges = _grown_mb(tmp_path, 10_000, "ranges")
    assert (tmp_path / "ranges.work" / "ranges").is_dir() and not (tmp_path / "once.work" / "ranges").exists()
    assert ranges < at_once / 2, f"a range at a time {ranges:.0f} MB, at once {at_once:.0f} MB"
    assert (tmp_path / "ranges.parquet").read_bytes() == (tmp_path / "once.parquet").read_bytes()
    assert pl.scan_parquet(tmp_path / "once.parquet").select(pl.len()).collect().item() == _expected(maps)[0].height


GOOD = [f"P2v1.68ac950b.{i:032x}" for i in range(0, 2**128, 2**124)]  # 16 labels, one per first hex digit


@pytest.mark.parametrize(("odd", "why"), [
    ("P2v1.00000000.ff", "another key id: the heads differ"),
    ("P2v1.68ac950b.F0", "upper-case hex"),
    ("P2v1.68ac950b.f", "fewer hex digits than the ranges use"),
    ("P2v1.68ac950b.zz", "not hex"),
    ("P2-ff", "no dot"),
    (None, "a missing label"),
    ("P2v1.68ac950b.ff.00", "a dot in the tail: another head"),
])
def test_labels_of_another_shape_anywhere_are_numbered_at_once(monkeypatch: pytest.MonkeyPatch, odd: str | None,
                                                              why: str) -> None:
    monkeypatch.setattr(numbering, "BUCKET_ROWS", 1)  # 17 rows: 2 hex digits (256 ranges)
    good = pl.LazyFrame({"p2": GOOD}, schema={"p2": pl.String})
    assert numbering._ranges([good], 17) == (len("P2v1.68ac950b."), 2)
    for where in range(len(GOOD) + 1):  # first, last or anywhere between: the least and greatest alone miss it
        odd_map = pl.LazyFrame({"p2": GOOD[:where] + [odd] + GOOD[where:]}, schema={"p2": pl.String})
        assert numbering._ranges([odd_map], 17) == (0, 0), why
        assert numbering._ranges([good, pl.LazyFrame({"p2": [odd]}, schema={"p2": pl.String})], 17) == (0, 0), why
