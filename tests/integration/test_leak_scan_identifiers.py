"""Leak scan of the contract-v2 identifiers and the fallback's encodings (issue 13, item 8).

The suppliers hold names, postcodes, house numbers and insurance numbers; the TTP receives them
only as keyed encodings (``for_ttp/encodings.parquet``); the research environment receives neither
the identifiers nor the encodings, nor anything of the fallback's work on them (scores, candidate
pairs): only the token maps with ``link_method`` and counts. This module learns every identifier
from the raw extracts (:mod:`tests.identifier_needles`: how they match) and every encoding from the
files the TTP receives, and scans each file the research environment receives after the supplier
and TTP steps on the tiny extracts. A whole demo run (every file, log and printed line) is scanned
for the identifiers in ``test_leak_scan.py::test_demo_run_holds_no_identifier_outside_the_extracts``.

Findings name the file and the kind of needle, never the value.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from pseudonymisation.encodings import BLOOM_FIELDS, IDENTIFIER_COLUMNS, TOKEN_FIELDS
from identifier_needles import WordNeedles, identifier_needles, scan_readable
from integration.test_leak_scan import Needles, Pipeline, _values_needles, scan_files
from integration.test_leak_scan import pipeline  # noqa: F401  (the module fixture, run here too)


def _delivered(frame: pl.DataFrame) -> list[str]:
    """The Bloom fields of the encodings (a field no supplier delivered has no column)."""
    return [f for f in BLOOM_FIELDS if f in frame.columns]


def encoding_needles(pipeline: Pipeline) -> list[Needles]:  # noqa: F811
    """The encodings the TTP received: exact keyed tokens as digit runs, Bloom filters as hex."""
    frame = pl.concat(pl.read_parquet(r.out / "for_ttp" / "encodings.parquet") for r in (pipeline.ehr, pipeline.claims))
    needles = [n for f in TOKEN_FIELDS for n in _values_needles(f"encoding {f}", frame[f])]
    for f in _delivered(frame):
        filters = frame[f].filter(frame[f].bin.encode("hex").str.contains("[1-9a-f]"))  # all-zero: missing
        needles += _values_needles(f"encoding {f}", filters)
    return needles


def by_kind_values(needles: list[WordNeedles], kind: str) -> frozenset[str]:
    return next(n.values for n in needles if n.kind == kind)


@pytest.fixture(scope="module")
def needles(pipeline: Pipeline) -> list[WordNeedles]:  # noqa: F811
    return identifier_needles(pipeline.extracts)


# --- the scanner finds what it looks for (positive controls) ---------------------------------


def test_identifier_scan_finds_every_identifier_kind_in_the_raw_extracts(
    pipeline: Pipeline, needles: list[WordNeedles]  # noqa: F811
) -> None:
    files = [pipeline.extracts / "ehr" / "patients.parquet", pipeline.extracts / "claims" / "insured.parquet"]
    # Each kind in one file at least (the claims side writes initials without dots).
    assert {k for _, k in scan_readable(files, needles)} == {n.kind for n in needles}


def test_identifier_scan_finds_planted_leaks_and_reports_no_values(
    needles: list[WordNeedles], tmp_path: Path
) -> None:
    by_kind = {n.kind: sorted(n.values)[0] for n in needles}
    number = sorted(by_kind_values(needles, "insurance number"))[-1]  # no leading zero: an integer keeps its digits
    name, initials = by_kind["family name"], by_kind["initials"]
    pc6, house = by_kind["postcode6"], by_kind["house number with suffix"]
    planted = {
        "name.json": lambda p: p.write_text(json.dumps({"note": f"{initials} van der {name.upper()}"})),
        "pc6.parquet": lambda p: pl.DataFrame({"x": [f"{pc6[:4]} {pc6[4:].lower()}"]}).write_parquet(p),
        "house.log": lambda p: p.write_text(f"at {house[:-1]}-{house[-1]}, somewhere\n"),
        "number.parquet": lambda p: pl.DataFrame({"n": [int(number)]}).write_parquet(p),
        "metadata.parquet": lambda p: pq.write_table(
            pl.DataFrame({"x": [1]}).to_arrow().replace_schema_metadata({"who": name}), p),
        "clean.json": lambda p: p.write_text(json.dumps({"rows": 12, "age": "65-74", "sex": "F"})),
        # Random bytes whose hex holds an insurance number's digits: chance, not a leak.
        "hex_chance.parquet": lambda p: pl.DataFrame({"bf": [bytes.fromhex(f"a{number}" + "bc" * 11)]}).write_parquet(p),
    }
    for file, write in planted.items():
        write(tmp_path / file)
    paths = sorted(tmp_path.iterdir())
    found = scan_readable(paths, needles)
    kinds: dict[str, set[str]] = {}
    for f, k in found:
        kinds.setdefault(Path(f).name, set()).add(k)
    assert {f: kinds.get(f, set()) for f in planted} == {
        "name.json": {"family name", "initials"},
        "pc6.parquet": {"postcode6"},
        "house.log": {"house number with suffix"},
        "number.parquet": {"insurance number"},
        "metadata.parquet": {"family name"},
        "clean.json": set(),
        "hex_chance.parquet": set(),
    }
    assert not any(v in f + k for f, k in found for v in (name, pc6, house, number))


def test_identifier_scan_does_not_read_a_timestamp_as_a_house_number(needles: list[WordNeedles]) -> None:  # noqa: F811
    """A release id holds its time (``r-2026-12-05T12-58-54Z-…``): ``54Z`` is a second, not a house.

    CI failed once on this: the demo's release manifest, made at second 54, and a house ``54Z``.
    """
    from dataclasses import replace

    house = replace(next(n for n in needles if n.kind == "house number with suffix"), values=frozenset({"54Z"}))
    assert not house.found_in(pl.Series(["r-2026-12-05T12-58-54Z-4c72-f55d", "2026-12-05T12:58:54Z"]))
    assert house.found_in(pl.Series(["moved to 54 z last year"]))  # the needle still finds the house
    assert house.found_in(pl.Series(["2026-12-05T12-58-54Z at 54Z"]))


def test_identifier_scan_learns_the_optional_given_name_street_and_city(
    needles: list[WordNeedles], tmp_path: Path
) -> None:
    """Contract v2's optional columns (the generator draws them) are needles like the family name."""
    kinds = {n.kind: n for n in needles}
    assert {"given name", "street", "city"} <= set(kinds)
    given, street, city = (sorted(kinds[k].values)[-1] for k in ("given name", "street", "city"))
    planted = {
        "given.json": lambda p: p.write_text(json.dumps({"note": f"patient {given.capitalize()} was seen"})),
        "street.log": lambda p: p.write_text(f"moved to the {street.upper()} last year\n"),
        "city.parquet": lambda p: pl.DataFrame({"x": [f"born in {city.capitalize()}"]}).write_parquet(p),
    }
    for file, write in planted.items():
        write(tmp_path / file)
    found = scan_readable(sorted(tmp_path.iterdir()), [kinds[k] for k in ("given name", "street", "city")])
    assert sorted((Path(f).name, k) for f, k in found) == [
        ("city.parquet", "city"), ("given.json", "given name"), ("street.log", "street")]
    assert not any(v in f + k for f, k in found for v in (given, street, city))


def test_encoding_scan_finds_the_encodings_in_the_files_the_ttp_receives(pipeline: Pipeline) -> None:  # noqa: F811
    found = {k for _, k in scan_files(pipeline.ttp_receives, encoding_needles(pipeline))}
    delivered = _delivered(pl.read_parquet(pipeline.ehr.out / "for_ttp" / "encodings.parquet"))
    assert "bf_family_name" in delivered
    assert found == {f"encoding {f}" for f in (*TOKEN_FIELDS, *delivered)}


# --- what the research environment receives, and the logs ------------------------------------


def test_no_name_postcode_house_or_insurance_number_in_any_file_the_research_environment_receives(
    pipeline: Pipeline, needles: list[WordNeedles]  # noqa: F811
) -> None:
    files = pipeline.research_receives
    assert scan_readable(files, needles) == []
    for path in (p for p in files if p.suffix == ".parquet"):
        # ``insurer`` (a company's UZOVI code) is content of every claim; the number identifies.
        assert not set(pl.read_parquet_schema(path)) & (set(IDENTIFIER_COLUMNS) - {"insurer"}), path


def test_no_encoding_score_or_candidate_pair_reaches_the_research_environment(pipeline: Pipeline) -> None:  # noqa: F811
    files = pipeline.research_receives
    assert scan_files(files, encoding_needles(pipeline)) == []
    for path in (p for p in files if p.suffix == ".parquet"):
        # Token maps only: a record's token, its project pseudonym and how it was linked.
        assert set(pl.read_parquet_schema(path)).isdisjoint({*TOKEN_FIELDS, *BLOOM_FIELDS, "score", "weight",
                                                              "claims_token", "p1"}), path
    # What the research side learns of the fallback: counts per method and reason, the estimate,
    # the settings; the model (weights per field) and blocking figures stay in the TTP's report.
    summary = json.loads((pipeline.ttp.out / "ehr" / "manifest.json").read_text())["fallback"]
    assert set(summary) == {"records", "estimated_on_bsn_linked_records", "settings", "linked_by_method",
                            "unlinked_by_reason"}
    assert all(isinstance(v, int | str) for k in ("linked_by_method", "unlinked_by_reason")
               for v in summary[k].values())
