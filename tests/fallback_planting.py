"""Plant known identifiers and missing BSNs into generated extracts (fallback tests, benchmarks).

The generator fills the contract-v2 identifier columns itself (issue 13, item 2, with its own
noise); this copy of the extracts (:func:`plant_identifiers`) *replaces* the family name, initials,
postcode (PC6), house number and insurance number with planted ones of a known, simpler shape, for
tests and benchmarks that want the noise fixed here (tests/integration/test_fallback_linkage.py;
benchmarks/fallback_linkage.py plants only into extracts without the columns):

- every person of the generator's truth (``truth/persons``) gets a surname of Zipf-like frequency
  (a Dutch prefix on some), one to three initials and a household address (PC6, house number; about
  two persons per address);
- claims ``insured``: the person's planted identifiers, and per year an insurance number derived
  from the person and the insurer;
- EHR ``patients``: the person's planted identifiers with the insurer and number of the person's
  latest ``insured`` year, and noise: a typing error in 3 % of family names, 5 % moved (PC6
  ``9999ZZ``), insurer and number known for half the records; and the BSN removed from
  ``missing_bsn_share`` of the records that had one (listed in ``truth/planted_missing_bsn.parquet``).

The optional ``given_name``, ``street`` and ``city`` stay as generated (they do not follow the
planted address), and the truth (``truth/patients``: the person of every record) stays as
generated, so precision and recall of the fallback can be measured.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl

__all__ = ["plant_identifiers"]

_CORES = ["jansen", "vries", "berg", "bakker", "visser", "smit", "meijer", "boer", "mulder", "groot", "bos",
          "vos", "peters", "hendriks", "leeuwen", "dekker", "brouwer", "wit", "dijkstra", "smits", "graaf",
          "linden", "kok", "jacobs", "haan", "vermeulen", "heuvel", "veen", "broek", "bruijn", "schouten",
          "beek", "willems", "hoekstra", "maas", "verhoeven", "koster", "prins", "blom", "huisman", "kuipers"]
_PREFIXES = ["", "", "", "", "van", "de", "van der", "van den", "ter"]
_PLANTED = ("family_name", "initials", "postcode6", "house_number", "insurance_number")


def _read(path: Path) -> pl.DataFrame:
    return pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path, infer_schema=False)


def _write(frame: pl.DataFrame, path: Path) -> None:
    if path.suffix == ".parquet":
        frame.write_parquet(path)
    else:
        frame.write_csv(path, date_format="%Y-%m-%d")


def _table(folder: Path, name: str) -> Path:
    return next(p for p in (folder / f"{name}.parquet", folder / f"{name}.csv") if p.exists())


def _people(persons: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    n = persons.height
    # Zipf-like surname frequencies (a few very common, a long tail made unique by a suffix).
    rank = np.minimum(rng.zipf(1.3, n), 10_000)
    core = [(_CORES[r % len(_CORES)] + ("" if r < len(_CORES) else f"{'aeiou'[r % 5]}{r}")) for r in rank]
    prefix = rng.choice(_PREFIXES, n)
    family = [f"{p} {c.capitalize()}".strip() for p, c in zip(prefix, core, strict=True)]
    households = max(n // 2, 1)  # about two persons per address
    household = rng.integers(0, households, n)
    pc_number = 1000 + household % 8999
    letters = np.array([chr(65 + i) + chr(65 + j) for i in range(26) for j in range(26)
                        if not (i == 18 and j in (0, 3, 18))])
    return persons.select("person").with_columns(
        family_name=pl.Series(family),
        initials=pl.Series(["".join(rng.choice(list("ABCDEGHJKLMNPRSTW"), k)) for k in rng.integers(1, 4, n)]),
        postcode6=pl.Series([f"{a}{b}" for a, b in zip(pc_number, letters[household % len(letters)], strict=True)]),
        house_number=pl.Series([str(1 + h % 150) for h in household]),
    )


def _typo(names: pl.Series, rng: np.random.Generator, share: float) -> pl.Series:
    values = names.to_list()
    for i in np.flatnonzero(rng.random(len(values)) < share):
        s = values[i]
        if s:
            k = int(rng.integers(0, len(s)))
            values[i] = s[:k] + "xq"[k % 2] + s[k + 1:]
    return pl.Series(names.name, values, dtype=pl.String)


def plant_identifiers(source: Path, out: Path, *, missing_bsn_share: float = 0.05, seed: int = 0) -> dict:
    """Copy the generated extracts ``source`` (ehr/, claims/, truth/) to ``out`` with identifiers.

    Returns counts: records whose BSN was removed, and persons given identifiers.
    """
    rng = np.random.default_rng(seed)
    shutil.copytree(source, out)
    truth = out / "truth"
    people = _people(pl.read_parquet(truth / "persons.parquet"), rng)

    insured_path = _table(out / "claims", "insured")
    insured = _read(insured_path)
    who = pl.read_parquet(truth / "insured.parquet")["person"]
    # Generated identifiers (the generator fills them since contract v2) are replaced by planted ones.
    insured = insured.drop([c for c in _PLANTED if c in insured.columns])
    insured = insured.with_columns(person=who).join(people, on="person", how="left")
    number = (pl.col("person").hash(seed) % 900_000_000 + 100_000_000 + pl.col("insurer").cast(pl.Int64)) \
        .cast(pl.String)
    insured = insured.with_columns(insurance_number=number)
    latest = insured.sort("year").group_by("person").agg(pl.col("insurer").last(), pl.col("insurance_number").last())
    _write(insured.drop("person"), insured_path)

    patients_path = _table(out / "ehr", "patients")
    patients = _read(patients_path)
    who = pl.read_parquet(truth / "patients.parquet").select("patient_id", "person")
    patients = patients.drop([c for c in (*_PLANTED, "insurer") if c in patients.columns])
    patients = patients.join(who, on="patient_id", how="left").join(people, on="person", how="left") \
        .join(latest, on="person", how="left")
    n = patients.height
    moved = rng.random(n) < 0.05
    knows_number = rng.random(n) < 0.5
    valid_bsn = patients["bsn"].is_not_null().to_numpy()
    remove = valid_bsn & (rng.random(n) < missing_bsn_share)
    patients = patients.with_columns(
        family_name=_typo(patients["family_name"], rng, 0.03),
        postcode6=pl.when(pl.Series(moved)).then(pl.lit("9999ZZ")).otherwise(pl.col("postcode6")),
        insurance_number=pl.when(pl.Series(knows_number)).then(pl.col("insurance_number")),
        insurer=pl.when(pl.Series(knows_number)).then(pl.col("insurer")),
        bsn=pl.when(pl.Series(remove)).then(None).otherwise(pl.col("bsn")),
    )
    _write(patients.drop("person"), patients_path)
    pl.DataFrame({"patient_id": patients["patient_id"], "bsn_removed": remove}).write_parquet(
        truth / "planted_missing_bsn.parquet")
    return {"bsn_removed": int(remove.sum()), "persons": people.height}
