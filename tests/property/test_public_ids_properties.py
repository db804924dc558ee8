"""Ids and checksums in public outputs never hold nine digits in a row (issue 10.16).

A leak scanner reads a run of nine digits that passes the BSN 11-test as a BSN; bare hex
checksums and ``r-YYYYMMDDTHHMMSSZ-…`` ids held such runs by chance. The formats of
:mod:`release.public_ids` cap every digit run at four, and the auditor and the report each
read the checksum back in one function.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from study_builder import write_study

from audit.identifiers import scan_identifiers
from audit.release import parse_checksum
from disclosure import Policy
from release.errors import StudyFormatError
from release.ledger import create_ledger
from release.make import make_release
from release.public_ids import CHECKSUM_PREFIX, RELEASE_ID, grouped, release_id
from report.errors import ReleaseTamperedError
from report.release import _checksum as report_checksum
from report.release import read_release as read_report_release

FIXTURES = Path(__file__).parents[1] / "fixtures" / "releases"
NINE = re.compile(r"[0-9]{9}")
LONGEST = 4  # the longest run of digits an id or a checksum may hold


def longest_digit_run(text: str) -> int:
    return max((len(run) for run in re.findall(r"[0-9]+", text)), default=0)


def flagged(texts: list[str]) -> list:
    return scan_identifiers("public", pl.DataFrame({"text": texts}, schema={"text": pl.String}))


hexes = st.binary(min_size=1, max_size=64).map(bytes.hex)
digests = st.binary(min_size=32, max_size=32).map(bytes.hex)
# The worst case for a scanner: hex that happens to be all digits.
all_digits = st.text(alphabet="0123456789", min_size=1, max_size=80)


@given(st.one_of(hexes, all_digits))
def test_grouped_hex_never_holds_a_run_of_more_than_four_digits(hexdigits: str) -> None:
    text = grouped(hexdigits)
    assert longest_digit_run(text) <= LONGEST
    assert not NINE.search(text)
    assert text.replace("-", "") == hexdigits


@given(st.one_of(digests, st.text(alphabet="0123456789", min_size=64, max_size=64)))
def test_a_printed_checksum_has_no_nine_digits_and_both_readers_get_the_digest_back(digest: str) -> None:
    printed = CHECKSUM_PREFIX + grouped(digest)
    assert not NINE.search(printed)
    assert flagged([printed]) == []  # not as a run, not grouped 3-3-3
    assert parse_checksum(printed) == digest
    assert report_checksum(printed) == digest


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(9999, 12, 31)))
def test_a_release_id_has_no_nine_digits_whatever_the_time(moment: datetime) -> None:
    ident = release_id(moment.replace(tzinfo=UTC, microsecond=0))
    assert RELEASE_ID.fullmatch(ident)
    assert longest_digit_run(ident) <= LONGEST
    assert flagged([ident]) == []


def _public_texts(release: Path) -> str:
    return "".join((release / name).read_text(encoding="utf-8") for name in ("manifest.json", "summary.md"))


def _ids_and_checksums(release: Path) -> list[str]:
    manifest = json.loads((release / "manifest.json").read_text(encoding="utf-8"))
    return [manifest["release_id"], manifest["created"], manifest["study"]["config_sha256"],
            manifest["keys"]["project_key_id"], manifest["ledger"]["ledger_id"], *manifest["files"].values()]


def test_a_release_made_before_the_fix_holds_long_digit_runs() -> None:
    # Keeps the scans below honest: on the old format they find what the leak scanner found.
    old = FIXTURES / "input-hashes"
    assert NINE.search(_public_texts(old))
    assert max(longest_digit_run(t) for t in _ids_and_checksums(old)) > LONGEST


def test_a_real_release_prints_no_nine_digit_run_and_ids_of_at_most_four_digits(tmp_path: Path) -> None:
    study = write_study(tmp_path / "study", [3, 40], strata={"sex": ["F", "M"]}, referred=4)
    # A config hash of digits only: the worst case for the summary's and the manifest's copies.
    manifest = json.loads((study / "manifest.json").read_text())
    manifest |= {"study_config_sha256": hashlib.sha256(b"x").hexdigest().translate(str.maketrans("abcdef", "123456")),
                 "project_key_id": "12345678"}
    (study / "manifest.json").write_text(json.dumps(manifest))
    make_release(study, tmp_path / "release", ledger=create_ledger(tmp_path / "ledger", Policy()).path)
    text = _public_texts(tmp_path / "release")
    assert not NINE.search(text)
    for ident in _ids_and_checksums(tmp_path / "release"):
        assert longest_digit_run(ident) <= LONGEST, ident
    lines = text.splitlines()
    assert [f.message for f in flagged(lines)] == []
    # Both readers check the grouped checksums: the report reads the release, and refuses it changed.
    assert set(read_report_release(tmp_path / "release").tables) >= {"prevalence", "referrals"}
    (tmp_path / "release" / "referrals.csv").write_text("changed\n")
    with pytest.raises(ReleaseTamperedError):
        read_report_release(tmp_path / "release")


@pytest.mark.parametrize("field", [{"study_config_sha256": "config 123456789"}, {"project_key_id": "key-123456789"},
                                   {"project_key_id": 12345678}], ids=["config-hash", "key-id", "key-id-number"])
def test_a_study_manifest_whose_ids_are_not_hex_is_refused_before_anything_is_printed(tmp_path: Path,
                                                                                     field: dict) -> None:
    study = write_study(tmp_path / "study", [30, 40], strata={"sex": ["F", "M"]})
    manifest = json.loads((study / "manifest.json").read_text())
    (study / "manifest.json").write_text(json.dumps(manifest | field))
    with pytest.raises(StudyFormatError, match=next(iter(field))) as refused:
        make_release(study, tmp_path / "release", ledger=create_ledger(tmp_path / "ledger", Policy()).path)
    assert "123456789" not in str(refused.value)  # the message names the field, never its value
    assert refused.value.exit_code == 4
    assert not (tmp_path / "release").exists()
